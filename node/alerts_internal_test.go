package node

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
)

// TestAlertRuleMetricsRegistered checks that every metric the shipped
// alerting rules (docs/alerts/vigil.rules.yml) name is registered by a
// running witness node, so that renaming a metric breaks a test instead of
// silently disarming an alert.
func TestAlertRuleMetricsRegistered(t *testing.T) {
	rules, err := os.ReadFile(filepath.Join("..", "docs", "alerts", "vigil.rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`\bvigil_[a-z0-9_]+\b`).FindAllString(string(rules), -1)
	slices.Sort(names)
	names = slices.Compact(names)
	if len(names) < 8 {
		t.Fatalf("found only %v in the rules", names)
	}

	n := metricsNode(t, nil)
	for _, name := range names {
		if !registered(t, n.reg, name) {
			t.Errorf("the alert rules use %s, which the node does not register", name)
		}
	}
}
