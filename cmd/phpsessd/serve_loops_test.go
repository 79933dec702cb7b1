package main

import (
	"context"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/phpsessd/phpsessd/engine"
	"github.com/phpsessd/phpsessd/handlers"
)

// --event-loops auto puts the memory store on one loop per CPU (Linux),
// leaves every other store on goroutines, and an explicit count on a store
// that can block is refused before the daemon starts.
func TestEventLoopsFollowTheStore(t *testing.T) {
	mem, err := handlers.Open(context.Background(), "memory://")
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	files, err := handlers.Open(context.Background(), "files://"+filepath.ToSlash(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer files.Close()
	auto := 0
	if runtime.GOOS == "linux" {
		auto = runtime.GOMAXPROCS(0)
	}
	for _, tc := range []struct {
		name   string
		loops  int
		store  handlers.Store
		locker engine.Locker
		want   int
		err    string
	}{
		{"auto memory", -1, mem, nil, auto, ""},
		{"auto files", -1, files, nil, 0, ""},
		{"auto memory with a shared locker", -1, mem, engine.NewMemLocker(nil), 0, ""},
		{"off", 0, mem, nil, 0, ""},
		{"three on memory", 3, mem, nil, 3, ""},
		{"two on files", 2, files, nil, 0, "need the memory:// store"},
	} {
		cfg := defaultConfig()
		cfg.EventLoops = tc.loops
		got, err := eventLoops(cfg, tc.store, tc.locker)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: err %v, want one saying %q", tc.name, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case got != tc.want:
			t.Errorf("%s: %d loops, want %d", tc.name, got, tc.want)
		}
	}
}
