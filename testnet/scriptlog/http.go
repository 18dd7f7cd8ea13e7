package scriptlog

import (
	"encoding/binary"
	"net/http"
	"strings"

	"github.com/transparency-dev/tessera/api/layout"
	xtlog "golang.org/x/mod/sumdb/tlog"
)

// Handler serves the log as a C2SP tlog-tiles log (c2sp.org/tlog-tiles):
// GET /checkpoint, GET /tile/<L>/<N>[.p/<W>] and
// GET /tile/entries/<N>[.p/<W>]. Tiles are computed from the current tree;
// any full or partial tile the tree already covers is served, so clients may
// read tiles implied by any checkpoint the log has signed. Mount it under the
// log's URL prefix with http.StripPrefix if needed.
func (l *Log) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /checkpoint", func(w http.ResponseWriter, r *http.Request) {
		cp, err := l.Checkpoint()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(cp)
	})
	mux.HandleFunc("GET /tile/{path...}", func(w http.ResponseWriter, r *http.Request) {
		level, index, ok := strings.Cut(r.PathValue("path"), "/")
		if !ok {
			http.NotFound(w, r)
			return
		}
		var body []byte
		if level == "entries" {
			i, p, err := layout.ParseTileIndexPartial(index)
			if err != nil {
				http.NotFound(w, r)
				return
			}
			body, ok = l.entryBundle(i, p)
		} else {
			lv, i, p, err := layout.ParseTileLevelIndexPartial(level, index)
			if err != nil {
				http.NotFound(w, r)
				return
			}
			body, ok = l.tile(lv, i, p)
		}
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(body)
	})
	return mux
}

// tile returns hash tile (level, index) of width p (0 = full, 256 hashes).
// SPEC: hash i of level-L tile N is the root of the complete subtree of
// 256^L entries at position N*256+i.
func (l *Log) tile(level, index uint64, p uint8) ([]byte, bool) {
	width := uint64(p)
	if width == 0 {
		width = layout.TileWidth
	}
	if level > 7 || index >= 1<<40 {
		return nil, false
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	first := index * layout.TileWidth
	leavesPerHash := uint64(1) << (8 * level)
	if (first+width)*leavesPerHash > uint64(l.size) {
		return nil, false
	}
	out := make([]byte, 0, width*32)
	for i := uint64(0); i < width; i++ {
		h := l.hashes[xtlog.StoredHashIndex(int(8*level), int64(first+i))]
		out = append(out, h[:]...)
	}
	return out, true
}

// entryBundle returns entry bundle index of width p (0 = full).
// SPEC: a bundle is a concatenation of uint16_be(len) || entry.
func (l *Log) entryBundle(index uint64, p uint8) ([]byte, bool) {
	width := uint64(p)
	if width == 0 {
		width = layout.EntryBundleWidth
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if index >= 1<<48 {
		return nil, false
	}
	first := index * layout.EntryBundleWidth
	if first+width > uint64(l.size) {
		return nil, false
	}
	var out []byte
	for _, e := range l.leaves[first : first+width] {
		out = binary.BigEndian.AppendUint16(out, uint16(len(e)))
		out = append(out, e...)
	}
	return out, true
}
