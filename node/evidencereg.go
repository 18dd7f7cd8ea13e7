package node

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vigilnet/vigil/gossip/evidence"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/scitt"
)

// EvidenceConfig makes the node register every piece of evidence it stores
// as a signed statement (kind evidence) in a SCITT transparency service, so
// that the record of misbehaviour is itself append-only and witnessed.
type EvidenceConfig struct {
	// RegisterTo is the transparency service's base URL; empty: off.
	RegisterTo string `yaml:"register_to"`
	// IssuerKey is the file of the issuer key that signs the statements
	// (vigil submit --new-key NAME); NAME is their CWT iss and must be
	// allowed the evidence kind by the service's policy.
	IssuerKey string `yaml:"issuer_key"`
	// Interval is how often new evidence is looked for (default 2s).
	Interval time.Duration `yaml:"interval"`
}

// EvidenceEntriesFile is where a node records, in its data directory, the
// transparency-service entry of each piece of evidence it registered: JSON
// lines {"evidence": ID, "entry": ENTRY-ID}.
const EvidenceEntriesFile = "evidence-entries.jsonl"

type evidenceEntry struct {
	Evidence string `json:"evidence"`
	Entry    string `json:"entry"`
}

// ReadEvidenceEntries returns the evidence-to-entry map recorded in dataDir.
func ReadEvidenceEntries(dataDir string) (map[string]string, error) {
	m := map[string]string{}
	f, err := os.Open(filepath.Join(dataDir, EvidenceEntriesFile))
	if errors.Is(err, os.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e evidenceEntry
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Evidence != "" {
			m[e.Evidence] = e.Entry
		}
	}
	return m, sc.Err()
}

// evidenceRegistrar registers the node's evidence with a transparency service.
type evidenceRegistrar struct {
	base     *url.URL
	key      *scitt.PrivateKey
	src      evidenceSource
	path     string
	interval time.Duration
	log      *slog.Logger

	mu      sync.Mutex
	entries map[string]string // evidence ID -> entry ID
}

func newEvidenceRegistrar(cfg EvidenceConfig, dataDir string, src evidenceSource, log *slog.Logger) (*evidenceRegistrar, error) {
	base, err := url.Parse(cfg.RegisterTo)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("config: evidence register_to %q is not an http(s) URL", cfg.RegisterTo)
	}
	b, err := os.ReadFile(cfg.IssuerKey)
	if err != nil {
		return nil, fmt.Errorf("config: evidence issuer_key: %w", err)
	}
	key, err := scitt.ParsePrivateKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("config: evidence issuer_key: %w", err)
	}
	r := &evidenceRegistrar{base: base, key: key, src: src, path: filepath.Join(dataDir, EvidenceEntriesFile), interval: cfg.Interval, log: log}
	if r.interval <= 0 {
		r.interval = 2 * time.Second
	}
	if r.entries, err = ReadEvidenceEntries(dataDir); err != nil {
		return nil, fmt.Errorf("reading %s: %w", EvidenceEntriesFile, err)
	}
	return r, nil
}

// entry returns the entry ID of evidence id, or "".
func (r *evidenceRegistrar) entry(id string) string {
	if r == nil {
		return ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.entries[id]
}

func (r *evidenceRegistrar) run(ctx context.Context) error {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		r.sweep(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// sweep registers the evidence not registered yet, newest first; failures
// are retried on the next sweep.
func (r *evidenceRegistrar) sweep(ctx context.Context) {
	ids, err := r.src.NewestEvidenceIDs(ctx, maxEvidenceListed)
	if err != nil {
		r.log.Warn("listing evidence to register", "err", err)
		return
	}
	for _, id := range ids {
		if r.entry(id) != "" || ctx.Err() != nil {
			continue
		}
		entry, err := r.register(ctx, id)
		if err != nil {
			r.log.Warn("registering evidence", "evidence", id, "service", r.base.String(), "err", err)
			continue
		}
		line, _ := json.Marshal(evidenceEntry{Evidence: id, Entry: entry})
		f, err := os.OpenFile(r.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err == nil {
			_, err = f.Write(append(line, '\n'))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			r.log.Error("recording evidence entry", "evidence", id, "err", err)
		}
		r.mu.Lock()
		r.entries[id] = entry
		r.mu.Unlock()
		r.log.Info("evidence registered", "evidence", id, "entry", entry)
	}
}

func (r *evidenceRegistrar) register(ctx context.Context, id string) (string, error) {
	rec, err := r.src.Evidence(ctx, id)
	if err != nil {
		return "", err
	}
	ev, err := vpb.UnmarshalEvidence(rec.Data)
	if err != nil {
		return "", err
	}
	file, err := evidence.MarshalFile(ev)
	if err != nil {
		return "", err
	}
	stmt, err := scitt.SignStatement(r.key, "urn:vigil:evidence:"+id, scitt.KindEvidence, file, scitt.SignOptions{})
	if err != nil {
		return "", err
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	loc, _, err := scitt.Register(rctx, r.base, stmt)
	if err != nil {
		return "", err
	}
	entry := path.Base(strings.TrimSuffix(loc, "/"))
	if entry == "" || entry == "." || entry == "/" {
		return "", fmt.Errorf("service answered Location %q", loc)
	}
	return entry, nil
}
