package testnet

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"gopkg.in/yaml.v3"

	"github.com/vigilnet/vigil/feed"
	"github.com/vigilnet/vigil/gossip/evidence"
	"github.com/vigilnet/vigil/node"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/store"
)

// Role is what a member of a test network does.
type Role string

// Roles.
const (
	Witness  Role = "witness"
	Observer Role = "observer"
)

// LogEntry is a log listed in the network's roster.
type LogEntry struct {
	// VKey is the log's note verifier key; its name is the origin.
	VKey string
	// URL is the log's tlog-tiles prefix, for logs the nodes pull from.
	URL string
}

// Options configures a network.
type Options struct {
	// Dir holds every member's keys, data and config; required.
	Dir string
	// Network is the gossip network name (default "testnet").
	Network string
	// Witnesses and Observers are how many members of each role to start.
	Witnesses, Observers int
	// Logs are listed in the roster.
	Logs []LogEntry
	// MemberLogs, if set, gives member i a roster of its own that lists
	// MemberLogs(i) instead of Logs (the same witnesses and quorum): the
	// same log keys with other URLs, as a log that serves different
	// members different views. RosterPath still lists Logs.
	MemberLogs func(i int) []LogEntry
	// Quorum is the k of the roster's witness quorum (default: a majority).
	Quorum int
	// RosterKeys is the witness key type the roster lists: "ed25519"
	// (default, type 0x04), "mldsa" (ML-DSA-44, type 0x06) or "both" (each
	// witness by both keys in an "any" group, so it counts once). Every
	// witness signs with both keys unless CosignatureTypes says otherwise;
	// Start refuses a witness that signs with no key the roster lists.
	RosterKeys string
	// CosignatureTypes, if set, gives member i's witness.cosignature_types
	// (ed25519, mldsa or both; empty is the default, both).
	CosignatureTypes func(i int) string
	// Evidence, if set, is every member's evidence option: each registers
	// the evidence it finds with a transparency service.
	Evidence *node.EvidenceConfig
	// Binary, if set, runs every member as a separate `vigil node` process;
	// empty runs them in this process.
	Binary string
	// FollowInterval is how often members poll logs that have a URL.
	FollowInterval time.Duration
	// DisableAggregation makes every witness gossip its own cosignatures
	// (gossip.disable_aggregation), to compare with aggregation.
	DisableAggregation bool
	// Bootstrap is how many earlier members each new member dials (default 3).
	Bootstrap int
	// Pprof serves Go's profiles on every member's listener (node
	// config pprof), for measurements that profile the members.
	Pprof  bool
	Logger *slog.Logger
	// Stderr receives the processes' logs in process mode (default discard).
	Stderr io.Writer
}

// Member is one node of a test network.
type Member struct {
	Name  string
	Role  Role
	Index int
	// Dir holds keys/, data/ and vigil.yaml.
	Dir  string
	VKey string
	ID   peer.ID
	// URL is the node's HTTP base URL while it runs.
	URL string
	// Gossip are its libp2p addresses (with /p2p/<id>) while it runs.
	Gossip []string

	cfg  node.Config
	node *node.Node
	stop context.CancelFunc
	done chan error
	cmd  *exec.Cmd
}

// Node returns the in-process node, or nil in process mode or while stopped.
func (m *Member) Node() *node.Node { return m.node }

// Running reports whether the member is up.
func (m *Member) Running() bool { return m.done != nil }

// PID returns the member's process ID in process mode, or 0.
func (m *Member) PID() int {
	if m.cmd == nil || m.cmd.Process == nil {
		return 0
	}
	return m.cmd.Process.Pid
}

// Network is a set of Vigil nodes on loopback sharing one roster.
type Network struct {
	opts       Options
	RosterPath string
	Members    []*Member
	quorum     int
}

// Quorum is the k of the roster's witness quorum (0 with no witnesses).
func (nw *Network) Quorum() int { return nw.quorum }

// Start creates keys, a roster and a config for every member, then starts
// them one by one, each bootstrapping from the ones before it.
func Start(ctx context.Context, opts Options) (*Network, error) {
	if opts.Dir == "" {
		return nil, errors.New("testnet: Options.Dir is required")
	}
	if opts.Network == "" {
		opts.Network = "testnet"
	}
	if opts.Bootstrap == 0 {
		opts.Bootstrap = 3
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := checkKeyOptions(opts); err != nil {
		return nil, err
	}
	nw := &Network{opts: opts, RosterPath: filepath.Join(opts.Dir, "roster")}
	var policy strings.Builder // the witnesses and the quorum; logs apart
	var names []string
	for i := 0; i < opts.Witnesses+opts.Observers; i++ {
		m := &Member{Index: i, Role: Witness}
		if i >= opts.Witnesses {
			m.Role = Observer
		}
		m.Name = fmt.Sprintf("%s-%d", m.Role, i)
		m.Dir = filepath.Join(opts.Dir, m.Name)
		vkeys, err := node.GenerateAllKeys(filepath.Join(m.Dir, "keys"), m.Name+".testnet.vigil.example")
		if err != nil {
			return nil, err
		}
		keys, err := node.LoadKeys(filepath.Join(m.Dir, "keys"), m.Role == Observer)
		if err != nil {
			return nil, err
		}
		if m.ID, err = peer.IDFromPrivateKey(keys.P2P); err != nil {
			return nil, err
		}
		if m.Role == Witness {
			names = append(names, rosterWitness(&policy, m, vkeys, opts.RosterKeys, nw.cosignatureTypes(m)))
		}
		nw.Members = append(nw.Members, m)
	}
	if len(names) > 0 {
		k := opts.Quorum
		if k <= 0 || k > len(names) {
			k = len(names)/2 + 1
		}
		nw.quorum = k
		fmt.Fprintf(&policy, "group witnesses %d %s\nquorum witnesses\n", k, strings.Join(names, " "))
	}
	if err := writeRoster(nw.RosterPath, opts.Logs, policy.String()); err != nil {
		return nil, err
	}
	// The peers file names every member's libp2p identity, so feeds show
	// who is a witness; addresses are learnt at start (bootstrap).
	peersPath := filepath.Join(opts.Dir, "peers")
	peers := "vigil-peers/v1\n"
	for _, m := range nw.Members {
		peers += fmt.Sprintf("peer %s %s\n", m.Name, m.ID)
	}
	if err := os.WriteFile(peersPath, []byte(peers), 0o644); err != nil {
		return nil, err
	}
	for _, m := range nw.Members {
		m.cfg = node.DefaultConfig()
		m.cfg.Listen = "127.0.0.1:0"
		m.cfg.DataDir = filepath.Join(m.Dir, "data")
		m.cfg.KeysDir = filepath.Join(m.Dir, "keys")
		m.cfg.Roster = nw.RosterPath
		if opts.Evidence != nil {
			m.cfg.Evidence = *opts.Evidence
		}
		if opts.MemberLogs != nil {
			m.cfg.Roster = filepath.Join(m.Dir, "roster")
			if err := writeRoster(m.cfg.Roster, opts.MemberLogs(m.Index), policy.String()); err != nil {
				return nil, err
			}
		}
		m.cfg.Observer = m.Role == Observer
		m.cfg.LogLevel = "warn"
		m.cfg.Witness.RatePerLog = 0 // the testnet drives logs hard on purpose
		m.cfg.Gossip.Network = opts.Network
		m.cfg.Gossip.Peers = peersPath
		m.cfg.Gossip.FollowInterval = opts.FollowInterval
		m.cfg.Gossip.DisableAggregation = opts.DisableAggregation
		m.cfg.Pprof = opts.Pprof
		if opts.CosignatureTypes != nil {
			m.cfg.Witness.CosignatureTypes = opts.CosignatureTypes(m.Index)
		}
		if err := nw.startMember(ctx, m); err != nil {
			nw.Stop()
			return nil, fmt.Errorf("starting %s: %w", m.Name, err)
		}
	}
	return nw, nil
}

// writeRoster writes a tlog-policy roster listing logs, then the rest.
func writeRoster(path string, logs []LogEntry, rest string) error {
	var b strings.Builder
	for _, l := range logs {
		fmt.Fprintf(&b, "log %s %s\n", l.VKey, l.URL)
	}
	b.WriteString(rest)
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// bootstrapFor lists up to opts.Bootstrap running members for m to dial:
// members started before it, chosen at random (the same choice each time m
// starts), as operators handed different bootstrap lists would dial.
// Members that are down are passed over; a member with none running
// before it (the first, restarted) dials later ones.
func (nw *Network) bootstrapFor(m *Member) []string {
	var before, after []string
	for _, p := range nw.Members {
		if p == m || !p.Running() || len(p.Gossip) == 0 {
			continue
		}
		if p.Index < m.Index {
			before = append(before, p.Gossip[0])
		} else {
			after = append(after, p.Gossip[0])
		}
	}
	rng := rand.New(rand.NewPCG(uint64(m.Index), 0x5eed))
	rng.Shuffle(len(before), func(i, j int) { before[i], before[j] = before[j], before[i] })
	out := before[:min(len(before), nw.opts.Bootstrap)]
	return append(out, after[:min(len(after), nw.opts.Bootstrap-len(out))]...)
}

// startMember starts m; a restarted member listens on the address it had
// before, as a real node would, so that whoever reaches it by URL (a log
// asking for cosignatures, a client) still can.
func (nw *Network) startMember(ctx context.Context, m *Member) error {
	m.cfg.Gossip.Bootstrap = nw.bootstrapFor(m)
	if nw.opts.Binary != "" {
		err := nw.startProcess(ctx, m)
		if err == nil {
			m.cfg.Listen = strings.TrimPrefix(m.URL, "http://")
		}
		return err
	}
	ln, err := net.Listen("tcp", m.cfg.Listen)
	if err != nil && m.cfg.Listen != "127.0.0.1:0" {
		// Someone took the port while the member was down: come back
		// elsewhere rather than not at all.
		nw.opts.Logger.Warn("restarting on a new port", "member", m.Name, "old", m.cfg.Listen, "err", err)
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return err
	}
	m.cfg.Listen = ln.Addr().String()
	n, err := node.New(m.cfg, node.Deps{Listener: ln, Logger: nw.opts.Logger.With("member", m.Name)})
	if err != nil {
		ln.Close()
		return err
	}
	m.node, m.URL, m.Gossip = n, n.URL(), nil
	if g := n.Gossip(); g != nil {
		for _, a := range g.Host().Addrs() {
			m.Gossip = append(m.Gossip, fmt.Sprintf("%s/p2p/%s", a, g.ID()))
		}
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.stop, m.done = cancel, make(chan error, 1)
	go func() { m.done <- n.Run(rctx) }()
	return nil
}

func (nw *Network) startProcess(ctx context.Context, m *Member) error {
	cfgPath := filepath.Join(m.Dir, "vigil.yaml")
	b, err := yaml.Marshal(m.cfg)
	if err != nil {
		return err
	}
	if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
		return err
	}
	cmd := exec.Command(nw.opts.Binary, "node", "--config", cfgPath)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = nw.opts.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	m.cmd, m.Gossip = cmd, nil
	m.done = make(chan error, 1)
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		announced := false
		for sc.Scan() {
			line := sc.Text()
			if a, ok := strings.CutPrefix(line, "vigil node gossip "); ok && !announced {
				m.Gossip = append(m.Gossip, a)
			}
			if u, ok := strings.CutPrefix(line, "vigil node listening on "); ok && !announced {
				m.URL, announced = u, true
				ready <- nil
			}
		}
		if !announced {
			ready <- errors.New("process exited before it was ready")
		}
		m.done <- cmd.Wait()
	}()
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	select {
	case err := <-ready:
		return err
	case <-t.C:
		cmd.Process.Kill()
		return errors.New("not ready after 30s")
	case <-ctx.Done():
		cmd.Process.Kill()
		return ctx.Err()
	}
}

// Kill stops member i abruptly: SIGKILL in process mode; in process, the
// node is stopped without waiting for anything but its goroutines.
func (nw *Network) Kill(i int) error {
	m := nw.Members[i]
	if !m.Running() {
		return fmt.Errorf("%s is not running", m.Name)
	}
	if m.cmd != nil {
		m.cmd.Process.Signal(syscall.SIGKILL)
	} else {
		m.stop()
	}
	<-m.done
	m.done, m.node, m.cmd, m.URL, m.Gossip = nil, nil, nil, "", nil
	return nil
}

// Restart starts a stopped member again on the same data directory and, if
// it is still free, the same HTTP address.
func (nw *Network) Restart(ctx context.Context, i int) error {
	m := nw.Members[i]
	if m.Running() {
		return fmt.Errorf("%s is running", m.Name)
	}
	return nw.startMember(ctx, m)
}

// Partition cuts every connection between the members in a and those in b
// and refuses new ones, in both directions (in-process mode only).
func (nw *Network) Partition(a, b []int) error {
	return nw.gate(a, b, true)
}

// Heal lifts a partition and reconnects the two sides.
func (nw *Network) Heal(ctx context.Context, a, b []int) error {
	if err := nw.gate(a, b, false); err != nil {
		return err
	}
	for _, i := range a {
		for _, j := range b {
			na, nb := nw.Members[i].node, nw.Members[j].node
			if na == nil || nb == nil || na.Gossip() == nil || nb.Gossip() == nil {
				continue
			}
			pi := peer.AddrInfo{ID: nb.Gossip().ID(), Addrs: nb.Gossip().Host().Addrs()}
			// Best effort: gossip also rediscovers peers by itself.
			_ = na.Gossip().Connect(ctx, pi)
		}
	}
	return nil
}

func (nw *Network) gate(a, b []int, block bool) error {
	for _, pair := range [][2][]int{{a, b}, {b, a}} {
		for _, i := range pair[0] {
			n := nw.Members[i].node
			if n == nil || n.Gater() == nil {
				return fmt.Errorf("%s: partitions need running in-process members", nw.Members[i].Name)
			}
			for _, j := range pair[1] {
				id := nw.Members[j].ID
				if block {
					n.Gater().Block(id)
					n.Gossip().Host().Network().ClosePeer(id)
				} else {
					n.Gater().Unblock(id)
				}
			}
		}
	}
	return nil
}

// Evidence lists the evidence member i holds: from its store in process,
// from its feed (/v1/evidence) when it runs as a separate process.
func (nw *Network) Evidence(ctx context.Context, i int) ([]store.EvidenceRecord, error) {
	m := nw.Members[i]
	if n := m.node; n != nil {
		return n.Store().ListEvidence(ctx, "", 10000)
	}
	if !m.Running() {
		return nil, fmt.Errorf("%s is not running", m.Name)
	}
	var list feed.EvidenceList
	if err := getJSON(ctx, m.URL+"/v1/evidence", &list); err != nil {
		return nil, err
	}
	out := make([]store.EvidenceRecord, 0, len(list.Evidence))
	for _, e := range list.Evidence {
		file, err := get(ctx, m.URL+"/v1/evidence/"+e.ID+"?format=raw")
		if err != nil {
			return nil, err
		}
		pe, err := evidence.ParseFile(file)
		if err != nil {
			return nil, fmt.Errorf("%s serves evidence %s that does not parse: %w", m.Name, e.ID, err)
		}
		data, err := vpb.MarshalEvidence(pe)
		if err != nil {
			return nil, err
		}
		rec := store.EvidenceRecord{ID: e.ID, Kind: e.Kind, Origin: e.Origin, Statement: e.Summary, Stored: e.Detected, Data: data}
		if len(e.Witnesses) > 0 {
			rec.Witness = e.Witnesses[0]
		}
		out = append(out, rec)
	}
	return out, nil
}

// get reads the body (at most 16 MiB) of a 200 response to GET url.
func get(ctx context.Context, url string) ([]byte, error) {
	return getLimited(ctx, url, 16<<20)
}

// getLimited reads the body (at most limit bytes) of a 200 response to GET
// url.
func getLimited(ctx context.Context, url string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return b, nil
}

func getJSON(ctx context.Context, url string, v any) error {
	b, err := get(ctx, url)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// Stop stops every member.
func (nw *Network) Stop() {
	for i, m := range nw.Members {
		if m.Running() {
			if m.cmd != nil {
				m.cmd.Process.Signal(syscall.SIGTERM)
				<-m.done
				m.done, m.cmd = nil, nil
				continue
			}
			_ = nw.Kill(i)
		}
	}
}
