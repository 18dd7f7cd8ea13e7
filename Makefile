# Vigil build, test and measurement targets.
# Everything the project needs is installed by these targets or by .ci/run.

# Go 1.27 (crypto/mldsa): the go command fetches this toolchain through the
# module proxy on first use; every target and script runs with it.
export GOTOOLCHAIN := go1.27.3
GO        ?= go
BIN       := bin
TOOLS     := $(CURDIR)/bin/tools
STATICCHECK_VERSION := v0.8.2
PKGS      := ./...
# Packages with concurrency that must also pass under the race detector.
RACE_PKGS ?= ./store/... ./witness/... ./roster/... ./tlog/... ./feed/... ./gossip/... ./node/... ./scitt/... ./testnet/load/...
FUZZTIME  ?= 30s

.PHONY: all build test test-race test-short bench bench-witness bench-net bench-conns fuzz soak demo lint vet staticcheck fmt clean tools

all: build

build:
	$(GO) build -o $(BIN)/vigil ./cmd/vigil

test: build chromium test-alerts
	$(GO) test -count=1 -timeout 15m $(PKGS)
	$(GO) test -count=1 -race -timeout 15m $(RACE_PKGS)

test-short:
	$(GO) test -count=1 -short $(PKGS)

bench: build
	$(GO) test -run '^$$' -bench . -benchtime 2s -timeout 60m $(PKGS)

# bench-witness measures witnesses as deployed: `vigil node` and litewitness
# (built with Go 1.27 from the module proxy) each in its own process with
# its default configuration, driven by `vigil bench witness --url` from
# another process, in interleaved rounds (TestBenchDeployed prints one
# table); then the in-process witness benchmarks, 3 times each.
# Knobs (make bench-witness VAR=value): VIGIL_BENCH_COSIGN, the node's
# witness.cosignature_types, one vigil row per value of a list such as
# ed25519,mldsa,both (default both; litewitness signs Ed25519 only);
# VIGIL_BENCH_ROUNDS, VIGIL_BENCH_LOGS, VIGIL_BENCH_CLIENTS,
# VIGIL_BENCH_DURATION, VIGIL_BENCH_PEERS, VIGIL_BENCH_NODE_CONFIG
# (TestBenchDeployed). docs/BENCHMARKS.md.
bench-witness: build
	@command -v ssh-agent >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-client >/dev/null)
	VIGIL_BENCH_DEPLOYED=1 $(GO) test -count=1 -timeout 60m -run '^TestBenchDeployed$$' -v ./testnet/load/
	$(GO) test -run '^$$' -bench 'Witness|Ed25519' -benchtime 2s -count 3 -timeout 30m ./testnet/load/

# bench-net runs the network measurements (detection latency at
# 10/25/50 nodes, quiet and under a 10-peer flood; cosign throughput with the
# network running; RSS per node process at 1,000 logs), 3 runs each, writing
# docs/bench-net.json and docs/bench-net.png. Knobs (make bench-net
# VAR=value; all in TestBenchNet): VIGIL_BENCH_NODES (10,25,50),
# VIGIL_BENCH_RUNS (3), VIGIL_BENCH_PARTS, VIGIL_BENCH_MODES, and
# VIGIL_BENCH_KEYS=ed25519|mldsa|both (the roster's key type, every witness
# signing with it alone; unset: an Ed25519 roster, witnesses signing both).
bench-net: build
	VIGIL_BENCH_NET=1 $(GO) test -count=1 -timeout 180m -run '^TestBenchNet$$' -v ./testnet/

# bench-conns holds 15,000 idle connections (slowloris headers and bodies,
# event streams) against a vigil node process with its default config and
# 1,024 file descriptors, and checks add-checkpoint (< 2 s) and /healthz
# (< 1 s) are answered and its RSS stays under 150 MB; docs/BENCHMARKS.md.
bench-conns: build
	VIGIL_BENCH_CONNS=1 $(GO) test -count=1 -timeout 15m -run '^TestBenchConns$$' -v ./testnet/connflood/

# fuzz runs every Fuzz target for FUZZTIME each.
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 100x $$pkg; \
	  done; done

soak: build
	VIGIL_SOAK=1 $(GO) test -count=1 -timeout 120m -run 'Soak|Crash' $(PKGS)

demo: build
	./$(BIN)/vigil demo

lint: vet staticcheck
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)

vet:
	$(GO) vet $(PKGS)

$(TOOLS)/staticcheck:
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

staticcheck: $(TOOLS)/staticcheck
	$(TOOLS)/staticcheck $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN)

# proto regenerates proto/*.pb.go with pinned tools: protoc from Debian's
# protobuf-compiler package and protoc-gen-go at the version go.mod requires.
PROTOC_GEN_GO_VERSION = $(shell $(GO) list -m -f '{{.Version}}' google.golang.org/protobuf)

.PHONY: proto
proto:
	@command -v protoc >/dev/null || { apt-get update -qq && apt-get install -y -qq protobuf-compiler; }
	GOBIN=$(TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	PATH=$(TOOLS):$$PATH protoc --proto_path=proto --go_out=proto --go_opt=paths=source_relative proto/*.proto

# test-mysql runs the scitt MySQL suite against a private MariaDB: installed
# from Debian if missing, started on a unix socket in a temporary datadir
# (no networking, no grant tables), stopped afterwards.
# TEST_MYSQL_ARGS picks what runs, e.g. the benchmark:
#   make test-mysql TEST_MYSQL_ARGS='-run ^$$ -bench MySQL -benchtime 20000x'
TEST_MYSQL_ARGS ?= -run TestMySQL -v
.PHONY: test-mysql
test-mysql:
	@set -eu; \
	if ! command -v mariadbd >/dev/null 2>&1 && ! test -x /usr/sbin/mariadbd; then \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends mariadb-server >/dev/null; \
	fi; \
	MARIADBD=$$(command -v mariadbd || echo /usr/sbin/mariadbd); \
	D=$$(mktemp -d /tmp/vigil-mysql.XXXXXX); \
	mariadb-install-db --no-defaults --datadir=$$D/data --user=$$(id -un) --auth-root-authentication-method=normal >$$D/install.log 2>&1 || { cat $$D/install.log; exit 1; }; \
	$$MARIADBD --no-defaults --datadir=$$D/data --socket=$$D/sock --pid-file=$$D/pid --skip-networking --skip-grant-tables --user=$$(id -un) --innodb-flush-log-at-trx-commit=1 >$$D/mysqld.log 2>&1 & PID=$$!; \
	trap 'kill $$PID 2>/dev/null; wait $$PID 2>/dev/null; rm -rf $$D' EXIT; \
	for i in $$(seq 120); do mariadb-admin --no-defaults --socket=$$D/sock ping >/dev/null 2>&1 && break; \
	  kill -0 $$PID 2>/dev/null || { cat $$D/mysqld.log; exit 1; }; sleep 0.5; done; \
	rc=0; VIGIL_TEST_MYSQL_DSN="root@unix($$D/sock)/" $(GO) test -count=1 -timeout 10m $(TEST_MYSQL_ARGS) ./scitt/ >$$D/test.log 2>&1 || rc=$$?; \
	grep -v "^I[0-9]" $$D/test.log; \
	grep -q -- '--- SKIP: TestMySQL' $$D/test.log && { echo "test-mysql: TestMySQL was skipped"; exit 1; }; \
	exit $$rc

# test-alerts checks the shipped Prometheus alerting rules and runs their
# unit tests (docs/alerts/vigil.rules.test.yml) with promtool, from Debian's
# prometheus package, installed if missing (where it cannot be installed it
# warns and skips; node's TestAlertRuleMetricsRegistered still checks the
# rules' metric names). Takes about a second.
.PHONY: test-alerts
test-alerts:
	@command -v promtool >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null) || \
	  { echo "WARNING: could not install promtool (Debian package prometheus); the alert rule tests are skipped"; exit 0; }; \
	cd docs/alerts && promtool check rules vigil.rules.yml && promtool test rules vigil.rules.test.yml

# chromium installs the headless browser the feed's dashboard test drives
# (Debian package), unless it is already there.
.PHONY: chromium
# chromium installs Debian's Chromium for the dashboard's browser test; where
# it cannot be installed (no root, no network) the test skips loudly.
chromium:
	@test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	  echo "WARNING: could not install chromium; the dashboard browser test will be skipped"
