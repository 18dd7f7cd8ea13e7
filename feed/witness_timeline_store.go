package feed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// How the witness timeline is saved. A record with a line per log outgrows
// one Badger transaction (15 % of the 2 MB memtable) at about 2,000 logs,
// so the per-log lines are split by log into chunks, each record of its
// own:
//
//	heads                  the totals, and n, the heads' chunk count
//	heads/<n>/<i>          chunk i of n: the heads of the logs hashing to i
//	witness/<name>         a witness's hours, state, and its chunk count n
//	logs/<n>/<i>/<name>    chunk i of n: its lines of the logs hashing to i
//
// n is a power of two that keeps chunks near timelineChunkLogs logs
// (about 40 KB); it only grows, as logs are never removed. A save writes a
// changed record's chunks before its summary, so a crash between them
// leaves the summary naming the complete older layout; chunks of a layout
// no summary names are deleted after the next save. Records of the former
// layout ("heads" and "witness/<name>" with every log inline) are read as
// well, and the next save writes their timeline in this one.

const (
	timelineHeadsKey   = "heads"
	timelineWitnessKey = "witness/"
	timelineHeadsChunk = "heads/"
	timelineLogsChunk  = "logs/"
	// timelineChunkLogs is the number of logs a chunk holds on average:
	// about 40 KB of witness lines (150 bytes each), a quarter of the
	// transaction cap even with 1 MB memtables.
	timelineChunkLogs = 256
	// maxTimelineChunks bounds the chunk count a record may name.
	maxTimelineChunks = 1 << 16
)

// chunksFor is the chunk count for a record of nlogs logs.
func chunksFor(nlogs int) int {
	n := 1
	for n*timelineChunkLogs < nlogs && n < maxTimelineChunks {
		n *= 2
	}
	return n
}

// chunkOf is the chunk of n that holds origin's line.
func chunkOf(origin string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(origin))
	return int(h.Sum32() & uint32(n-1))
}

// headsRecord is the "heads" record; Heads is set in the former layout only.
type headsRecord struct {
	Heads  map[string]*logHead `json:"heads,omitempty"`
	Totals map[int64]uint32    `json:"totals"`
	Chunks int                 `json:"chunks,omitempty"`
}

// witnessSummary is a "witness/<name>" record; Logs is set in the former
// layout only.
type witnessSummary struct {
	Logs   map[string]*witnessLog `json:"logs,omitempty"`
	Hours  map[int64]uint32       `json:"hours"`
	State  string                 `json:"state,omitempty"`
	Since  time.Time              `json:"since,omitzero"`
	Chunks int                    `json:"chunks,omitempty"`
}

type headsChunk struct {
	Heads map[string]*logHead `json:"heads"`
}

type logsChunk struct {
	Logs map[string]*witnessLog `json:"logs"`
}

// chunkKey parses a chunk's key into its record name ("" for the heads),
// chunk count and index.
func chunkKey(key string) (name string, n, i int, ok bool) {
	var rest string
	switch {
	case strings.HasPrefix(key, timelineHeadsChunk):
		rest = key[len(timelineHeadsChunk):]
	case strings.HasPrefix(key, timelineLogsChunk):
		rest = key[len(timelineLogsChunk):]
	default:
		return "", 0, 0, false
	}
	ns, rest, ok1 := strings.Cut(rest, "/")
	is, name, ok2 := strings.Cut(rest, "/")
	if !ok2 {
		is, name = rest, ""
	}
	n, err1 := strconv.Atoi(ns)
	i, err2 := strconv.Atoi(is)
	heads := strings.HasPrefix(key, timelineHeadsChunk)
	if !ok1 || err1 != nil || err2 != nil || n < 1 || n > maxTimelineChunks || n&(n-1) != 0 || i < 0 || i >= n || heads == ok2 || (!heads && name == "") {
		return "", 0, 0, false
	}
	return name, n, i, true
}

func chunkName(name string, n, i int) string {
	if name == "" {
		return fmt.Sprintf("%s%d/%d", timelineHeadsChunk, n, i)
	}
	return fmt.Sprintf("%s%d/%d/%s", timelineLogsChunk, n, i, name)
}

// timelineLoad is what decodeAll learnt besides the timeline itself.
type timelineLoad struct {
	// saved is the chunk count of each record's saved layout.
	saved map[string]int
	// stale are the keys of chunks no summary names.
	stale []string
	// errs are the records skipped, by key.
	errs map[string]error
}

// decodeAll restores the saved records into tl: the summaries first, then
// the chunks of the layouts they name. A record that does not decode is
// skipped (and reported); a record of the former layout marks its record
// changed, so the next save writes it in chunks.
func (tl *timeline) decodeAll(recs map[string][]byte) timelineLoad {
	ld := timelineLoad{saved: map[string]int{}, errs: map[string]error{}}
	var chunks []string
	for _, k := range slices.Sorted(maps.Keys(recs)) {
		v := recs[k]
		switch {
		case k == timelineHeadsKey:
			var hr headsRecord
			if err := json.Unmarshal(v, &hr); err != nil {
				ld.errs[k] = err
				continue
			}
			if hr.Chunks < 0 || hr.Chunks > maxTimelineChunks {
				ld.errs[k] = fmt.Errorf("chunk count %d out of range", hr.Chunks)
				continue
			}
			tl.mergeHeads(hr.Heads)
			for h, n := range hr.Totals {
				tl.totals[h] = n
			}
			ld.saved[""] = hr.Chunks
			if hr.Chunks == 0 {
				tl.dirty[""] = true
			}
		case strings.HasPrefix(k, timelineWitnessKey):
			name := strings.TrimPrefix(k, timelineWitnessKey)
			if name == "" {
				ld.errs[k] = errors.New("no witness name")
				continue
			}
			n, err := tl.decodeWitness(name, v)
			if err != nil {
				ld.errs[k] = err
				continue
			}
			ld.saved[name] = n
			if n == 0 {
				tl.dirty[name] = true
			}
		default:
			chunks = append(chunks, k)
		}
	}
	for _, k := range chunks {
		name, n, _, ok := chunkKey(k)
		if !ok {
			ld.errs[k] = errors.New("unknown key")
			continue
		}
		if saved, has := ld.saved[name]; !has || saved != n {
			ld.stale = append(ld.stale, k)
			continue
		}
		if err := tl.decodeChunk(name, recs[k]); err != nil {
			ld.errs[k] = err
		}
	}
	return ld
}

func (tl *timeline) mergeHeads(heads map[string]*logHead) {
	for o, h := range heads {
		if h != nil {
			tl.heads[o] = h
		}
	}
}

// decodeWitness restores a witness's summary, returning its chunk count.
func (tl *timeline) decodeWitness(name string, v []byte) (int, error) {
	var ws witnessSummary
	if err := json.Unmarshal(v, &ws); err != nil {
		return 0, err
	}
	switch ws.State {
	case "", WitnessAlive, WitnessLate, WitnessMissing:
	default:
		return 0, fmt.Errorf("unknown state %q", ws.State)
	}
	if ws.Chunks < 0 || ws.Chunks > maxTimelineChunks {
		return 0, fmt.Errorf("chunk count %d out of range", ws.Chunks)
	}
	w := tl.record(name)
	for o, l := range ws.Logs {
		if l != nil {
			w.Logs[o] = l
		}
	}
	if ws.Hours != nil {
		w.Hours = ws.Hours
	}
	w.State, w.Since = ws.State, ws.Since
	return ws.Chunks, nil
}

// decodeChunk merges one chunk of name's lines ("" for the heads).
func (tl *timeline) decodeChunk(name string, v []byte) error {
	if name == "" {
		var hc headsChunk
		if err := json.Unmarshal(v, &hc); err != nil {
			return err
		}
		tl.mergeHeads(hc.Heads)
		return nil
	}
	var lc logsChunk
	if err := json.Unmarshal(v, &lc); err != nil {
		return err
	}
	w := tl.record(name)
	for o, l := range lc.Logs {
		if l != nil {
			w.Logs[o] = l
		}
	}
	return nil
}

// timelineSave is the encoding of the changed records.
type timelineSave struct {
	// chunks are written first, summaries after them.
	chunks, summaries map[string][]byte
	// layout is the chunk count each changed record is written with.
	layout map[string]int
}

// encodeDirty encodes the records changed since the last call, in chunks.
func (tl *timeline) encodeDirty() (timelineSave, error) {
	out := timelineSave{chunks: map[string][]byte{}, summaries: map[string][]byte{}, layout: map[string]int{}}
	for name := range tl.dirty {
		var err error
		if name == "" {
			err = out.heads(tl)
		} else if w := tl.witnesses[name]; w != nil {
			err = out.witness(name, w)
		} else {
			continue
		}
		if err != nil {
			return timelineSave{}, err
		}
	}
	clear(tl.dirty)
	return out, nil
}

func (s *timelineSave) heads(tl *timeline) error {
	n, parts := splitByChunk(tl.heads)
	for i, p := range parts {
		v, err := json.Marshal(headsChunk{Heads: p})
		if err != nil {
			return err
		}
		s.chunks[chunkName("", n, i)] = v
	}
	v, err := json.Marshal(headsRecord{Totals: tl.totals, Chunks: n})
	if err != nil {
		return err
	}
	s.summaries[timelineHeadsKey], s.layout[""] = v, n
	return nil
}

func (s *timelineSave) witness(name string, w *witnessRecord) error {
	n, parts := splitByChunk(w.Logs)
	for i, p := range parts {
		v, err := json.Marshal(logsChunk{Logs: p})
		if err != nil {
			return err
		}
		s.chunks[chunkName(name, n, i)] = v
	}
	v, err := json.Marshal(witnessSummary{Hours: w.Hours, State: w.State, Since: w.Since, Chunks: n})
	if err != nil {
		return err
	}
	s.summaries[timelineWitnessKey+name], s.layout[name] = v, n
	return nil
}

// load reads the saved timeline. The timeline is a record of
// observations, and losing it must not stop the node: a record that does
// not decode is logged and skipped, and if the store cannot be read at all
// the timeline runs in memory only, so that what the store holds is not
// overwritten with less.
func (t *witnessTracker) load(ctx context.Context) {
	if t.store == nil {
		return
	}
	recs, err := t.store.WitnessTimeline(ctx)
	if err != nil {
		t.f.log.Error("feed: reading the witness timeline; keeping it in memory only", "err", err)
		t.store = nil
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	ld := t.tl.decodeAll(recs)
	for k, err := range ld.errs {
		t.f.log.Warn("feed: skipping a witness timeline record", "key", k, "err", err)
	}
	t.saved = ld.saved
	for _, k := range ld.stale {
		t.stale[k] = true
	}
}

// save writes the changed records, chunks first, then deletes the chunks
// of layouts no record uses any more. On failure the records stay changed.
func (t *witnessTracker) save(ctx context.Context) {
	if t.store == nil {
		return
	}
	t.mu.Lock()
	s, err := t.tl.encodeDirty()
	t.mu.Unlock()
	if err != nil {
		t.f.log.Error("feed: encoding the witness timeline", "err", err)
		return
	}
	if len(s.layout) > 0 {
		err := t.store.PutWitnessTimeline(ctx, s.chunks)
		if err == nil {
			err = t.store.PutWitnessTimeline(ctx, s.summaries)
		}
		if err != nil {
			t.f.log.Warn("feed: saving the witness timeline", "err", err)
			t.mu.Lock()
			for name := range s.layout {
				t.tl.dirty[name] = true
			}
			t.mu.Unlock()
			return
		}
	}
	t.mu.Lock()
	for name, n := range s.layout {
		if old := t.saved[name]; old > 0 && old != n {
			for i := range old {
				t.stale[chunkName(name, old, i)] = true
			}
		}
		t.saved[name] = n
	}
	for k := range s.chunks {
		delete(t.stale, k)
	}
	stale := slices.Sorted(maps.Keys(t.stale))
	t.mu.Unlock()
	if len(stale) == 0 {
		return
	}
	if err := t.store.DeleteWitnessTimeline(ctx, stale); err != nil {
		t.f.log.Warn("feed: deleting old witness timeline chunks", "err", err)
		return
	}
	t.mu.Lock()
	for _, k := range stale {
		delete(t.stale, k)
	}
	t.mu.Unlock()
}

// splitByChunk sorts a per-log map into the chunks its size calls for,
// each log in the chunk chunkOf names; every chunk is present, if empty.
func splitByChunk[V any](m map[string]V) (int, []map[string]V) {
	n := chunksFor(len(m))
	parts := make([]map[string]V, n)
	for i := range parts {
		parts[i] = map[string]V{}
	}
	for o, v := range m {
		parts[chunkOf(o, n)][o] = v
	}
	return n, parts
}
