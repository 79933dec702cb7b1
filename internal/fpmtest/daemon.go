package fpmtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/phpsessd/phpsessd/internal/testserver"
)

// ModuleRoot finds the phpsessd checkout by walking up from the working
// directory to the go.mod of the module, so tests and tools refer to
// php-client/ and cmd/ relative to the repo, wherever it is checked out.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("fpmtest: %w", err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(data, []byte("module github.com/phpsessd/phpsessd")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("fpmtest: not inside the phpsessd module")
		}
		dir = parent
	}
}

// BuildDaemon compiles ./cmd/phpsessd of the module at root into outDir.
func BuildDaemon(ctx context.Context, root, outDir string) (string, error) {
	bin := filepath.Join(outDir, "phpsessd")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/phpsessd")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("fpmtest: go build ./cmd/phpsessd: %w\n%s", err, out)
	}
	return bin, nil
}

// DaemonConfig describes a phpsessd subprocess.
type DaemonConfig struct {
	// Bin is the phpsessd binary.
	Bin string
	// Dir holds the socket; the caller removes it.
	Dir string
	// Store is the --store URL (default memory://).
	Store string
	// Args are extra serve flags (--counter n, --key-rule "price fail"...).
	Args []string
	// Env adds KEY=value pairs to the daemon's environment, which is
	// otherwise the caller's without any PHPSESSD_* variable.
	Env []string
	// StartTimeout bounds the wait for the socket (default 10 s).
	StartTimeout time.Duration
}

// Daemon is a running `phpsessd serve`.
type Daemon struct {
	cfg     DaemonConfig
	cmd     *exec.Cmd
	Socket  string
	log     *testserver.SyncBuffer
	exited  chan struct{}
	waitErr error
}

// Address is the daemon's address in the form the shim and the CLI take.
func (d *Daemon) Address() string { return "unix://" + d.Socket }

// StartDaemon runs `phpsessd serve --listen unix://<dir>/d.sock --store
// <store> <args>` and returns once the socket answers PING.
func StartDaemon(cfg DaemonConfig) (*Daemon, error) {
	if cfg.Store == "" {
		cfg.Store = "memory://"
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 10 * time.Second
	}
	// The log is bounded: a chatty daemon in a long bench must not eat the memory.
	d := &Daemon{cfg: cfg, Socket: filepath.Join(cfg.Dir, "d.sock"), log: &testserver.SyncBuffer{Max: 4 << 20}, exited: make(chan struct{})}
	_ = os.Remove(d.Socket)
	args := append([]string{"serve", "--listen", d.Address(), "--store", cfg.Store}, cfg.Args...)
	cmd := exec.Command(cfg.Bin, args...)
	cmd.Dir = cfg.Dir
	cmd.Stdout, cmd.Stderr = d.log, d.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// serve reads PHPSESSD_* variables as settings: the caller's (a test
	// run's PHPSESSD_REQUIRE_PHP, a developer's shell) must not leak in.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PHPSESSD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, cfg.Env...)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("fpmtest: start phpsessd: %w", err)
	}
	d.cmd = cmd
	go func() {
		d.waitErr = cmd.Wait()
		close(d.exited)
	}()
	if err := d.waitReady(); err != nil {
		_ = d.Stop()
		return nil, fmt.Errorf("%w\nphpsessd %s\n%s", err, strings.Join(args, " "), d.Logs())
	}
	return d, nil
}

func (d *Daemon) waitReady() error {
	deadline := time.Now().Add(d.cfg.StartTimeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-d.exited:
			return fmt.Errorf("fpmtest: phpsessd exited during start: %v", d.waitErr)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		c, err := DialRESP(ctx, d.Address())
		cancel()
		if err == nil {
			_, err = c.Do(time.Second, "PING")
			c.Close()
			if err == nil {
				return nil
			}
		}
		last = err
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("fpmtest: phpsessd not answering on %s after %v: %v", d.Socket, d.cfg.StartTimeout, last)
}

// PID is the daemon's process id.
func (d *Daemon) PID() int { return d.cmd.Process.Pid }

// Stop sends SIGTERM and waits; SIGKILL after 5 s. Safe to call twice.
func (d *Daemon) Stop() error {
	if d == nil || d.cmd == nil || d.cmd.Process == nil {
		return nil
	}
	select {
	case <-d.exited:
		return nil
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
		return nil
	case <-time.After(5 * time.Second):
	}
	_ = syscall.Kill(-d.PID(), syscall.SIGKILL)
	<-d.exited
	return errors.New("fpmtest: phpsessd needed SIGKILL to stop")
}

// Exited reports whether the process has ended, and how.
func (d *Daemon) Exited() (bool, error) {
	select {
	case <-d.exited:
		return true, d.waitErr
	default:
		return false, nil
	}
}

// Logs returns what the daemon printed so far.
func (d *Daemon) Logs() string { return d.log.String() }
