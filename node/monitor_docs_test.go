package node_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/vigilnet/vigil/node"
)

// TestOperationsConfigExample: the vigil.yaml example in docs/operations.md
// loads (every key exists) and states the defaults.
func TestOperationsConfigExample(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "## Configuration (`vigil.yaml`)")
	if !ok {
		t.Fatal("no configuration section")
	}
	_, rest, ok = strings.Cut(rest, "```yaml\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("no yaml block in the configuration section")
	}
	path := filepath.Join(t.TempDir(), "vigil.yaml")
	writeFile(t, path, block)
	got, err := node.LoadConfig(path)
	if err != nil {
		t.Fatalf("the documented vigil.yaml does not load: %v", err)
	}
	want := node.DefaultConfig()
	for _, f := range []struct {
		name      string
		got, want any
	}{
		{"log_list_refresh", got.LogListRefresh, want.LogListRefresh},
		{"witness.submission_prefix", got.Witness.SubmissionPrefix, want.Witness.SubmissionPrefix},
		{"witness.monitoring_prefix", got.Witness.MonitoringPrefix, want.Witness.MonitoringPrefix},
		{"http", got.HTTP, want.HTTP},
	} {
		if !reflect.DeepEqual(f.got, f.want) {
			t.Errorf("%s documented as %v, default %v", f.name, f.got, f.want)
		}
	}
}
