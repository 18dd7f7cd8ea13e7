package scitt

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultAuditMaxBytes caps the audit trail (all its files) when the
// configuration sets no cap: 64 MiB.
const DefaultAuditMaxBytes = 64 << 20

// MaxAuditPage is the most records one audit query returns.
const MaxAuditPage = 1000

// Audit decisions.
const (
	DecisionAccepted    = "accepted"
	DecisionRejected    = "rejected"
	DecisionDuplicate   = "duplicate"    // already registered; the existing entry was returned
	DecisionRateLimited = "rate_limited" // refused with 429 before any check; Count aggregates them
)

// AuditRecord is one registration decision.
type AuditRecord struct {
	// Seq numbers records from 1, in order, across rotations; it is the
	// pagination cursor.
	Seq         uint64    `json:"seq"`
	Time        time.Time `json:"time"`
	Decision    string    `json:"decision"`
	Reason      string    `json:"reason,omitempty"`
	Issuer      string    `json:"issuer,omitempty"`
	Subject     string    `json:"subject,omitempty"`
	ContentType string    `json:"content_type,omitempty"`
	Kind        Kind      `json:"kind,omitempty"`
	EntryID     string    `json:"entry_id,omitempty"`
	Index       *uint64   `json:"index,omitempty"`
	// Remote is the client address; only the admin sees it.
	Remote string `json:"remote,omitempty"`
	// Count is how many requests a rate_limited record stands for.
	Count int `json:"count,omitempty"`
}

// AuditQuery selects audit records; zero fields match everything.
type AuditQuery struct {
	Issuer   string
	Decision string
	EntryID  string
	Since    time.Time
	// After is a cursor: only records with Seq > After are returned.
	After uint64
	// Limit is the page size: 0 means MaxAuditPage, larger values are
	// clamped to it.
	Limit int
}

func (q AuditQuery) match(r *AuditRecord) bool {
	return r.Seq > q.After &&
		(q.Issuer == "" || r.Issuer == q.Issuer) &&
		(q.Decision == "" || r.Decision == q.Decision) &&
		(q.EntryID == "" || r.EntryID == q.EntryID) &&
		(q.Since.IsZero() || !r.Time.Before(q.Since))
}

// AuditPage is one page of an audit query, oldest first. Next is the
// cursor for the following page (the last Seq scanned) when More is set.
type AuditPage struct {
	Records []AuditRecord `json:"records"`
	Next    uint64        `json:"next,omitempty"`
	More    bool          `json:"more"`
}

// AuditLog is the audit trail of registration decisions, kept as JSON lines
// in a current file (audit.jsonl) and rotated segments
// (audit.jsonl.<first seq>). A segment is closed at a quarter of the cap, and
// the oldest segments are deleted to keep the total under the cap. Writes
// are buffered and flushed at least every flushEvery. Readers hold the lock
// only to flush and open the files, never while reading them.
type AuditLog struct {
	path     string
	maxBytes int64

	mu       sync.Mutex
	f        *os.File
	w        *bufio.Writer
	size     int64 // bytes of f, written or buffered
	first    uint64
	seq      uint64
	segments []segment // oldest first

	stop chan struct{}
	done chan struct{}
}

type segment struct {
	path  string
	first uint64
	size  int64
}

const flushEvery = 200 * time.Millisecond

// testingOnlyAuditRead, if set, runs in Query after the lock is released
// and before the files are read (a test hook).
var testingOnlyAuditRead func()

// OpenAuditLog opens (creating if needed) the audit trail at path, capped at
// maxBytes in total (0: DefaultAuditMaxBytes).
func OpenAuditLog(path string, maxBytes int64) (*AuditLog, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultAuditMaxBytes
	}
	if maxBytes < 4<<10 {
		return nil, errors.New("opening audit log: cap below 4 KiB")
	}
	a := &AuditLog{path: path, maxBytes: maxBytes, stop: make(chan struct{}), done: make(chan struct{})}
	matches, err := filepath.Glob(path + ".*")
	if err != nil {
		return nil, fmt.Errorf("opening audit log: %w", err)
	}
	for _, m := range matches {
		first, err := strconv.ParseUint(strings.TrimPrefix(m, path+"."), 10, 64)
		if err != nil {
			continue
		}
		fi, err := os.Stat(m)
		if err != nil {
			return nil, fmt.Errorf("opening audit log: %w", err)
		}
		a.segments = append(a.segments, segment{m, first, fi.Size()})
	}
	slices.SortFunc(a.segments, func(x, y segment) int { return cmpUint(x.first, y.first) })
	if legacyTrail(path) {
		// Records without seq cannot be paged; keep them aside, unserved.
		if err := os.Rename(path, fmt.Sprintf("%s.legacy-%d", path, time.Now().Unix())); err != nil {
			return nil, fmt.Errorf("opening audit log: moving aside a trail without seq: %w", err)
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening audit log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("opening audit log: %w", err)
	}
	a.f, a.size = f, fi.Size()
	a.w = bufio.NewWriterSize(f, 64<<10)
	a.seq = lastSeq(path)
	if a.seq == 0 && len(a.segments) > 0 {
		a.seq = lastSeq(a.segments[len(a.segments)-1].path)
	}
	a.first = a.seq + 1
	if first, ok := firstSeq(path); ok {
		a.first = first
	}
	go a.flusher()
	return a, nil
}

// maxAuditField bounds each text field of a record, in bytes.
const maxAuditField = 512

func clip(s string) string {
	if len(s) <= maxAuditField {
		return s
	}
	return strings.ToValidUTF8(s[:maxAuditField], "") + "…"
}

func cmpUint(x, y uint64) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// lastSeq reads the Seq of the last complete record of a file (0 if none).
func lastSeq(path string) uint64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0
	}
	off := max(fi.Size()-64<<10, 0)
	b := make([]byte, fi.Size()-off)
	if _, err := f.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
		return 0
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		var r AuditRecord
		if json.Unmarshal([]byte(lines[i]), &r) == nil && r.Seq > 0 {
			return r.Seq
		}
	}
	return 0
}

// legacyTrail reports whether the file at path holds records without seq
// (written by a version of Vigil before the trail was paged).
func legacyTrail(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 4096), 1<<20)
	if !sc.Scan() {
		return false
	}
	var r AuditRecord
	return json.Unmarshal(sc.Bytes(), &r) == nil && r.Seq == 0
}

// firstSeq reads the Seq of the first record of a file.
func firstSeq(path string) (uint64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 4096), 1<<20)
	if !sc.Scan() {
		return 0, false
	}
	var r AuditRecord
	if json.Unmarshal(sc.Bytes(), &r) != nil || r.Seq == 0 {
		return 0, false
	}
	return r.Seq, true
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

// Append records r, assigning its Seq.
func (a *AuditLog) Append(r AuditRecord) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	r.Seq = a.seq + 1
	// Statement fields are the client's; bound what one record may hold.
	r.Reason, r.Issuer, r.Subject = clip(r.Reason), clip(r.Issuer), clip(r.Subject)
	r.ContentType, r.Remote = clip(r.ContentType), clip(r.Remote)
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if _, err := a.w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("writing audit log: %w", err)
	}
	a.seq++
	a.size += int64(len(b)) + 1
	if a.size >= a.maxBytes/4 {
		return a.rotate()
	}
	return nil
}

// rotate closes the current file as a segment and trims old segments so
// that the trail stays under the cap. a.mu is held.
func (a *AuditLog) rotate() error {
	if err := a.w.Flush(); err != nil {
		return fmt.Errorf("rotating audit log: %w", err)
	}
	if err := a.f.Close(); err != nil {
		return fmt.Errorf("rotating audit log: %w", err)
	}
	seg := segment{path: fmt.Sprintf("%s.%020d", a.path, a.first), first: a.first, size: a.size}
	if err := os.Rename(a.path, seg.path); err != nil {
		return fmt.Errorf("rotating audit log: %w", err)
	}
	a.segments = append(a.segments, seg)
	f, err := os.OpenFile(a.path, os.O_CREATE|os.O_APPEND|os.O_RDWR|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("rotating audit log: %w", err)
	}
	a.f, a.size, a.first = f, 0, a.seq+1
	a.w.Reset(f)
	// The current file grows to a quarter of the cap, so the segments may
	// hold the other three quarters.
	var total int64
	for _, s := range a.segments {
		total += s.size
	}
	for len(a.segments) > 0 && total > a.maxBytes-a.maxBytes/4 {
		if err := os.Remove(a.segments[0].path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("trimming audit log: %w", err)
		}
		total -= a.segments[0].size
		a.segments = a.segments[1:]
	}
	return nil
}

// Size returns the bytes the trail holds on disk and in its buffer.
func (a *AuditLog) Size() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := a.size
	for _, s := range a.segments {
		n += s.size
	}
	return n
}

// Query returns one page of records matching q, oldest first. It holds the
// writers' lock only to flush the buffer and open the files.
func (a *AuditLog) Query(q AuditQuery) (*AuditPage, error) {
	if q.Limit <= 0 || q.Limit > MaxAuditPage {
		q.Limit = MaxAuditPage
	}
	type part struct {
		f *os.File
		n int64
	}
	var parts []part
	a.mu.Lock()
	err := a.w.Flush()
	if err == nil {
		for i, s := range a.segments {
			if i+1 < len(a.segments) && a.segments[i+1].first <= q.After+1 {
				continue // the whole segment is before the cursor
			}
			f, oerr := os.Open(s.path)
			if oerr != nil {
				continue
			}
			parts = append(parts, part{f, s.size})
		}
		if f, oerr := os.Open(a.path); oerr == nil {
			parts = append(parts, part{f, a.size})
		}
	}
	a.mu.Unlock()
	if testingOnlyAuditRead != nil {
		testingOnlyAuditRead()
	}
	defer func() {
		for _, p := range parts {
			p.f.Close()
		}
	}()
	if err != nil {
		return nil, fmt.Errorf("flushing audit log: %w", err)
	}
	page := &AuditPage{Records: []AuditRecord{}}
	for _, p := range parts {
		sc := bufio.NewScanner(io.LimitReader(p.f, p.n))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var r AuditRecord
			if json.Unmarshal(sc.Bytes(), &r) != nil || !q.match(&r) {
				continue
			}
			if len(page.Records) == q.Limit {
				page.More = true
				return page, nil
			}
			page.Records = append(page.Records, r)
			page.Next = r.Seq
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("reading audit log: %w", err)
		}
	}
	return page, nil
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
