package node_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigilnet/vigil/node"
)

func TestDefaultConfig(t *testing.T) {
	cfg := node.DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	// A node starts with no file at all, on loopback.
	if cfg.Listen != "127.0.0.1:7380" || cfg.DataDir == "" || cfg.KeysDir == "" || cfg.LogLevel != "info" || cfg.Observer {
		t.Fatalf("unexpected defaults: %+v", cfg)
	}
}

func TestLoadConfig(t *testing.T) {
	def := node.DefaultConfig()
	for _, tc := range []struct {
		name string
		yaml string
		// want is applied to the defaults to get the expected config.
		want func(c *node.Config)
		// errHas, if set, means LoadConfig must fail with this in the message.
		errHas string
	}{
		{name: "empty file", yaml: "", want: func(*node.Config) {}},
		{name: "comments only", yaml: "# nothing here\n", want: func(*node.Config) {}},
		{name: "overrides keep other defaults",
			yaml: "listen: 127.0.0.1:9999\ndata: /var/lib/vigil\nroster: roster.txt\nlog_lists: [a.txt, b.txt]\nwitness:\n  rate_per_log: 5\nlog_level: debug\n",
			want: func(c *node.Config) {
				c.Listen = "127.0.0.1:9999"
				c.DataDir = "/var/lib/vigil"
				c.Roster = "roster.txt"
				c.LogLists = []string{"a.txt", "b.txt"}
				c.Witness.RatePerLog = 5
				c.LogLevel = "debug"
			}},
		{name: "observer", yaml: "observer: true\n", want: func(c *node.Config) { c.Observer = true }},
		{name: "commit linger", yaml: "witness:\n  commit_linger: 250us\n", want: func(c *node.Config) { c.Witness.CommitLinger = 250 * time.Microsecond }},
		{name: "commit linger off", yaml: "witness:\n  commit_linger: -1s\n", want: func(c *node.Config) { c.Witness.CommitLinger = -time.Second }},
		{name: "commit linger not a duration", yaml: "witness:\n  commit_linger: soon\n", errHas: "soon"},
		{name: "unknown field", yaml: "listn: 127.0.0.1:1\n", errHas: "listn"},
		{name: "unknown nested field", yaml: "witness:\n  rate: 5\n", errHas: "rate"},
		{name: "wrong type", yaml: "witness:\n  burst: many\n", errHas: "many"},
		{name: "not YAML", yaml: "listen: [\n", errHas: "config"},
		{name: "bad log level", yaml: "log_level: loud\n", errHas: "log_level"},
		{name: "negative rate", yaml: "witness:\n  rate_per_log: -1\n", errHas: "rate_per_log"},
		{name: "negative burst", yaml: "witness:\n  burst: -3\n", errHas: "burst"},
		{name: "negative memory limit", yaml: "memory_limit_mb: -1\n", errHas: "memory_limit_mb"},
		{name: "freshness", yaml: "freshness:\n  default_interval: 10m\n  check_every: 2s\n  intervals:\n    example.com/log: 30s\n", want: func(c *node.Config) {
			c.Freshness.DefaultInterval = 10 * time.Minute
			c.Freshness.CheckEvery = 2 * time.Second
			c.Freshness.Intervals = map[string]time.Duration{"example.com/log": 30 * time.Second}
		}},
		{name: "freshness interval zero", yaml: "freshness:\n  intervals:\n    example.com/log: 0s\n", errHas: "example.com/log"},
		{name: "freshness negative default", yaml: "freshness:\n  default_interval: -1m\n", errHas: "default_interval"},
		{name: "empty listen", yaml: "listen: \"\"\n", errHas: "listen"},
		{name: "empty data", yaml: "data: \"\"\n", errHas: "data"},
		{name: "http caps", yaml: "http:\n  max_conns: 900\n  max_event_streams: 300\n  event_stream_lifetime: 2m\n",
			want: func(c *node.Config) {
				c.HTTP.MaxConns, c.HTTP.MaxEventStreams, c.HTTP.EventStreamLifetime = 900, 300, 2*time.Minute
			}},
		{name: "own sighting rate", yaml: "gossip:\n  own_sighting_rate: 200\n", want: func(c *node.Config) { c.Gossip.OwnSightingRate = 200 }},
		{name: "own sighting rate unbounded", yaml: "gossip:\n  own_sighting_rate: -1\n", want: func(c *node.Config) { c.Gossip.OwnSightingRate = -1 }},
		{name: "own sighting rate not a number", yaml: "gossip:\n  own_sighting_rate: .nan\n", errHas: "own_sighting_rate"},
		{name: "witness interval", yaml: "feed:\n  witness_interval: 2m\n", want: func(c *node.Config) { c.Feed.WitnessInterval = 2 * time.Minute }},
		{name: "negative witness interval", yaml: "feed:\n  witness_interval: -1s\n", errHas: "witness_interval"},
		{name: "streams could fill every connection", yaml: "http:\n  max_conns: 100\n  max_event_streams: 100\n", errHas: "max_event_streams"},
		{name: "streams per address could fill the address", yaml: "http:\n  max_conns_per_addr: 4\n  max_event_streams_per_addr: 4\n", errHas: "max_event_streams_per_addr"},
		{name: "zero connections", yaml: "http:\n  max_conns: 0\n", errHas: "max_conns"},
		{name: "operator mistakes allowed", yaml: "allow_no_logs: true\nallow_readable_keys: true\n",
			want: func(c *node.Config) { c.AllowNoLogs, c.AllowReadableKeys = true, true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "vigil.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := node.LoadConfig(path)
			if tc.errHas != "" {
				if err == nil {
					t.Fatalf("loaded %+v, want an error about %q", cfg, tc.errHas)
				}
				if !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("error %q does not mention %q", err, tc.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := def
			tc.want(&want)
			if !reflect.DeepEqual(cfg, want) {
				t.Fatalf("got  %+v\nwant %+v", cfg, want)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "nope.yaml")
		if _, err := node.LoadConfig(path); err == nil || !strings.Contains(err.Error(), "nope.yaml") {
			t.Fatalf("error %v does not name the file", err)
		}
	})
}
