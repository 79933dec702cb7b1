package fpmtest

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// The pages are plain PHP that knows nothing about phpsessd: whatever
// they get right or wrong is what an unmodified app would see.
//
//go:embed pages/*.php
var pages embed.FS

// WritePages copies the test pages into dir.
func WritePages(dir string) error {
	return fs.WalkDir(pages, "pages", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := pages.ReadFile(path)
		if err != nil {
			return fmt.Errorf("fpmtest: read embedded %s: %w", path, err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(path)), data, 0o644); err != nil {
			return fmt.Errorf("fpmtest: write page: %w", err)
		}
		return nil
	})
}
