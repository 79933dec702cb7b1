package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// loadFlags are the flags bench-redis and bench-wire share: how much load,
// for how long, in how many interleaved slices.
type loadFlags struct {
	clients  int
	duration time.Duration
	requests int64
	rounds   int
}

// check validates the load flags; a usage exit code, or -1 when they hold.
func (l loadFlags) check(env *cmdEnv, name string) int {
	switch {
	case l.clients < 1 || l.clients > 1024:
		return usageError(env, name, "--clients must be 1..1024, got %d", l.clients)
	case l.duration <= 0 || l.duration > 10*time.Minute:
		return usageError(env, name, "--duration must be in (0, 10m], got %v", l.duration)
	case l.requests < 1:
		return usageError(env, name, "--requests must be > 0")
	case l.rounds < 1 || l.rounds > 20:
		return usageError(env, name, "--rounds must be 1..20, got %d", l.rounds)
	}
	return -1
}

// benchWorkspace returns the phpsessd binary a bench runs as its daemons
// (bin, or this executable) and a new temporary directory for their
// sockets, which the caller removes.
func benchWorkspace(bin, prefix string) (string, string, error) {
	if bin == "" {
		self, err := os.Executable()
		if err != nil {
			return "", "", fmt.Errorf("find own binary: %w", err)
		}
		bin = self
	}
	// Unix socket paths are limited to ~100 bytes; a long $TMPDIR would
	// make the daemons fail to listen.
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", "", fmt.Errorf("temp dir: %w", err)
	}
	return bin, dir, nil
}

// printReport writes a bench report as indented JSON or as text.
func printReport(env *cmdEnv, name string, asJSON bool, rep any, text func(io.Writer)) int {
	if !asJSON {
		text(env.Stdout)
		return exitOK
	}
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		fmt.Fprintf(env.Stderr, "phpsessd %s: %v\n", name, err)
		return exitFail
	}
	return exitOK
}

// interruptible runs a command with a context that Ctrl-C or SIGTERM
// cancels, so a long bench stops its servers and exits cleanly.
func interruptible(main func(ctx context.Context, env *cmdEnv, args []string) int) func(*cmdEnv, []string) int {
	return func(env *cmdEnv, args []string) int {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return main(ctx, env, args)
	}
}
