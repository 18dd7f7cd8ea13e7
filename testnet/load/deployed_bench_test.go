package load_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// TestBenchDeployed measures witnesses as operators run them: each witness
// in its own process with its default configuration, driven by
// `vigil bench witness --url` in another process, which reads the witness
// process's CPU and memory from /proc over the timed window. It measures
// `vigil node` and litewitness (filippo.io/torchwood, the reference C2SP
// witness) in interleaved rounds and prints one table. `make bench-witness`
// runs it.
//
// Knobs: VIGIL_BENCH_ROUNDS (3), VIGIL_BENCH_LOGS (1000),
// VIGIL_BENCH_CLIENTS (64), VIGIL_BENCH_DURATION (10s),
// VIGIL_BENCH_PEERS ("vigil,litewitness"), VIGIL_BENCH_NODE_CONFIG (a
// vigil.yaml for the node; default none, i.e. the defaults),
// VIGIL_BENCH_COSIGN (the node's witness.cosignature_types, one round of
// vigil for each in a comma-separated list of ed25519, mldsa and both;
// default: the node's default, both). Every response is checked for a
// cosignature by each key the node signs with. litewitness v0.10.0 signs
// Ed25519 cosignatures only (its one key comes from ssh-agent and must be
// Ed25519), so its rows are Ed25519 whatever VIGIL_BENCH_COSIGN says.
func TestBenchDeployed(t *testing.T) {
	if os.Getenv("VIGIL_BENCH_DEPLOYED") == "" {
		t.Skip("set VIGIL_BENCH_DEPLOYED=1 (make bench-witness) to measure deployed witnesses")
	}
	rounds := envInt(t, "VIGIL_BENCH_ROUNDS", 3)
	args := []string{
		"--logs", strconv.Itoa(envInt(t, "VIGIL_BENCH_LOGS", 1000)),
		"--concurrency", strconv.Itoa(envInt(t, "VIGIL_BENCH_CLIENTS", 64)),
		"--duration", envString("VIGIL_BENCH_DURATION", "10s"),
	}
	peers := strings.Split(envString("VIGIL_BENCH_PEERS", "vigil,litewitness"), ",")
	cosign := benchCosign(t)
	bin := t.TempDir()
	vigil := buildVigil(t, bin)
	var lw *litewitnessBins
	for _, p := range peers {
		if p == "litewitness" {
			lw = buildLitewitness(t, bin)
		}
	}
	var rows []deployedRow
	for r := 1; r <= rounds; r++ {
		for _, p := range peers {
			types := []string{"ed25519"}
			if p == "vigil" {
				types = cosign
			}
			for _, typ := range types {
				var row deployedRow
				switch p {
				case "vigil":
					row = runVigilRound(t, vigil, args, typ)
				case "litewitness":
					row = runLitewitnessRound(t, vigil, lw, args)
				default:
					t.Fatalf("VIGIL_BENCH_PEERS: unknown witness %q", p)
				}
				row.Round, row.Witness, row.Cosign = r, p, typ
				t.Logf("round %d %s (%s): %.0f cosignatures/s, %.0f µs CPU per cosignature (%.0f µs with its signer), RSS %.1f MB (peak %.1f), p50 %.2f ms, p99 %.2f ms",
					r, p, typ, row.PerSecond, row.TargetCPUus, row.TargetTotalCPUus, row.TargetRSSMB, row.TargetPeakMB, row.P50ms, row.P99ms)
				rows = append(rows, row)
			}
		}
	}
	fmt.Println(deployedTable(rows, args))
}

// deployedRow is one round's figures, as `vigil bench witness --json`
// writes them.
type deployedRow struct {
	Round   int
	Witness string
	// Cosign is what the witness signs with: ed25519, mldsa or both.
	Cosign       string
	PerSecond    float64 `json:"cosignatures_per_s"`
	P50ms        float64 `json:"p50_ms"`
	P99ms        float64 `json:"p99_ms"`
	Cosigned     int     `json:"cosigned"`
	Verified     int     `json:"verified"`
	TargetCPUus  float64 `json:"target_cpu_us_per_cosignature"`
	TargetBusy   float64 `json:"target_cores_busy"`
	TargetRSSMB  float64 `json:"target_rss_mb"`
	TargetPeakMB float64 `json:"target_peak_rss_mb"`
	ClientCPUus  float64 `json:"client_cpu_us_per_request"`
	// The totals add the witness's helper processes (litewitness's
	// ssh-agent, which makes its signatures) to its own.
	TargetTotalCPUus float64 `json:"target_total_cpu_us_per_cosignature"`
	TargetTotalBusy  float64 `json:"target_total_cores_busy"`
	TargetTotalRSSMB float64 `json:"target_total_rss_mb"`
}

func deployedTable(rows []deployedRow, args []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nwitness processes with default configuration, load from `vigil bench witness %s` (%s, %d CPUs)\n\n", strings.Join(args, " "), time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU())
	b.WriteString("| round | witness | signs with | cosignatures/s | CPU per cosignature, witness process | CPU per cosignature, with its signer | cores busy, process / with signer | RSS end / peak (+ signer) | p50 / p99 | load generator CPU per request | verified |\n" +
		"|---|---|---|---|---|---|---|---|---|---|---|\n")
	// sum[k] is [throughput, process CPU, total CPU] summed over rounds.
	sum := map[string][3]float64{}
	var vigils []string
	for _, r := range rows {
		signer := ""
		if extra := r.TargetTotalRSSMB - r.TargetRSSMB; extra > 0.05 {
			signer = fmt.Sprintf(" (+ %.1f)", extra)
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %.0f | %.0f µs | %.0f µs | %.2f / %.2f | %.1f / %.1f MB%s | %.2f / %.2f ms | %.0f µs | %d of %d |\n",
			r.Round, r.Witness, r.Cosign, r.PerSecond, r.TargetCPUus, r.TargetTotalCPUus, r.TargetBusy, r.TargetTotalBusy,
			r.TargetRSSMB, r.TargetPeakMB, signer, r.P50ms, r.P99ms, r.ClientCPUus, r.Verified, r.Cosigned)
		k := r.Witness + " (" + r.Cosign + ")"
		if r.Witness == "vigil" && !slices.Contains(vigils, k) {
			vigils = append(vigils, k)
		}
		s := sum[k]
		s[0] += r.PerSecond
		s[1] += r.TargetCPUus
		s[2] += r.TargetTotalCPUus
		sum[k] = s
	}
	lk := "litewitness (ed25519)"
	b.WriteString("\n")
	for _, vk := range vigils {
		if v, l := sum[vk], sum[lk]; v[0] > 0 && l[0] > 0 && l[1] > 0 && l[2] > 0 {
			fmt.Fprintf(&b, "%s against %s, summed over the rounds: %.2f× the throughput; CPU per cosignature %.2f× counting the witness process alone, %.2f× counting it with its signer (litewitness's ssh-agent; vigil signs in its own process)\n",
				vk, lk, v[0]/l[0], v[1]/l[1], v[2]/l[2])
		}
	}
	b.WriteString("\n(a request is one cosignature; a witness signing with both returns two lines, Ed25519 and ML-DSA-44, per request; \"with its signer\" adds the CPU of the process that makes the witness's signatures when it is not the witness's own: litewitness's ssh-agent)\n")
	return b.String()
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

func envString(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func buildVigil(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "vigil")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/vigilnet/vigil/cmd/vigil").CombinedOutput()
	if err != nil {
		t.Fatalf("building vigil: %v\n%s", err, out)
	}
	return bin
}

type litewitnessBins struct{ litewitness, witnessctl string }

// litewitnessVersion is the torchwood release measured against. It needs
// Go 1.27, which the go command fetches through the module proxy.
const litewitnessVersion = "v0.10.0"

func buildLitewitness(t *testing.T, dir string) *litewitnessBins {
	t.Helper()
	for _, tool := range []string{"ssh-agent", "ssh-add", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("litewitness keeps its key in ssh-agent: %s is missing (apt-get install openssh-client)", tool)
		}
	}
	cmd := exec.Command("go", "install",
		"filippo.io/torchwood/cmd/litewitness@"+litewitnessVersion,
		"filippo.io/torchwood/cmd/witnessctl@"+litewitnessVersion)
	cmd.Dir = dir // outside the module: go install pkg@version
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOTOOLCHAIN=go1.27.3", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building litewitness %s: %v\n%s", litewitnessVersion, err, out)
	}
	return &litewitnessBins{filepath.Join(dir, "litewitness"), filepath.Join(dir, "witnessctl")}
}

// freeAddr returns a loopback address that was free a moment ago; the
// witnesses take their listen address as a flag, and the load generator
// must know it before they start.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startProcess starts cmd with its output in a log file and returns its
// PID, also written to pidFile (if not "") where the load generator will
// read it; the process is stopped (SIGTERM, then SIGKILL) when the test
// ends.
func startProcess(t *testing.T, cmd *exec.Cmd, logFile, pidFile string) int {
	t.Helper()
	f, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", cmd.Path, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); f.Close(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	if pidFile != "" {
		if err := os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return cmd.Process.Pid
}

// waitFile waits until path exists (the load generator writes the roster
// once its workload is generated), or the bench process has exited.
func waitFile(t *testing.T, path string, bench <-chan error) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Minute)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		select {
		case err := <-bench:
			t.Fatalf("the load generator exited before writing %s: %v", path, err)
		case <-deadline:
			t.Fatalf("%s not written within 10 minutes", path)
		case <-tick.C:
		}
	}
}

// startBench starts `vigil bench witness --url` for the witness at addr,
// checking every response for a cosignature by each of vkeys.
func startBench(t *testing.T, vigil, dir, addr string, vkeys []string, args []string) <-chan error {
	t.Helper()
	var keyArgs []string
	for _, k := range vkeys {
		keyArgs = append(keyArgs, "--witness-vkey", k)
	}
	cmd := exec.Command(vigil, append(append([]string{"bench", "witness",
		"--url", "http://" + addr}, keyArgs...), append([]string{
		"--roster-out", filepath.Join(dir, "roster.txt"),
		"--pid-file", filepath.Join(dir, "witness.pid"),
		"--json", filepath.Join(dir, "result.json"),
	}, args...)...)...)
	out, err := os.Create(filepath.Join(dir, "bench.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); out.Close() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	return done
}

func benchResult(t *testing.T, dir string, done <-chan error) deployedRow {
	t.Helper()
	if err := <-done; err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "bench.log"))
		t.Fatalf("vigil bench witness: %v\n%s", err, log)
	}
	b, err := os.ReadFile(filepath.Join(dir, "result.json"))
	if err != nil {
		t.Fatal(err)
	}
	var row deployedRow
	if err := json.Unmarshal(b, &row); err != nil {
		t.Fatal(err)
	}
	if row.Verified != row.Cosigned || row.Cosigned == 0 {
		t.Fatalf("%d of %d cosignatures verified", row.Verified, row.Cosigned)
	}
	return row
}

// runVigilRound measures one `vigil node` process signing with cosign
// (witness.cosignature_types; "both" is the default configuration).
func runVigilRound(t *testing.T, vigil string, args []string, cosign string) deployedRow {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if out, err := exec.Command(vigil, "keygen", "--name", "bench.example/vigil", "--out", keys).CombinedOutput(); err != nil {
		t.Fatalf("vigil keygen: %v\n%s", err, out)
	}
	var vkeys []string
	if cosign != "mldsa" {
		vkeys = append(vkeys, filepath.Join(keys, "witness.vkey"))
	}
	if cosign != "ed25519" {
		vkeys = append(vkeys, filepath.Join(keys, "witness-mldsa.vkey"))
	}
	addr := freeAddr(t)
	done := startBench(t, vigil, dir, addr, vkeys, args)
	waitFile(t, filepath.Join(dir, "roster.txt"), done)
	nodeArgs := []string{"node", "--keys", keys, "--data", filepath.Join(dir, "data"),
		"--roster", filepath.Join(dir, "roster.txt"), "--listen", addr, "--log-level", "warn"}
	if cfg := nodeConfig(t, dir, os.Getenv("VIGIL_BENCH_NODE_CONFIG"), cosign); cfg != "" {
		nodeArgs = append(nodeArgs, "--config", cfg)
	}
	startProcess(t, exec.Command(vigil, nodeArgs...), filepath.Join(dir, "node.log"), filepath.Join(dir, "witness.pid"))
	return benchResult(t, dir, done)
}

var lwVKey = regexp.MustCompile(`vkey=(\S+)`)

func runLitewitnessRound(t *testing.T, vigil string, lw *litewitnessBins, args []string) deployedRow {
	dir := t.TempDir()
	// ssh-agent's socket path must fit in a sockaddr_un (108 bytes).
	sockDir, err := os.MkdirTemp("/tmp", "lw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "agent")
	key := filepath.Join(dir, "witness_key")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	agent := startProcess(t, exec.Command("ssh-agent", "-a", sock, "-D"), filepath.Join(dir, "agent.log"), "")
	env := append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if err := retry(func() error {
		add := exec.Command("ssh-add", key)
		add.Env = env
		out, err := add.CombinedOutput()
		if err != nil {
			return fmt.Errorf("ssh-add: %v: %s", err, out)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	fp, err := exec.Command("ssh-keygen", "-l", "-f", key+".pub").Output()
	if err != nil || len(strings.Fields(string(fp))) < 2 {
		t.Fatalf("ssh-keygen -l: %v %q", err, fp)
	}
	addr := freeAddr(t)
	db := filepath.Join(dir, "litewitness.db")
	cmd := exec.Command(lw.litewitness, "-name", "bench.example/litewitness", "-db", db,
		"-ssh-agent", sock, "-key", strings.Fields(string(fp))[1], "-listen", addr)
	cmd.Env = env
	logFile := filepath.Join(dir, "litewitness.log")
	witness := startProcess(t, cmd, logFile, "")
	// The witness's process first, then its signer's: the load generator
	// reports the witness alone and with the ssh-agent that signs for it.
	if err := os.WriteFile(filepath.Join(dir, "witness.pid"), fmt.Appendf(nil, "%d\n%d\n", witness, agent), 0o644); err != nil {
		t.Fatal(err)
	}
	var vkey string
	if err := retry(func() error {
		b, _ := os.ReadFile(logFile)
		m := lwVKey.FindSubmatch(b)
		if m == nil {
			return fmt.Errorf("litewitness printed no verifier key: %s", b)
		}
		vkey = strings.Trim(string(m[1]), `"`)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	done := startBench(t, vigil, dir, addr, []string{vkey}, args)
	roster := filepath.Join(dir, "roster.txt")
	waitFile(t, roster, done)
	list := filepath.Join(dir, "logs-v0.txt")
	if err := rosterToLogList(roster, list); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(lw.witnessctl, "pull-logs", "-db", db, "-source", list).CombinedOutput(); err != nil {
		t.Fatalf("witnessctl pull-logs: %v\n%s", err, out)
	}
	return benchResult(t, dir, done)
}

// rosterToLogList turns the tlog-policy roster the load generator writes
// (`log <vkey>` lines) into a witness-network logs/v0 list, which
// witnessctl imports in one transaction.
func rosterToLogList(roster, list string) error {
	f, err := os.Open(roster)
	if err != nil {
		return err
	}
	defer f.Close()
	var b strings.Builder
	b.WriteString("logs/v0\n")
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "log" {
			fmt.Fprintf(&b, "vkey %s\n", fields[1])
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return os.WriteFile(list, []byte(b.String()), 0o644)
}

// retry runs fn until it succeeds or 10 s pass (processes starting up).
func retry(fn func() error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := fn()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-tick.C:
		}
	}
}

// benchCosign reads VIGIL_BENCH_COSIGN: a comma-separated list of
// ed25519, mldsa and both (default both, the node's default).
func benchCosign(t *testing.T) []string {
	t.Helper()
	v := envString("VIGIL_BENCH_COSIGN", "both")
	var out []string
	for _, typ := range strings.Split(v, ",") {
		typ = strings.TrimSpace(typ)
		if typ != "ed25519" && typ != "mldsa" && typ != "both" {
			t.Fatalf("VIGIL_BENCH_COSIGN=%q: %q is not ed25519, mldsa or both", v, typ)
		}
		out = append(out, typ)
	}
	return out
}

// nodeConfig returns the config file a benchmarked node starts with: base
// (VIGIL_BENCH_NODE_CONFIG, or none) with witness.cosignature_types set to
// cosign, written into dir; or "" for the defaults (base empty, cosign
// both, the default).
func nodeConfig(t *testing.T, dir, base, cosign string) string {
	t.Helper()
	if cosign == "both" && base == "" {
		return ""
	}
	cfg := map[string]any{}
	if base != "" {
		b, err := os.ReadFile(base)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, &cfg); err != nil {
			t.Fatalf("VIGIL_BENCH_NODE_CONFIG %s: %v", base, err)
		}
	}
	w, _ := cfg["witness"].(map[string]any)
	if w == nil {
		w = map[string]any{}
	}
	w["cosignature_types"] = cosign
	cfg["witness"] = w
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "vigil.yaml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
