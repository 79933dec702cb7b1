package testserver

import (
	"os"
	"strconv"
)

// Memcached is a private memcached on loopback with 64 MiB and one worker
// thread. Set the exported fields, then call Start; Addr and Port are
// filled in once it answers "version".
type Memcached struct {
	// Bin is the memcached binary; empty finds it on $PATH.
	Bin string
	// Args come after the defaults.
	Args []string

	server
}

// Start runs the server on a free port and returns once it answers.
func (m *Memcached) Start() error {
	m.name, m.probe = "memcached", answers("version\r\n", "VERSION")
	return m.start(&m.Bin, m.args)
}

func (m *Memcached) args(port int) ([]string, error) {
	args := []string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0", "-m", "64", "-t", "1"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root") // memcached refuses to run as root otherwise
	}
	return append(args, m.Args...), nil
}

// Stop kills the server: it holds nothing worth flushing, and on SIGTERM
// memcached waits up to a second for its background threads.
func (m *Memcached) Stop() { m.Kill() }

// StartMemcached runs a memcached until the test ends. A missing binary
// skips or fails the test as Need does.
func StartMemcached(t TB) *Memcached {
	t.Helper()
	m := &Memcached{Bin: Need(t, "memcached")}
	if err := m.Start(); err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(m.Stop)
	return m
}
