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
	// policy is the roster file as last read; listLogs the logs adopted
	// from lists, by origin; listsLoaded whether the first load succeeded.
	policy      *roster.Roster
	listLogs    map[string]*roster.Log
	listsLoaded bool
	listClient  *http.Client

	listFetches *prometheus.CounterVec
	listAdded   prometheus.Counter
	listIgnored prometheus.Counter
}

func newNodeLists() nodeLists {
	return nodeLists{
		listLogs:   map[string]*roster.Log{},
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
// and the re-fetched lists. The first load is strict, as a roster file is:
// an unreadable list or two keys for one origin stop the node from
// starting. Later loads keep every log already configured as it is:
//
// SPEC (witness-network log lists): "You must not remove or update an
// already configured log as a result of a changed list."
func (n *Node) reloadRoster(ctx context.Context, rereadPolicy bool) error {
	n.listMu.Lock()
	defer n.listMu.Unlock()
	policy := n.policy
	if rereadPolicy || policy == nil {
		p, err := roster.Load(n.cfg.Roster)
		if err != nil {
			return err
		}
		policy = p
	}
	strict := !n.listsLoaded
	// Logs configured before this fetch: the policy's and those adopted.
	configured := make(map[string]*roster.Log, len(n.listLogs))
	for o, l := range n.listLogs {
		configured[o] = l
	}
	for _, l := range policy.Logs() {
		configured[l.Origin] = l
	}
	var added []*roster.Log
	var fetchErr error
	for _, loc := range n.cfg.LogLists {
		fetched, err := roster.FetchLogList(ctx, n.listClient, loc)
		if err != nil {
			n.listFetches.WithLabelValues("error").Inc()
			if strict {
				return err
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
			if strict && prev.VKey != l.VKey {
				return fmt.Errorf("%s: %w: log %q listed with two different keys", loc, roster.ErrSyntax, l.Origin)
			}
			if !strict {
				n.listIgnored.Inc()
				n.log.Warn("log list changes an already configured log; keeping it as configured", "list", loc, "origin", l.Origin, "key", prev.VKey, "listed_key", l.VKey, "qpd", prev.QPD, "listed_qpd", l.QPD)
			}
		}
		added = append(added, ch.Added...)
	}
	lists := map[string]*roster.Log{}
	for o, l := range n.listLogs {
		lists[o] = l
	}
	for _, l := range added {
		lists[l.Origin] = l
	}
	logs := make([]*roster.Log, 0, len(lists))
	for _, l := range lists {
		logs = append(logs, l)
	}
	sort.Slice(logs, func(i, j int) bool { return logs[i].Origin < logs[j].Origin })
	r, err := policy.WithLogs(logs)
	if err != nil {
		return err
	}
	n.policy, n.listLogs, n.listsLoaded = policy, lists, true
	n.roster.Store(r)
	if !strict && len(added) > 0 {
		n.listAdded.Add(float64(len(added)))
		for _, l := range added {
			n.log.Info("log adopted from a log list", "origin", l.Origin, "qpd", l.QPD)
		}
	}
	n.log.Info("roster loaded", "logs", len(r.Logs()), "witnesses", len(r.Witnesses()), "from_lists", len(lists))
	return fetchErr
}

// runLogLists re-fetches the configured lists every LogListRefresh until
// ctx ends. A failed fetch keeps what is configured and is retried at the
// next tick.
func (n *Node) runLogLists(ctx context.Context) error {
	if len(n.cfg.LogLists) == 0 {
		return nil
	}
	t := time.NewTicker(n.cfg.logListRefresh())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			n.RefreshLogLists(ctx)
		}
	}
}

// RefreshLogLists re-fetches the configured logs/v0 lists now and adopts
// the logs they add; the roster file is not re-read. It returns the number
// of logs in the roster afterwards and any fetch error (the logs already
// configured stay in either case).
func (n *Node) RefreshLogLists(ctx context.Context) (int, error) {
	fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	err := n.reloadRoster(fctx, false)
	if err != nil {
		n.log.Warn("log list refresh", "err", err)
	}
	return len(n.roster.Load().Logs()), err
}
