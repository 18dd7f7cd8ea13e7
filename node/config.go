// Package node is Vigil's composition root: it reads a node's configuration
// and keys, opens its store and wires the witness, gossip, feed and
// transparency service onto one HTTP listener.
package node

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vigilnet/vigil/notify"
	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/store"
)

// Config is a node's configuration (vigil.yaml). Every field has a working
// default, so a node starts with no file at all on loopback.
type Config struct {
	// Listen is the HTTP listen address.
	Listen string `yaml:"listen"`
	// DataDir holds the node's Badger store.
	DataDir string `yaml:"data"`
	// KeysDir holds witness.key, witness.vkey and p2p.key (vigil keygen).
	KeysDir string `yaml:"keys"`
	// Roster is the network's tlog-policy file (default roster.txt); empty
	// means no logs, which only AllowNoLogs lets a node start with.
	Roster string `yaml:"roster"`
	// LogLists are witness-network logs/v0 lists merged into the roster:
	// file paths or http(s) URLs, re-fetched every LogListRefresh.
	LogLists []string `yaml:"log_lists"`
	// LogListRefresh is how often LogLists are re-fetched (0 means 24h; at
	// most 168h: the witness network asks for at least weekly). A re-fetch
	// adds new logs and never removes or changes a configured one.
	LogListRefresh time.Duration `yaml:"log_list_refresh"`
	// Observer runs without a cosigning key: the node never cosigns.
	Observer bool `yaml:"observer"`
	// Witness tunes the add-checkpoint endpoint.
	Witness WitnessConfig `yaml:"witness"`
	// Feed configures the read API and dashboard (tokens, CORS).
	Feed FeedConfig `yaml:"feed"`
	// Alerts configures webhook notifications (docs/operations.md).
	Alerts notify.Config `yaml:"alerts"`
	// Gossip configures the libp2p gossip network and the log follower.
	Gossip GossipConfig `yaml:"gossip"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`
	// MemoryLimitMB is the Go runtime's soft memory limit that `vigil node`
	// sets for its process (GOMEMLIMIT wins if set); 0 means none. The node
	// package itself never changes process-wide settings.
	MemoryLimitMB int `yaml:"memory_limit_mb"`
	// Pprof serves Go's runtime profiles (net/http/pprof) under
	// /debug/pprof/ on the node's listener. Off by default: a profile shows
	// the node's internals and costs CPU while it is taken, so turn it on
	// only where the listener is private.
	Pprof bool `yaml:"pprof"`
	// AllowNoLogs lets a node start with a roster and log lists that name
	// no log: it would watch nothing, which is almost always a mistake
	// (a missing --roster), so it is refused unless this is set.
	AllowNoLogs bool `yaml:"allow_no_logs"`
	// AllowReadableKeys downgrades private key files readable by group or
	// others (witness.key, p2p.key) from an error to a warning.
	AllowReadableKeys bool `yaml:"allow_readable_keys"`
	// HTTP bounds the HTTP listener's connections and event streams.
	HTTP HTTPConfig `yaml:"http"`
	// Store sets the data volume's free-space watermarks (docs/operations.md).
	Store StoreConfig `yaml:"store"`
	// Freshness sets the logs' expected publication intervals, from which
	// the feed derives each log's fresh / late / stale state.
	Freshness FreshnessConfig `yaml:"freshness"`
	// Evidence registers the node's evidence with a transparency service.
	Evidence EvidenceConfig `yaml:"evidence"`
	// RecoverFromPeers (vigil node --recover-from-peers, never from the
	// file) resumes logs whose stored witness state was rolled back at the
	// size and root of the store's witness journal.
	RecoverFromPeers bool `yaml:"-"`
}

// HTTPConfig bounds the HTTP listener. The defaults fit a node run with
// 1,024 file descriptors (a service's usual soft limit): libp2p's resource
// manager takes up to half of them, these caps 384, and the rest is left to
// Badger's files, the listeners and the log follower.
type HTTPConfig struct {
	// MaxConns caps open HTTP connections (default 384). At the cap a new
	// connection displaces the oldest one that has no request in progress,
	// then the oldest slow request body, then the oldest event stream.
	MaxConns int `yaml:"max_conns"`
	// MaxConnsPerAddr caps open connections from one IP address (default
	// 128: a log's pusher or a load generator with 64 keep-alive
	// connections fits, and one address still holds at most a third of
	// max_conns).
	MaxConnsPerAddr int `yaml:"max_conns_per_addr"`
	// MaxEventStreams caps GET /v1/events streams (default 128), so that at
	// least MaxConns-MaxEventStreams connections remain for requests; past
	// it the oldest stream is ended.
	MaxEventStreams int `yaml:"max_event_streams"`
	// MaxEventStreamsPerAddr caps event streams from one IP address
	// (default 8); past it that address's oldest stream is ended.
	MaxEventStreamsPerAddr int `yaml:"max_event_streams_per_addr"`
	// EventStreamLifetime is how long an event stream lasts before the node
	// ends it, telling the client to reconnect (default 10m).
	EventStreamLifetime time.Duration `yaml:"event_stream_lifetime"`
	// TLSCert and TLSKey are PEM files; with both set the listener serves
	// HTTPS (HTTP/1.1) instead of plain HTTP. The files are re-read when
	// they change, so a renewed certificate needs no restart.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// MetricsListen, if set, serves GET /metrics on this address (plain
	// HTTP, no token) instead of on the main listener; bind it to a
	// private interface. Empty means /metrics is on the main listener,
	// behind the feed tokens when tokens are set.
	MetricsListen string `yaml:"metrics_listen"`
}

// DefaultHTTPConfig returns the default HTTP bounds.
func DefaultHTTPConfig() HTTPConfig {
	return HTTPConfig{MaxConns: 384, MaxConnsPerAddr: 128, MaxEventStreams: 128, MaxEventStreamsPerAddr: 8, EventStreamLifetime: 10 * time.Minute}
}

// validate checks that the caps leave room for requests.
func (h HTTPConfig) validate() error {
	switch {
	case h.MaxConns <= 0 || h.MaxConnsPerAddr <= 0 || h.MaxEventStreams <= 0 || h.MaxEventStreamsPerAddr <= 0 || h.EventStreamLifetime <= 0:
		return errors.New("config: http max_conns, max_conns_per_addr, max_event_streams, max_event_streams_per_addr and event_stream_lifetime must be positive")
	case h.MaxEventStreams >= h.MaxConns:
		return fmt.Errorf("config: http max_event_streams (%d) must be below max_conns (%d), or streams could hold every connection", h.MaxEventStreams, h.MaxConns)
	case h.MaxEventStreamsPerAddr >= h.MaxConnsPerAddr:
		return fmt.Errorf("config: http max_event_streams_per_addr (%d) must be below max_conns_per_addr (%d)", h.MaxEventStreamsPerAddr, h.MaxConnsPerAddr)
	case (h.TLSCert == "") != (h.TLSKey == ""):
		return errors.New("config: http tls_cert and tls_key must be given together")
	}
	return nil
}

// FreshnessConfig sets the logs' expected publication intervals. A log is
// late when no checkpoint of it has been quorum-cosigned for 2 intervals and
// stale after 12 (feed.LateAfter, feed.StaleAfter).
type FreshnessConfig struct {
	// DefaultInterval applies to a log with no entry in Intervals and no
	// qpd in its logs/v0 list (whose interval is 86400/qpd seconds, at
	// least a minute); 0 means 5m (feed.DefaultExpectedInterval).
	DefaultInterval time.Duration `yaml:"default_interval"`
	// Intervals overrides the interval per log origin.
	Intervals map[string]time.Duration `yaml:"intervals"`
	// CheckEvery is how often freshness is re-evaluated on the clock;
	// 0 means 1s.
	CheckEvery time.Duration `yaml:"check_every"`
}

// validate refuses intervals that cannot work.
func (f FreshnessConfig) validate() error {
	if f.DefaultInterval < 0 || f.CheckEvery < 0 {
		return errors.New("config: freshness default_interval and check_every must not be negative")
	}
	for origin, d := range f.Intervals {
		if d <= 0 {
			return fmt.Errorf("config: freshness interval of %q must be positive", origin)
		}
	}
	return nil
}

// StoreConfig sets when the store refuses writes for lack of disk space.
type StoreConfig struct {
	// LowWatermarkMB: below this much free space on the data volume the
	// store refuses writes (503 on add-checkpoint) and the node will not
	// start; 0 means 16 (store.DefaultLowWatermark).
	LowWatermarkMB int `yaml:"low_watermark_mb"`
	// HighWatermarkMB: writes resume above this much free space; 0 means
	// 24, or 1.5 × low_watermark_mb if that is set.
	HighWatermarkMB int `yaml:"high_watermark_mb"`
	// BallastMB is the reserve file kept in the data directory and released
	// under pressure; 0 means 8, negative means none.
	BallastMB int `yaml:"ballast_mb"`
}

// storeOptions are the store.Options of the configuration.
func (c Config) storeOptions(lg *slog.Logger) store.Options {
	o := store.Options{
		Logger:            lg,
		CommitLinger:      c.Witness.CommitLinger,
		GossipSyncDelay:   c.Gossip.SyncDelay,
		RecoverRolledBack: c.RecoverFromPeers,
		LowWatermark:      uint64(c.Store.LowWatermarkMB) << 20,
		HighWatermark:     uint64(c.Store.HighWatermarkMB) << 20,
		Ballast:           int64(c.Store.BallastMB) << 20,
	}
	return o
}

// WitnessConfig tunes the co-signing endpoint.
type WitnessConfig struct {
	// RatePerLog is the sustained add-checkpoint rate per log (requests per
	// second); 0 means unlimited. Logs from a logs/v0 list use their qpd.
	RatePerLog float64 `yaml:"rate_per_log"`
	// Burst is the per-log burst; 0 means max(1, rate_per_log).
	Burst int `yaml:"burst"`
	// CommitLinger is how long the store's group commit may wait, under
	// load, for more cosignatures to share one sync; 0 means the default
	// (store.DefaultCommitLinger, 500µs), negative means never wait.
	CommitLinger time.Duration `yaml:"commit_linger"`
	// SubmissionPrefix is the C2SP tlog-witness submission prefix: the
	// node serves POST <submission_prefix>/add-checkpoint (default "", the
	// root).
	SubmissionPrefix string `yaml:"submission_prefix"`
	// MonitoringPrefix is the C2SP tlog-witness monitoring prefix: the
	// node serves GET <monitoring_prefix>/<log ID>/checkpoint ("" means
	// /monitoring). It may equal SubmissionPrefix; it must not be under
	// /v1/, which is the feed's.
	MonitoringPrefix string `yaml:"monitoring_prefix"`
	// CosignatureTypes picks the cosigning keys add-checkpoint signs with:
	// ed25519 (cosignature/v1, 0x04), mldsa (ML-DSA-44 subtree/v1, 0x06)
	// or both. Empty means both (Keys.Signers: Ed25519 alone for a keys
	// directory without witness-mldsa.key).
	CosignatureTypes string `yaml:"cosignature_types"`
}

// DefaultConfig returns the configuration used when no file is given.
func DefaultConfig() Config {
	return Config{
		Listen:   "127.0.0.1:7380",
		DataDir:  "vigil-data",
		KeysDir:  "vigil-keys",
		LogLevel: "info",
		// No soft memory limit: the heap is bounded by what the node
		// retains (its bounded caches and queues, Badger's memtables and
		// table builders), not by the garbage collector. A node
		// watching 1,000 logs under 64 clients keeps a live heap of 85-140
		// MB, so a limit below about twice that keeps the collector
		// running: at 48 MB it took 45 % of the node's CPU, at 128 MB
		// 11 % (4 % with none) with 29 % fewer cosignatures/s, and the
		// detector's queue grew three times as long. A limit that never
		// binds (192 MB: 5 % GC) bounds nothing in steady state. Set
		// memory_limit_mb (or GOMEMLIMIT) where the process has a hard
		// memory cap, to about twice the live heap.
		MemoryLimitMB:  0,
		Witness:        WitnessConfig{RatePerLog: 20, Burst: 40, MonitoringPrefix: DefaultMonitoringPrefix},
		LogListRefresh: DefaultLogListRefresh,
		Roster:         "roster.txt",
		HTTP:           DefaultHTTPConfig(),
	}
}

// ErrNoLogs is returned by New when the roster and log lists name no log
// and the configuration does not say that is intended (allow_no_logs).
var ErrNoLogs = errors.New("no log to watch")

// checkWatchesLogs refuses a roster without logs unless cfg allows it, and
// warns when it does: such a node cosigns nothing and detects nothing.
func checkWatchesLogs(cfg Config, r *roster.Roster, log *slog.Logger) error {
	if len(r.Logs()) > 0 {
		return nil
	}
	roster := cfg.Roster
	if roster == "" {
		roster = "(none)"
	}
	if !cfg.AllowNoLogs {
		return fmt.Errorf("%w: roster %s and %d log lists name no log, so the node would watch nothing; give the network's roster (--roster, default roster.txt) or set allow_no_logs: true", ErrNoLogs, roster, len(cfg.LogLists))
	}
	log.Warn("the roster names no log: this node watches nothing (allow_no_logs is set)", "roster", roster)
	return nil
}

// LoadConfig reads a YAML file over the defaults. Unknown fields are errors,
// so a typo never silently falls back to a default.
func LoadConfig(path string) (Config, error) {
	cfg := DefaultConfig()
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("reading config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, cfg.Validate()
}

// Validate checks the configuration for values that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Listen == "":
		return errors.New("config: listen is empty")
	case c.DataDir == "":
		return errors.New("config: data is empty")
	case c.MemoryLimitMB < 0:
		return errors.New("config: memory_limit_mb must not be negative")
	case c.Store.LowWatermarkMB < 0 || c.Store.HighWatermarkMB < 0:
		return errors.New("config: store low_watermark_mb and high_watermark_mb must not be negative")
	case c.Store.HighWatermarkMB != 0 && c.Store.HighWatermarkMB < c.Store.lowMB():
		return errors.New("config: store high_watermark_mb must not be below low_watermark_mb")
	case c.Witness.RatePerLog < 0 || c.Witness.Burst < 0:
		return errors.New("config: witness rate_per_log and burst must not be negative")
	case c.Feed.WitnessInterval < 0:
		return errors.New("config: feed witness_interval must not be negative")
	case math.IsNaN(c.Gossip.OwnSightingRate):
		return errors.New("config: gossip own_sighting_rate is not a number")
	}
	switch c.Witness.CosignatureTypes {
	case "", CosignBoth, CosignEd25519, CosignMLDSA:
	default:
		return fmt.Errorf("config: witness cosignature_types %q is not ed25519, mldsa or both", c.Witness.CosignatureTypes)
	}
	if err := c.HTTP.validate(); err != nil {
		return err
	}
	if err := c.Freshness.validate(); err != nil {
		return err
	}
	if err := c.validateMonitoring(); err != nil {
		return err
	}
	if err := c.Alerts.Validate(); err != nil {
		return err
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("config: log_level %q is not debug, info, warn or error", c.LogLevel)
	}
	return nil
}

// lowMB is the low watermark in effect.
func (s StoreConfig) lowMB() int {
	if s.LowWatermarkMB == 0 {
		return store.DefaultLowWatermark >> 20
	}
	return s.LowWatermarkMB
}
