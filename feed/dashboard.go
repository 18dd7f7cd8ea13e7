package feed

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// staticPrefix is where the dashboard's CSS and JS are served.
const staticPrefix = "/feed/static/"

var (
	templates = template.Must(template.New("").Funcs(template.FuncMap{
		"short": shortID,
		"join":  func(s []string) string { return strings.Join(s, ", ") },
		"witnesses": func(s []string) string {
			if len(s) == 0 {
				return "no roster witness"
			}
			return strings.Join(s, ", ")
		},
	}).ParseFS(templateFS, "templates/*.html"))
	// staticVersion changes whenever an embedded asset does, so asset URLs
	// can be cached for good.
	staticVersion = func() string {
		h := sha256.New()
		fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				b, _ := staticFS.ReadFile(p)
				h.Write([]byte(p))
				h.Write(b)
			}
			return nil
		})
		return hex.EncodeToString(h.Sum(nil)[:6])
	}()
)

func (f *Feed) registerDashboard(mux *http.ServeMux) {
	f.route(mux, "GET /{$}", "dashboard", f.serveDashboard)
	sub, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix(staticPrefix, http.FileServerFS(sub))
	mux.Handle("GET "+staticPrefix, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Assets are public (they hold no data) and versioned by URL.
		if r.URL.Query().Get("v") == staticVersion {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "public, max-age=300")
		}
		files.ServeHTTP(w, r)
	}))
	mux.Handle("POST /feed/login", http.HandlerFunc(f.serveLogin))
}

// dashboard is the template data of the dashboard page.
type dashboard struct {
	Generated   time.Time
	LastEventID string
	Quorum      string
	Witnesses   []WitnessInfo
	Logs        []dashLog
	Evidence    []Evidence
	Peers       []Peer
	PeersErr    bool
	Asset       func(string) string
	Fresh, Aged int // logs fresh, and late or stale
	// Divergent counts the logs with an open unproven divergence.
	Divergent int
	// WitnessRows is the witness section (witness_dashboard.go).
	WitnessRows []dashWitness
}

type dashLog struct {
	LogInfo
	dashFreshness
	Chart      chart
	NWitnesses int
}

// chart is a small SVG line of a log's tree size over time.
type chart struct {
	Points string // SVG polyline points
	Label  string
	Empty  bool
}

const chartW, chartH = 120, 28

func makeChart(pts []point) chart {
	if len(pts) == 0 {
		return chart{Empty: true, Label: "no checkpoints yet"}
	}
	t0, t1 := pts[0].t, pts[len(pts)-1].t
	s0, s1 := pts[0].size, pts[len(pts)-1].size
	var b strings.Builder
	for i, p := range pts {
		x := float64(chartW) / 2
		if len(pts) > 1 {
			if span := t1.Sub(t0); span > 0 {
				x = float64(p.t.Sub(t0)) / float64(span) * chartW
			} else {
				x = float64(i) / float64(len(pts)-1) * chartW
			}
		}
		y := float64(chartH) / 2
		if s1 > s0 {
			y = chartH - 2 - float64(p.size-s0)/float64(s1-s0)*(chartH-4)
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.1f,%.1f", x, y)
	}
	if len(pts) == 1 {
		// One sample: draw a short flat line so it is visible.
		b.Reset()
		fmt.Fprintf(&b, "0,%d %d,%d", chartH/2, chartW, chartH/2)
	}
	label := fmt.Sprintf("tree size %d", s1)
	if len(pts) > 1 {
		label = fmt.Sprintf("tree size grew from %d to %d over %d checkpoints", s0, s1, len(pts))
	}
	return chart{Points: b.String(), Label: label}
}

func (f *Feed) dashboardData(r *http.Request) dashboard {
	snap := f.logsSnapshot(r)
	d := dashboard{
		Generated:   snap.Generated,
		LastEventID: snap.LastEventID,
		Quorum:      snap.Quorum,
		Witnesses:   snap.Witnesses,
		Divergent:   snap.Divergent,
		Evidence:    f.evidenceList(r.Context()),
		Asset:       func(name string) string { return staticPrefix + name + "?v=" + staticVersion },
	}
	views := map[string]*logView{}
	for _, v := range f.views.all(r.Context()) {
		views[v.logID] = v
	}
	now := f.now()
	for _, li := range snap.Logs {
		dl := dashLog{LogInfo: li, NWitnesses: len(snap.Witnesses)}
		dl.fill(now)
		if dl.FreshState == FreshnessFresh {
			d.Fresh++
		} else {
			d.Aged++
		}
		if v := views[li.LogID]; v != nil {
			dl.Chart = makeChart(v.growth)
		} else {
			dl.Chart = makeChart(nil)
		}
		d.Logs = append(d.Logs, dl)
	}
	peers, err := f.src.Peers(r.Context())
	d.Peers, d.PeersErr = peers, err != nil
	d.WitnessRows = f.witnessRows(r)
	return d
}

// humanAge renders a duration as "12s", "5m", "3h", "2d".
func humanAge(d time.Duration) string {
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	default:
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
}

func shortID(s string) string {
	if len(s) <= 16 {
		return s
	}
	return s[:8] + "…" + s[len(s)-6:]
}

func (f *Feed) serveDashboard(w http.ResponseWriter, r *http.Request) {
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, "dashboard.html", f.dashboardData(r)); err != nil {
		f.log.Error("feed: rendering the dashboard", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	f.writeHTML(w, http.StatusOK, buf.Bytes())
}

func (f *Feed) writeHTML(w http.ResponseWriter, code int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'")
	w.WriteHeader(code)
	w.Write(b)
}

// renderLogin shows the token form of a token-protected dashboard.
func (f *Feed) renderLogin(w http.ResponseWriter, r *http.Request, code int, msg string) {
	var buf bytes.Buffer
	data := struct {
		Message string
		Asset   func(string) string
	}{msg, func(name string) string { return staticPrefix + name + "?v=" + staticVersion }}
	if err := templates.ExecuteTemplate(&buf, "login.html", data); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	f.writeHTML(w, code, buf.Bytes())
}
