package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilnet/vigil/roster"
)

// nodeLists is the node's record of the logs adopted from logs/v0 lists,
// embedded in Node. Re-fetching a list only ever adds to it.
type nodeLists struct {
	listMu sync.Mutex
	// policy is the roster file as last read; adopted the logs adopted
	// from each list (by list location, then origin), also recorded under
	// the data directory (monitor_adopted.go); listsLoaded whether the
	// first load succeeded.
	policy      *roster.Roster
	adopted     map[string]map[string]*roster.Log
	listsLoaded bool
	// startFetchErr is the fetch failure of the first load, if any: the
	// refresh loop then retries soon.
	startFetchErr error
	listClient    *http.Client

	listFetches *prometheus.CounterVec
	listAdded   prometheus.Counter
	listIgnored prometheus.Counter
}

func newNodeLists() nodeLists {
	return nodeLists{
		adopted:    map[string]map[string]*roster.Log{},
		listClient: &http.Client{Timeout: time.Minute},
		listFetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_log_list_fetches_total",
			Help: "Fetches of the configured logs/v0 lists, by result (ok, error).",
		}, []string{"result"}),
		listAdded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_log_list_logs_added_total",
			Help: "Logs adopted from logs/v0 lists after the node started.",
		}),
		listIgnored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_log_list_entries_ignored_total",
			Help: "Re-fetched list entries that would have changed an already configured log's key or qpd, and were ignored.",
		}),
	}
}

func (n *Node) listMetrics() []prometheus.Collector {
	return []prometheus.Collector{n.listFetches, n.listAdded, n.listIgnored}
}

// reloadRoster rebuilds the roster from the roster file (if rereadPolicy)
// and the re-fetched lists. A log adopted from a list stays configured as
// it was adopted, across restarts, whatever the list says later:
//
// SPEC (witness-network log lists): "You must not remove or update an
// already configured log as a result of a changed list."
//
// The first load is strict where the operator can fix things: a list file
// that cannot be read or parsed, or a list that gives a log of the roster
// file (or of another list) another key, stops the node from starting. A
// list URL that cannot be fetched is logged and retried (runLogLists). The
// returned error is fatal (the roster is unchanged); fetch failures that
// were tolerated are returned by RefreshLogLists.
func (n *Node) reloadRoster(ctx context.Context, rereadPolicy bool) (fetchErr error, err error) {
	n.listMu.Lock()
	defer n.listMu.Unlock()
	policy := n.policy
	if rereadPolicy || policy == nil {
		if policy, err = roster.Load(n.cfg.Roster); err != nil {
			return nil, err
		}
	}
	strict := !n.listsLoaded
	adopted := make(map[string]map[string]*roster.Log, len(n.cfg.LogLists))
	for _, loc := range n.cfg.LogLists {
		m := map[string]*roster.Log{}
		for o, l := range n.adopted[loc] {
			m[o] = l
		}
		if strict {
			if m, err = n.readAdopted(loc); err != nil {
				return nil, err
			}
		}
		adopted[loc] = m
	}
	// Logs configured before this fetch: the roster file's, then those
	// adopted from each list, in list order.
	configured := map[string]*roster.Log{}
	for _, l := range policy.Logs() {
		configured[l.Origin] = l
	}
	wasAdopted := map[string]bool{}
	for _, loc := range n.cfg.LogLists {
		for o, l := range adopted[loc] {
			if _, ok := configured[o]; !ok {
				configured[o] = l
				wasAdopted[o] = true
			}
		}
	}
	changed := map[string]bool{}
	for _, loc := range n.cfg.LogLists {
		fetched, err := roster.FetchLogList(ctx, n.listClient, loc)
		if err != nil {
			n.listFetches.WithLabelValues("error").Inc()
			if strict && !roster.IsURL(loc) {
				return nil, err
			}
			n.log.Warn("fetching log list failed; keeping the logs already configured", "list", loc, "err", err)
			fetchErr = errors.Join(fetchErr, err)
			continue
		}
		n.listFetches.WithLabelValues("ok").Inc()
		var ch roster.ListChange
		configured, ch = roster.MergeListLogs(configured, fetched)
		for _, l := range ch.Ignored {
			prev := configured[l.Origin]
			if strict && prev.VKey != l.VKey && !wasAdopted[l.Origin] {
				return nil, fmt.Errorf("%s: %w: log %q is configured with key %s, the list gives %s", loc, roster.ErrSyntax, l.Origin, prev.VKey, l.VKey)
			}
			n.listIgnored.Inc()
			n.log.Warn("log list changes an already configured log; keeping it as configured", "list", loc, "origin", l.Origin, "key", prev.VKey, "listed_key", l.VKey, "qpd", prev.QPD, "listed_qpd", l.QPD)
		}
		for _, l := range ch.Added {
			adopted[loc][l.Origin] = l
			changed[loc] = true
			if !strict {
				n.listAdded.Inc()
				n.log.Info("log adopted from a log list", "list", loc, "origin", l.Origin, "qpd", l.QPD)
			}
		}
	}
	seen := map[string]bool{}
	var logs []*roster.Log
	for _, loc := range n.cfg.LogLists {
		for o, l := range adopted[loc] {
			if !seen[o] {
				seen[o] = true
				logs = append(logs, l)
			}
		}
	}
	sort.Slice(logs, func(i, j int) bool { return logs[i].Origin < logs[j].Origin })
	r, err := policy.WithLogs(logs)
	if err != nil {
		return nil, err
	}
	// Recorded before they are used: a log the node may cosign for stays
	// configured after a restart.
	for _, loc := range n.cfg.LogLists {
		if changed[loc] {
			if err := n.writeAdopted(loc, adopted[loc]); err != nil {
				return nil, err
			}
		}
	}
	if strict {
		n.startFetchErr = fetchErr
	}
	n.policy, n.adopted, n.listsLoaded = policy, adopted, true
	n.roster.Store(r)
	n.log.Info("roster loaded", "logs", len(r.Logs()), "witnesses", len(r.Witnesses()), "from_lists", len(logs))
	return fetchErr, nil
}

// runLogLists re-fetches the configured lists every LogListRefresh until
// ctx ends. After a failed fetch it retries sooner: after a minute,
// doubling up to the refresh interval.
func (n *Node) runLogLists(ctx context.Context) error {
	if len(n.cfg.LogLists) == 0 {
		return nil
	}
	n.listMu.Lock()
	failed := n.startFetchErr != nil
	n.listMu.Unlock()
	refresh, backoff := n.cfg.logListRefresh(), time.Minute
	for {
		wait := refresh
		if failed {
			wait = min(backoff, refresh)
			backoff = min(2*backoff, refresh)
		} else {
			backoff = time.Minute
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		_, err := n.RefreshLogLists(ctx)
		failed = err != nil
	}
}

// RefreshLogLists re-fetches the configured logs/v0 lists now and adopts
// the logs they add; the roster file is not re-read. It returns the number
// of logs in the roster afterwards and any error (the logs already
// configured stay in either case).
func (n *Node) RefreshLogLists(ctx context.Context) (int, error) {
	fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	fetchErr, err := n.reloadRoster(fctx, false)
	if err == nil {
		err = fetchErr
	}
	if err != nil {
		n.log.Warn("log list refresh", "err", err)
	}
	return len(n.roster.Load().Logs()), err
}
