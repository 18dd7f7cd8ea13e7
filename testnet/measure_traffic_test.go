package testnet

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// trafficSeries are the counters MeasureDetection reports per split view
// (DetectionResult.Traffic), summed over the members: each is a metric name
// and label pairs its series must all carry (others are summed over), under
// a short name. They say where a split view's messages go: per topic and
// direction, pubsub's control traffic, the evidence pushed on streams and
// how each node came to store the evidence.
var trafficSeries = []struct{ name, metric string }{
	{"checkpoints_received", `vigil_gossip_rpc_messages_total topic="checkpoints" dir="received"`},
	{"checkpoints_duplicate", `vigil_gossip_rpc_messages_total topic="checkpoints" dir="duplicate"`},
	{"checkpoints_sent", `vigil_gossip_rpc_messages_total topic="checkpoints" dir="sent"`},
	{"evidence_received", `vigil_gossip_rpc_messages_total topic="evidence" dir="received"`},
	{"evidence_duplicate", `vigil_gossip_rpc_messages_total topic="evidence" dir="duplicate"`},
	{"evidence_sent", `vigil_gossip_rpc_messages_total topic="evidence" dir="sent"`},
	{"ihave_ids_sent", `vigil_gossip_rpc_control_total kind="ihave_ids" dir="sent"`},
	{"iwant_ids_sent", `vigil_gossip_rpc_control_total kind="iwant_ids" dir="sent"`},
	{"idontwant_ids_sent", `vigil_gossip_rpc_control_total kind="idontwant_ids" dir="sent"`},
	{"evidence_pushes", `vigil_gossip_evidence_pushes_total`},
	{"evidence_detected", `vigil_evidence_total via="detected"`},
	{"evidence_gossip", `vigil_evidence_total via="gossip"`},
	{"evidence_sync", `vigil_evidence_total via="sync"`},
	{"evidence_found_at_once", `vigil_gossip_evidence_found_published_total result="at_once"`},
	{"evidence_found_held_published", `vigil_gossip_evidence_found_published_total result="published"`},
	{"evidence_found_held_heard", `vigil_gossip_evidence_found_published_total result="heard"`},
	{"sightings_published", `vigil_gossip_sightings_published_total`},
	{"sightings_published_cosign", `vigil_gossip_sightings_published_total source="cosign"`},
	{"sightings_published_gossip", `vigil_gossip_sightings_published_total source="gossip"`},
	{"checkpoints_accepted", `vigil_gossip_validated_total topic="checkpoints" result="accept"`},
	{"checkpoints_ignored", `vigil_gossip_validated_total topic="checkpoints" result="ignore"`},
	{"cosign_accepted", `vigil_gossip_validated_total topic="cosign" result="accept"`},
	{"evidence_accepted", `vigil_gossip_validated_total topic="evidence" result="accept"`},
	{"handoffs_sent", `vigil_gossip_cosign_handoffs_total result="sent"`},
	{"handoffs_collected", `vigil_gossip_cosign_handoffs_total result="collected"`},
	{"handoffs_fallback", `vigil_gossip_cosign_handoffs_total result="fallback"`},
	{"relays_relayed", `vigil_gossip_cosign_relays_total result="relayed"`},
	{"relays_unrelayed", `vigil_gossip_cosign_relays_total result="unrelayed"`},
	{"relays_declined", `vigil_gossip_cosign_relays_total result="declined"`},
	{"relays_passed", `vigil_gossip_cosign_relays_total result="passed"`},
	{"relays_fallback", `vigil_gossip_cosign_relays_total result="fallback"`},
}

// trafficTotals sums trafficSeries over the running members.
func (nw *Network) trafficTotals(ctx context.Context) ([]float64, error) {
	sums := make([]float64, len(trafficSeries))
	for _, m := range nw.Members {
		if !m.Running() || m.URL == "" {
			continue
		}
		v, err := scrapeSelected(ctx, m.URL)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.Name, err)
		}
		for i := range sums {
			sums[i] += v[i]
		}
	}
	return sums, nil
}

// traffic turns two trafficTotals readings into the counts per split view.
func traffic(before, after []float64, n int) map[string]float64 {
	out := make(map[string]float64, len(trafficSeries))
	for i, s := range trafficSeries {
		out[s.name] = (after[i] - before[i]) / float64(n)
	}
	return out
}

// scrapeSelected reads one member's /metrics and sums, per trafficSeries
// entry, the series of its metric that carry all its label pairs.
func scrapeSelected(ctx context.Context, baseURL string) ([]float64, error) {
	resp, err := getMetrics(ctx, baseURL)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	sels := make([][]string, len(trafficSeries))
	for i, s := range trafficSeries {
		sels[i] = strings.Fields(s.metric)
	}
	sums := make([]float64, len(trafficSeries))
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 16<<20))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, labels, _ := strings.Cut(f[0], "{")
		for i, sel := range sels {
			if sel[0] != name || !hasLabels(labels, sel[1:]) {
				continue
			}
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				return nil, fmt.Errorf("metric line %q: %w", line, err)
			}
			sums[i] += v
		}
	}
	return sums, sc.Err()
}

// hasLabels reports whether a series' label text (between the braces)
// carries every pair of want (`k="v"`).
func hasLabels(labels string, want []string) bool {
	have := strings.Split(strings.TrimSuffix(labels, "}"), ",")
	for _, w := range want {
		found := false
		for _, h := range have {
			if h == w {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
