// Package tesseralog runs a real Tessera v1 log on its POSIX storage driver
// in a directory and serves that directory over HTTP as a C2SP tlog-tiles
// log on 127.0.0.1, for tests: the tiles a reader sees are exactly those
// Tessera wrote (partial tiles only for the sizes it integrated).
package tesseralog

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/storage/posix"
	"golang.org/x/mod/sumdb/note"
)

// Log is a Tessera POSIX log and the HTTP server that serves it.
type Log struct {
	// Dir is the log's POSIX storage directory.
	Dir string
	// URL is the log's tlog-tiles prefix (no trailing slash).
	URL string

	cancel   context.CancelFunc
	appender *tessera.Appender
	reader   tessera.LogReader
	awaiter  *tessera.PublicationAwaiter
	shutdown func(context.Context) error
	srv      *http.Server

	mu       sync.Mutex
	requests []string
}

// Start creates a log in dir signed by signer, publishing a checkpoint
// every 100 ms (Tessera's minimum) when it has grown, and serves it. Close
// stops both.
func Start(ctx context.Context, dir string, signer note.Signer) (*Log, error) {
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	driver, err := posix.New(lctx, posix.Config{Path: dir})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("opening POSIX log: %w", err)
	}
	opts := tessera.NewAppendOptions().
		WithCheckpointSigner(signer).
		WithBatching(256, 20*time.Millisecond).
		WithCheckpointInterval(100 * time.Millisecond)
	a, shutdown, r, err := tessera.NewAppender(lctx, driver, opts)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("starting log: %w", err)
	}
	l := &Log{Dir: dir, cancel: cancel, appender: a, reader: r, shutdown: shutdown,
		awaiter: tessera.NewPublicationAwaiter(lctx, r.ReadCheckpoint, 5*time.Millisecond)}
	// Tessera publishes the empty tree's checkpoint when it starts; wait
	// for it so that the log is readable as soon as Start returns.
	if err := l.waitFile(ctx, layout.CheckpointPath); err != nil {
		l.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		l.Close()
		return nil, err
	}
	l.URL = "http://" + ln.Addr().String()
	files := http.FileServer(http.Dir(dir))
	l.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		l.mu.Lock()
		l.requests = append(l.requests, req.URL.Path)
		l.mu.Unlock()
		files.ServeHTTP(w, req)
	})}
	go l.srv.Serve(ln)
	return l, nil
}

func (l *Log) waitFile(ctx context.Context, name string) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		if _, err := os.Stat(filepath.Join(l.Dir, name)); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", name, ctx.Err())
		case <-t.C:
		}
	}
}

// Append adds entries to the log as one batch (Tessera integrates entries
// added together at once, so no partial tile is written for a size inside
// the batch) and returns once a checkpoint covering all of them is
// published, with that checkpoint.
func (l *Log) Append(ctx context.Context, entries ...[]byte) ([]byte, error) {
	if len(entries) == 0 {
		return l.Checkpoint(ctx)
	}
	futures := make([]tessera.IndexFuture, len(entries))
	for i, e := range entries {
		futures[i] = l.appender.Add(ctx, tessera.NewEntry(e))
	}
	var cp []byte
	var last uint64
	for _, f := range futures {
		idx, c, err := l.awaiter.Await(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("appending: %w", err)
		}
		if idx.Index >= last {
			last, cp = idx.Index, c
		}
	}
	return cp, nil
}

// Checkpoint returns the log's published checkpoint.
func (l *Log) Checkpoint(ctx context.Context) ([]byte, error) {
	return l.reader.ReadCheckpoint(ctx)
}

// HasTile reports whether the log's directory holds hash tile (level,
// index) of partial width p (0: full).
func (l *Log) HasTile(level, index uint64, p uint8) bool {
	_, err := os.Stat(filepath.Join(l.Dir, layout.TilePath(level, index, p)))
	return err == nil
}

// Requests returns the paths requested from the server so far.
func (l *Log) Requests() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.requests)
}

// Close stops serving and shuts the log down.
func (l *Log) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	if l.srv != nil {
		errs = append(errs, l.srv.Shutdown(ctx))
	}
	errs = append(errs, l.shutdown(ctx))
	l.cancel()
	return errors.Join(errs...)
}
