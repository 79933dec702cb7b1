// Package memcachedtest starts a throw-away memcached on a loopback port
// for tests of the memcached source and of the migrate command, so both
// run against the real server (including its LRU crawler) rather than a
// fake. A missing binary skips the test unless PHPSESSD_REQUIRE_PHP=1,
// where the test fails, matching the project's other interop tests.
package memcachedtest

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Binary is where Debian's memcached package installs the server.
const Binary = "/usr/bin/memcached"

// Need skips (or fails, with PHPSESSD_REQUIRE_PHP=1) when path is missing.
func Need(t testing.TB, path string) {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		return
	}
	if os.Getenv("PHPSESSD_REQUIRE_PHP") == "1" {
		t.Fatalf("%s is required (PHPSESSD_REQUIRE_PHP=1) but missing", path)
	}
	t.Skipf("%s not installed", path)
}

// Start runs memcached on a free loopback port until the test ends and
// returns its host:port.
func Start(t testing.TB) string {
	t.Helper()
	Need(t, Binary)
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		addr, stop, err := start()
		if err == nil {
			t.Cleanup(stop)
			return addr
		}
		lastErr = err
	}
	t.Fatalf("memcached did not start: %v", lastErr)
	return ""
}

func start() (string, func(), error) {
	port := 20000 + rand.IntN(25000)
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return "", nil, err
	}
	_ = l.Close()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	args := []string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0", "-m", "64", "-t", "1"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root") // memcached refuses to run as root otherwise
	}
	cmd := exec.Command(Binary, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	// SIGKILL: the server holds nothing worth flushing, and on SIGTERM
	// memcached waits up to a second for its background threads.
	stop := func() {
		_ = cmd.Process.Kill()
		<-done
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return "", nil, fmt.Errorf("exited early: %s", stderr.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			ok := version(c)
			_ = c.Close()
			if ok {
				return addr, stop, nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	return "", nil, fmt.Errorf("not answering on %s", addr)
}

func version(c net.Conn) bool {
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("version\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "VERSION")
}
