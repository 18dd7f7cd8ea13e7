package scitt

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"gopkg.in/yaml.v3"
)

// MaxEntryBytes is the largest log entry tlog-tiles entry bundles can hold.
const MaxEntryBytes = 1<<16 - 1

// DefaultMaxStatementBytes is the statement size limit when a policy sets none.
const DefaultMaxStatementBytes = 32 << 10

// ErrRejected reports a statement refused by the registration policy.
var ErrRejected = errors.New("rejected by registration policy")

// ErrTooLarge reports a statement over the size limit.
var ErrTooLarge = errors.New("statement too large")

// ErrReplay reports a statement that is already registered.
type ErrReplay struct{ ID string }

func (e *ErrReplay) Error() string { return "statement already registered as entry " + e.ID }

// Is makes errors.Is(err, ErrRejected) true for replays: they are a policy decision.
func (e *ErrReplay) Is(target error) bool { return target == ErrRejected }

// PolicyFile is the YAML registration policy (docs/scitt.md).
type PolicyFile struct {
	// MaxStatementBytes bounds a submitted statement; 0 means
	// DefaultMaxStatementBytes; at most MaxEntryBytes.
	MaxStatementBytes int `yaml:"max_statement_bytes"`
	Issuers           []struct {
		Name string `yaml:"name"`
		// Keys are Ed25519 note verifier keys named like the issuer, or
		// es256:<base64 DER SubjectPublicKeyInfo> for P-256 keys.
		Keys []string `yaml:"keys"`
		// Kinds allowed for this issuer; empty means none.
		Kinds []string `yaml:"kinds"`
		// HashEnvelopes allows hash-envelope statements (default true).
		HashEnvelopes *bool `yaml:"hash_envelopes"`
	} `yaml:"issuers"`
}

// Policy is a compiled registration policy. The zero Policy rejects everything.
type Policy struct {
	MaxStatementBytes int
	issuers           map[string]*issuer
}

type issuer struct {
	name          string
	keys          map[string]*issuerKey // by hex kid
	kinds         []Kind
	hashEnvelopes bool
}

// ParsePolicy parses a YAML policy.
func ParsePolicy(b []byte) (*Policy, error) {
	var f PolicyFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, errEOF) {
		return nil, fmt.Errorf("parsing policy: %w", err)
	}
	p := &Policy{MaxStatementBytes: f.MaxStatementBytes, issuers: map[string]*issuer{}}
	if p.MaxStatementBytes == 0 {
		p.MaxStatementBytes = DefaultMaxStatementBytes
	}
	if p.MaxStatementBytes < 0 || p.MaxStatementBytes > MaxEntryBytes {
		return nil, fmt.Errorf("parsing policy: max_statement_bytes must be in 1..%d", MaxEntryBytes)
	}
	for _, fi := range f.Issuers {
		if fi.Name == "" {
			return nil, errors.New("parsing policy: issuer without name")
		}
		if _, dup := p.issuers[fi.Name]; dup {
			return nil, fmt.Errorf("parsing policy: issuer %q listed twice", fi.Name)
		}
		is := &issuer{name: fi.Name, keys: map[string]*issuerKey{}, hashEnvelopes: fi.HashEnvelopes == nil || *fi.HashEnvelopes}
		for _, ks := range fi.Keys {
			k, err := parseIssuerKey(fi.Name, ks)
			if err != nil {
				return nil, fmt.Errorf("parsing policy: issuer %q: %w", fi.Name, err)
			}
			is.keys[hex.EncodeToString(k.kid)] = k
		}
		for _, ks := range fi.Kinds {
			k, err := ParseKind(ks)
			if err != nil {
				return nil, fmt.Errorf("parsing policy: issuer %q: %w", fi.Name, err)
			}
			is.kinds = append(is.kinds, k)
		}
		p.issuers[fi.Name] = is
	}
	return p, nil
}

// errEOF is what yaml.v3 returns for an empty document.
var errEOF = io.EOF

// LoadPolicy reads a YAML policy file.
func LoadPolicy(path string) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading policy: %w", err)
	}
	return ParsePolicy(b)
}

// Check applies the policy to a parsed statement of size bytes: issuer
// known, kid bound to the issuer, signature valid, kind allowed, payload
// schema. It returns an error wrapping ErrRejected, ErrTooLarge,
// ErrBadAlgorithm or ErrBadSignature.
func (p *Policy) Check(s *Statement, size int) error {
	if p == nil || p.issuers == nil {
		return fmt.Errorf("%w: no issuers are configured", ErrRejected)
	}
	if size > p.MaxStatementBytes || len(s.Entry) > MaxEntryBytes {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, size, p.MaxStatementBytes)
	}
	is, ok := p.issuers[s.Issuer]
	if !ok {
		return fmt.Errorf("%w: unknown issuer %q", ErrRejected, s.Issuer)
	}
	key, ok := is.keys[hex.EncodeToString(s.KID)]
	if !ok {
		return fmt.Errorf("%w: kid %x is not a key of issuer %q", ErrRejected, s.KID, s.Issuer)
	}
	if err := key.verify(s); err != nil {
		return err
	}
	if !slices.Contains(is.kinds, s.Kind) {
		return fmt.Errorf("%w: issuer %q may not register %s statements", ErrRejected, s.Issuer, s.Kind)
	}
	if s.HashEnvelope {
		if !is.hashEnvelopes {
			return fmt.Errorf("%w: issuer %q may not register hash envelopes", ErrRejected, s.Issuer)
		}
		return nil
	}
	if err := ValidatePayload(s.Kind, s.Payload); err != nil {
		return fmt.Errorf("%w: %v", ErrRejected, err)
	}
	return nil
}

// AuditRecord is one registration decision.
type AuditRecord struct {
	Time     time.Time `json:"time"`
	Decision string    `json:"decision"` // "accepted" or "rejected"
	Reason   string    `json:"reason,omitempty"`
	Issuer   string    `json:"issuer,omitempty"`
	Subject  string    `json:"subject,omitempty"`
	Kind     Kind      `json:"kind,omitempty"`
	EntryID  string    `json:"entry_id,omitempty"`
	Index    *uint64   `json:"index,omitempty"`
	Remote   string    `json:"remote,omitempty"`
}

// AuditQuery filters audit records; zero fields match everything.
type AuditQuery struct {
	Issuer   string
	Decision string
	EntryID  string
	Since    time.Time
	Limit    int // newest Limit records; 0 means 1000
}

func (q AuditQuery) match(r *AuditRecord) bool {
	return (q.Issuer == "" || r.Issuer == q.Issuer) &&
		(q.Decision == "" || r.Decision == q.Decision) &&
		(q.EntryID == "" || r.EntryID == q.EntryID) &&
		(q.Since.IsZero() || !r.Time.Before(q.Since))
}

// AuditLog is the append-only audit trail of registration decisions, kept as
// JSON lines in a file. Writes are buffered and flushed at least every
// flushEvery and on Query and Close.
type AuditLog struct {
	mu   sync.Mutex
	f    *os.File
	w    *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

const flushEvery = 200 * time.Millisecond

// OpenAuditLog opens (creating if needed) the audit trail at path.
func OpenAuditLog(path string) (*AuditLog, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening audit log: %w", err)
	}
	a := &AuditLog{f: f, w: bufio.NewWriterSize(f, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go a.flusher()
	return a, nil
}

func (a *AuditLog) flusher() {
	defer close(a.done)
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
			a.mu.Lock()
			_ = a.w.Flush()
			a.mu.Unlock()
		}
	}
}

// Append records r.
func (a *AuditLog) Append(r AuditRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err := a.w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("writing audit log: %w", err)
	}
	return nil
}

// Query returns the newest records matching q, oldest first.
func (a *AuditLog) Query(q AuditQuery) ([]AuditRecord, error) {
	if q.Limit <= 0 {
		q.Limit = 1000
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.w.Flush(); err != nil {
		return nil, fmt.Errorf("flushing audit log: %w", err)
	}
	f, err := os.Open(a.f.Name())
	if err != nil {
		return nil, fmt.Errorf("reading audit log: %w", err)
	}
	defer f.Close()
	var out []AuditRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var r AuditRecord
		if json.Unmarshal(sc.Bytes(), &r) != nil || !q.match(&r) {
			continue
		}
		out = append(out, r)
		if len(out) > 2*q.Limit {
			out = append(out[:0], out[len(out)-q.Limit:]...)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading audit log: %w", err)
	}
	if len(out) > q.Limit {
		out = out[len(out)-q.Limit:]
	}
	return out, nil
}

// Close flushes and closes the audit log.
func (a *AuditLog) Close() error {
	close(a.stop)
	<-a.done
	a.mu.Lock()
	defer a.mu.Unlock()
	err := a.w.Flush()
	if err2 := a.f.Sync(); err == nil {
		err = err2
	}
	if err2 := a.f.Close(); err == nil {
		err = err2
	}
	return err
}
