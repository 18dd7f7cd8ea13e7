package feed_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilnet/vigil/feed"
)

// TestWitnessesAPI checks /v1/witnesses and /v1/witnesses/{name} over a
// feed whose roster witnesses w0 and w1 cosign and w2 never does: states,
// last cosignatures, shares, the quorum, evidence naming a witness, the
// history, the 404 for an unknown name, and witness events by ?types=.
func TestWitnessesAPI(t *testing.T) {
	e := newEnv(t, envOptions{logs: 1, witnesses: 3, quorum: "2", witnessInterval: time.Minute})
	s := e.subscribeQuery("types=witness,evidence", "")
	e.logs[0].AppendN(4, "a")
	e.cosign(0, 0, 1)
	e.logs[0].AppendN(2, "b")
	e.cosign(0, 0)

	code, _, body := e.get("/v1/witnesses")
	var wr feed.WitnessesResponse
	if err := json.Unmarshal([]byte(body), &wr); code != 200 || err != nil {
		t.Fatalf("/v1/witnesses: %d %v %s", code, err, body)
	}
	if wr.QuorumNeeded != 2 || wr.Alive != 2 || len(wr.Witnesses) != 3 {
		t.Errorf("quorum %d, alive %d, %d witnesses", wr.QuorumNeeded, wr.Alive, len(wr.Witnesses))
	}
	byName := map[string]feed.WitnessStatus{}
	for _, w := range wr.Witnesses {
		byName[w.Name] = w
	}
	share := func(w, win string) float64 {
		if p := byName[w].Shares[win]; p != nil {
			return *p
		}
		return -1
	}
	tests := []struct {
		name, state string
		last        uint64 // 0: none
		lag         uint64
		share1h     float64
	}{
		{"w0", feed.WitnessAlive, 6, 0, 1},
		{"w1", feed.WitnessAlive, 4, 2, 0.5},
		{"w2", feed.WitnessMissing, 0, 6, 0},
	}
	for _, tc := range tests {
		w := byName[tc.name]
		if w.State != tc.state || w.LagSize != tc.lag || share(tc.name, "1h") != tc.share1h || share(tc.name, "30d") != tc.share1h {
			t.Errorf("%s: state %s lag %d shares %v %v, want %s %d %v", tc.name, w.State, w.LagSize, share(tc.name, "1h"), share(tc.name, "30d"), tc.state, tc.lag, tc.share1h)
		}
		switch {
		case tc.last == 0 && w.LastCosignature != nil, tc.last != 0 && (w.LastCosignature == nil || w.LastCosignature.Size != tc.last || w.LastCosignature.CosignedAt.IsZero()):
			t.Errorf("%s: last cosignature %+v, want size %d", tc.name, w.LastCosignature, tc.last)
		}
		if len(w.Logs) != 1 || w.Logs[0].HeadSize != 6 || w.Logs[0].ExpectedIntervalSeconds != 60 {
			t.Errorf("%s: logs %+v", tc.name, w.Logs)
		}
	}

	// Evidence naming w1 shows on w1 only.
	ev := evidenceFor(e.logs[0].Origin(), 0)
	ev.Kind, ev.Witnesses = "witness-equivocation", []string{"w1"}
	e.src.addEvidence(ev, []byte("vigil-evidence/v1\n"))
	e.feed.EvidenceUpdated()
	s.waitFor(t, func(x sse) bool { return x.typ == feed.EventEvidence })
	var d feed.WitnessDetail
	code, _, body = e.get("/v1/witnesses/w1")
	if err := json.Unmarshal([]byte(body), &d); code != 200 || err != nil {
		t.Fatalf("/v1/witnesses/w1: %d %v %s", code, err, body)
	}
	if !slices.Equal(d.Evidence, []string{ev.ID}) {
		t.Errorf("w1's evidence %v, want [%s]", d.Evidence, ev.ID)
	}
	if len(d.History) != 1 || d.History[0].Cosigned != 1 || d.History[0].Checkpoints != 2 || d.History[0].Hour.Minute() != 0 {
		t.Errorf("w1's history %+v", d.History)
	}
	code, _, body = e.get("/v1/witnesses/w0")
	if code != 200 || !strings.Contains(body, `"evidence": []`) {
		t.Errorf("w0: %d %s", code, body)
	}

	for _, path := range []string{"/v1/witnesses/nobody", "/v1/witnesses/w0%2Fx"} {
		code, hdr, body := e.get(path)
		var ae struct {
			Error  string `json:"error"`
			Status int    `json:"status"`
		}
		if err := json.Unmarshal([]byte(body), &ae); code != 404 || err != nil || ae.Status != 404 || !strings.Contains(ae.Error, "unknown witness") || hdr.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %s %s", path, code, hdr.Get("Content-Type"), body)
		}
	}
}
