package feed

import (
	"fmt"
	"net/http"
	"time"
)

// dashWitness is one row of the dashboard's witness section.
type dashWitness struct {
	Name, State string
	// LastAt is the newest cosignature's timestamp (RFC 3339) or "";
	// LastAge its age, LastWhere "size N of ORIGIN".
	LastAt, LastAge, LastWhere string
	Lag                        string
	Shares                     [3]string // 1h, 24h, 30d
	Evidence                   int
}

// witnessRows builds the dashboard's witness section.
func (f *Feed) witnessRows(r *http.Request) []dashWitness {
	list, _ := f.witnessStatuses(f.src.Roster())
	now := f.now()
	out := make([]dashWitness, 0, len(list))
	for _, w := range list {
		d := dashWitness{Name: w.Name, State: w.State, LastAge: "never", Lag: "—", Evidence: len(w.Evidence)}
		if lc := w.LastCosignature; lc != nil {
			d.LastAt = lc.CosignedAt.UTC().Format(time.RFC3339)
			d.LastAge = humanAge(now.Sub(lc.CosignedAt)) + " ago"
			d.LastWhere = fmt.Sprintf("size %d of %s", lc.Size, lc.Origin)
			d.Lag = "up to date"
			if w.LagSize > 0 {
				d.Lag = fmt.Sprintf("%d behind, %s", w.LagSize, humanAge(time.Duration(w.LagSeconds*float64(time.Second))))
			}
		}
		for i, win := range shareWindows {
			d.Shares[i] = "—"
			if s := w.Shares[win.name]; s != nil {
				d.Shares[i] = fmt.Sprintf("%.0f%%", *s*100)
			}
		}
		out = append(out, d)
	}
	return out
}
