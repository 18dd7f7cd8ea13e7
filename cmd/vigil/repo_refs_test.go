package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoReferencesOutsideRepo: no source file or document names a file
// outside the repository (a workspace path or a sibling directory), which a
// reader of a clone cannot open.
func TestNoReferencesOutsideRepo(t *testing.T) {
	root := filepath.Join("..", "..")
	// Built from parts so this file does not match itself.
	banned := []string{"/work" + "/", ".." + "/shared", "shared" + "/specs/"}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); name == ".git" || name == "node_modules" {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(path) {
		case ".go", ".md", ".txt", ".yaml", ".yml", ".sh", ".html", ".js", ".css", ".proto":
		default:
			if d.Name() != "Makefile" {
				return nil
			}
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			for _, s := range banned {
				if strings.Contains(line, s) {
					t.Errorf("%s:%d refers outside the repository (%q): %s", path, i+1, s, strings.TrimSpace(line))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
