// Package testserver starts throw-away redis-server and memcached
// processes on loopback ports, so the handler tests, the migrate tests,
// the PHP interop tests and the bench command all run against real
// servers through one implementation of the fiddly parts: picking a port
// that never collides with the machine's own services, waiting for the
// server to answer within a bounded time, stopping the whole process
// group even when it hangs, and applying the project's rule for missing
// binaries (skip on a developer machine, fail where PHPSESSD_REQUIRE_PHP=1
// demands full coverage). The core types return errors and never import
// the testing package, because the bench command links this package into
// the shipped binary; the Start* helpers add the test plumbing on top.
package testserver

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// TB is the part of testing.TB the helpers use. It is declared here so
// that importing this package does not link the testing package into the
// phpsessd binary; *testing.T and *testing.B satisfy it.
type TB interface {
	Helper()
	Cleanup(func())
	TempDir() string
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
}

// RequireEnv names the variable that turns a missing binary from a skip
// into a failure; CI sets it to 1 so interop coverage cannot silently
// disappear.
const RequireEnv = "PHPSESSD_REQUIRE_PHP"

// Need returns the path of bin (a name looked up on $PATH, or a path). If
// it is missing the test is skipped, or failed when PHPSESSD_REQUIRE_PHP=1.
func Need(t TB, bin string) string {
	t.Helper()
	path, err := exec.LookPath(bin)
	if err == nil {
		return path
	}
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%s is required (%s=1) but missing", bin, RequireEnv)
	}
	t.Skipf("%s not installed", bin)
	return ""
}

// FreePort returns a loopback port that is free together with port+10000,
// which Redis Cluster uses for its bus. The range keeps clear of 6379 and
// 11211, so a developer's own Redis or memcached is never touched, and
// low enough that the bus port is a valid port. Another process may still
// take the port before the server binds it; the starters retry on a new
// port when that happens.
func FreePort() (int, error) {
	for i := 0; i < 200; i++ {
		p := 20000 + rand.IntN(25000)
		if portFree(p) && portFree(p+10000) {
			return p, nil
		}
	}
	return 0, errors.New("testserver: no free loopback port")
}

func portFree(p int) bool {
	l, err := net.Listen("tcp", loopback(p))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

func loopback(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// SyncBuffer is a bytes.Buffer that a child process or a background
// goroutine may write while the test reads it.
type SyncBuffer struct {
	// Max, when positive, caps what is kept: later writes are dropped but
	// reported as written, so a chatty server in a long bench run cannot
	// exhaust memory or block on its output.
	Max int

	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Max > 0 && s.b.Len() > s.Max {
		return len(p), nil
	}
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// logLimit bounds a server's captured output; startup failures only need
// the last lines.
const logLimit = 4 << 20

// readyTimeout bounds the wait for a server to answer after it started.
const readyTimeout = 10 * time.Second

// stopGrace is how long a server may take to shut down cleanly before its
// process group is killed.
const stopGrace = 5 * time.Second

// proc is a started server process.
type proc struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// server is what Redis and Memcached share: the binary, the captured
// output and the running process with its address.
type server struct {
	name  string              // the binary's name on $PATH, for messages
	probe func(net.Conn) bool // true once the server answers
	Port  int
	Addr  string
	log   SyncBuffer
	proc  *proc
}

// start resolves *bin, then tries up to three free ports: another process
// may take a port between FreePort and the server's bind, and a fresh
// port usually fixes that.
func (s *server) start(bin *string, args func(port int) ([]string, error)) error {
	if s.proc != nil {
		return fmt.Errorf("testserver: %s already running", s.name)
	}
	if *bin == "" {
		path, err := exec.LookPath(s.name)
		if err != nil {
			return fmt.Errorf("%s not found: %w", s.name, err)
		}
		*bin = path
	}
	s.log.Max = logLimit
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var port int
		if port, err = FreePort(); err != nil {
			return err
		}
		if err = s.startOn(*bin, port, args); err == nil {
			return nil
		}
	}
	return err
}

func (s *server) startOn(bin string, port int, args func(port int) ([]string, error)) error {
	argv, err := args(port)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, argv...)
	cmd.Stdout, cmd.Stderr = &s.log, &s.log
	// A group of its own, so a kill also reaches any child the server
	// forked (Redis's AOF rewrite), which would otherwise keep the output
	// pipe open and block Wait.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.name, err)
	}
	p := &proc{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	addr := loopback(port)
	if err := p.waitReady(addr, s.probe); err != nil {
		p.kill()
		return fmt.Errorf("%s on %s %v:\n%s", s.name, addr, err, tail(s.log.String()))
	}
	s.proc, s.Port, s.Addr = p, port, addr
	return nil
}

// PID is the server's process id while it runs, else 0; benchmarks read
// its CPU time from /proc.
func (s *server) PID() int {
	if s.proc == nil {
		return 0
	}
	return s.proc.cmd.Process.Pid
}

// Stop shuts the server down with SIGTERM, killing its process group if
// it does not exit within a few seconds. It is safe to call more than
// once, and on a server that never started.
func (s *server) Stop() {
	if s.proc == nil {
		return
	}
	s.proc.stop()
	s.proc = nil
}

// Kill ends the server at once, as a crash would, without letting it save
// or close connections cleanly.
func (s *server) Kill() {
	if s.proc == nil {
		return
	}
	s.proc.kill()
	s.proc = nil
}

// Logs is what the server printed so far, across restarts.
func (s *server) Logs() string { return s.log.String() }

func (p *proc) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.exited
}

func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(stopGrace):
		p.kill()
	}
}

var errExited = errors.New("exited during start")

// waitReady polls addr with probe until it answers, the process exits or
// readyTimeout passes.
func (p *proc) waitReady(addr string, probe func(net.Conn) bool) error {
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			return errExited
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			_ = c.SetDeadline(time.Now().Add(time.Second))
			ok := probe(c)
			_ = c.Close()
			if ok {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %v", readyTimeout)
}

// answers is a probe that sends req in the server's own text protocol and
// expects a reply line starting with want, so that startup does not
// depend on any client code under test.
func answers(req, want string) func(net.Conn) bool {
	return func(c net.Conn) bool {
		if _, err := c.Write([]byte(req)); err != nil {
			return false
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		return err == nil && strings.HasPrefix(line, want)
	}
}

// tail keeps the end of a log for an error message.
func tail(s string) string {
	const n = 2000
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
