package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/tlog"
)

// DefaultMonitoringPrefix is where a witness node serves the C2SP
// tlog-witness monitoring API: GET /monitoring/<log ID>/checkpoint.
const DefaultMonitoringPrefix = "/monitoring"

// DefaultLogListRefresh is how often logs/v0 lists are re-fetched.
const DefaultLogListRefresh = 24 * time.Hour

// maxLogListRefresh: the witness network asks witnesses to re-fetch their
// lists at least weekly.
const maxLogListRefresh = 7 * 24 * time.Hour

// validateMonitoring checks the witness prefixes and the list refresh.
func (c Config) validateMonitoring() error {
	if err := checkPrefix("submission_prefix", c.Witness.SubmissionPrefix); err != nil {
		return err
	}
	if err := checkPrefix("monitoring_prefix", c.Witness.MonitoringPrefix); err != nil {
		return err
	}
	if c.LogListRefresh < 0 || c.LogListRefresh > maxLogListRefresh {
		return fmt.Errorf("config: log_list_refresh %s must be at most %s (lists are re-fetched at least weekly; 0 means %s)", c.LogListRefresh, maxLogListRefresh, DefaultLogListRefresh)
	}
	return nil
}

// monitoringPrefix is the monitoring prefix in effect ("" means the default).
func (w WitnessConfig) monitoringPrefix() string {
	if w.MonitoringPrefix == "" {
		return DefaultMonitoringPrefix
	}
	return w.MonitoringPrefix
}

// logListRefresh is the list refresh interval in effect (0 means the default).
func (c Config) logListRefresh() time.Duration {
	if c.LogListRefresh == 0 {
		return DefaultLogListRefresh
	}
	return c.LogListRefresh
}

// checkPrefix accepts "" (the default) or a path that starts with "/", does
// not end with one, is outside /v1/ (the feed's) and holds only unreserved
// path characters.
func checkPrefix(key, p string) error {
	if p == "" {
		return nil
	}
	bad := !strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.Contains(p, "//") || strings.Contains(p, "/./") || strings.Contains(p, "/..") || strings.HasSuffix(p, "/.")
	for i := 0; i < len(p) && !bad; i++ {
		c := p[i]
		bad = !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("/-._~", c) >= 0)
	}
	if bad {
		return fmt.Errorf("config: witness %s %q must be a path like /witness: a leading /, no trailing /, only letters, digits and -._~", key, p)
	}
	if p == "/v1" || strings.HasPrefix(p, "/v1/") {
		return fmt.Errorf("config: witness %s %q must not be under /v1/, which is the feed API's", key, p)
	}
	return nil
}

// mountWitness adds the C2SP tlog-witness submission and monitoring APIs
// under their configured prefixes.
func (n *Node) mountWitness() {
	sub, mon := n.cfg.Witness.SubmissionPrefix, n.cfg.Witness.monitoringPrefix()
	n.mux.Handle("POST "+sub+"/add-checkpoint", http.StripPrefix(sub, n.witness.Handler()))
	// The witness routes sign-subtree only with an ML-DSA-44 key.
	n.mux.Handle("POST "+sub+"/sign-subtree", http.StripPrefix(sub, n.witness.Handler()))
	n.mux.Handle(mon+"/", http.StripPrefix(mon, n.witness.MonitoringHandler(&logIndex{p: &n.roster})))
}

// logIndex finds roster logs by ID and follows roster reloads.
type logIndex struct {
	p     *atomic.Pointer[roster.Roster]
	cache atomic.Pointer[logIDs]
}

type logIDs struct {
	r    *roster.Roster
	byID map[string]*roster.Log
}

func (x *logIndex) LogByID(id string) (*roster.Log, bool) {
	r := x.p.Load()
	c := x.cache.Load()
	if c == nil || c.r != r {
		c = &logIDs{r: r, byID: map[string]*roster.Log{}}
		for _, l := range r.Logs() {
			c.byID[tlog.LogID(l.Origin)] = l
		}
		x.cache.Store(c)
	}
	l, ok := c.byID[id]
	return l, ok
}

// Info is the body of GET /v1/info: what a client needs to find the
// node's witness APIs.
type Info struct {
	// Witness is null for an observer.
	Witness *WitnessInfo `json:"witness"`
	// Logs counts the logs the node follows.
	Logs int `json:"logs"`
}

// WitnessInfo describes the node's witness.
type WitnessInfo struct {
	// Name is the cosigning key's name; VKey its Ed25519 verifier key.
	Name string `json:"name"`
	VKey string `json:"vkey"`
	// VKeys are the verifier keys of every key add-checkpoint signs with
	// (witness.cosignature_types): Ed25519 and ML-DSA-44 by default.
	VKeys []string `json:"vkeys"`
	// SubmissionPrefix and MonitoringPrefix are the C2SP tlog-witness URL
	// prefixes, relative to the node's base URL: POST
	// <submission_prefix>/add-checkpoint and GET
	// <monitoring_prefix>/<log ID>/checkpoint.
	SubmissionPrefix string `json:"submission_prefix"`
	MonitoringPrefix string `json:"monitoring_prefix"`
}

// info returns the node's Info.
func (n *Node) info() Info {
	in := Info{Logs: len(n.roster.Load().Logs())}
	if n.witness != nil {
		in.Witness = &WitnessInfo{
			Name:             n.keys.Cosigner.Name(),
			VKey:             n.keys.Cosigner.VerifierKey(),
			SubmissionPrefix: n.cfg.Witness.SubmissionPrefix,
			MonitoringPrefix: n.cfg.Witness.monitoringPrefix(),
		}
		// Signers succeeded when the witness was built.
		signers, _ := n.keys.Signers(n.cfg.Witness.CosignatureTypes)
		for _, s := range signers {
			in.Witness.VKeys = append(in.Witness.VKeys, s.VerifierKey())
		}
	}
	return in
}

func (n *Node) serveInfo(w http.ResponseWriter, r *http.Request) {
	b, err := json.MarshalIndent(n.info(), "", "  ")
	if err != nil {
		http.Error(w, errors.New("encoding response").Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(append(b, '\n'))
}
