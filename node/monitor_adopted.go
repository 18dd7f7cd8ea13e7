package node

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/vigilnet/vigil/roster"
)

// adoptedDir is where, under the data directory, the node records the logs
// it adopted from each logs/v0 list, so that a restart does not let a
// changed list remove or change them.
const adoptedDir = "log-lists"

// adoptedPath is the record of the logs adopted from the list at loc, or ""
// when the node has no data directory.
func (n *Node) adoptedPath(loc string) string {
	if n.cfg.DataDir == "" {
		return ""
	}
	h := sha256.Sum256([]byte(loc))
	return filepath.Join(n.cfg.DataDir, adoptedDir, hex.EncodeToString(h[:8])+".logs")
}

// readAdopted returns the logs recorded as adopted from the list at loc, by
// origin; none if there is no record yet.
func (n *Node) readAdopted(loc string) (map[string]*roster.Log, error) {
	out := map[string]*roster.Log{}
	p := n.adoptedPath(loc)
	if p == "" {
		return out, nil
	}
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the logs adopted from %s: %w", loc, err)
	}
	logs, err := roster.ParseLogList(data)
	if err != nil {
		return nil, fmt.Errorf("the logs adopted from %s (%s): %w; fix or delete the file while the node is stopped", loc, p, err)
	}
	for _, l := range logs {
		out[l.Origin] = l
	}
	return out, nil
}

// writeAdopted records the logs adopted from the list at loc, durably
// (temporary file, sync, rename, sync of the directory).
func (n *Node) writeAdopted(loc string, logs map[string]*roster.Log) error {
	p := n.adoptedPath(loc)
	if p == "" {
		return nil
	}
	sorted := make([]*roster.Log, 0, len(logs))
	for _, l := range logs {
		sorted = append(sorted, l)
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Origin < sorted[j].Origin })
	data, err := roster.FormatLogList([]string{
		"Logs this node adopted from the logs/v0 list " + loc + ".",
		"A changed list never removes or changes them; edit this file only while the node is stopped.",
	}, sorted)
	if err != nil {
		return fmt.Errorf("recording the logs adopted from %s: %w", loc, err)
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("recording the logs adopted from %s: %w", loc, err)
	}
	tmp, err := os.CreateTemp(dir, ".adopted-*")
	if err != nil {
		return fmt.Errorf("recording the logs adopted from %s: %w", loc, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("recording the logs adopted from %s: %w", loc, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("recording the logs adopted from %s: %w", loc, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("recording the logs adopted from %s: %w", loc, err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("recording the logs adopted from %s: %w", loc, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
