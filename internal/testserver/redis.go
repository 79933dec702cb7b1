package testserver

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Redis is a private redis-server on loopback without persistence unless
// Args ask for it. Set the exported fields, then call Start; Addr and
// Port are filled in once it answers PING.
type Redis struct {
	// Bin is the redis-server binary; empty finds it on $PATH.
	Bin string
	// Dir is the server's working directory (--dir); required.
	Dir string
	// Conf, when set, is written to Dir/redis.conf at each start and given
	// to the server as its config file, for setups that need one (a
	// sentinel refuses to run without a file it can rewrite).
	Conf string
	// Args come after the defaults, so they override them.
	Args []string

	server
}

// Start runs the server on a free port and returns once it answers.
func (r *Redis) Start() error {
	if r.Dir == "" {
		return errors.New("testserver: Redis.Dir is not set")
	}
	r.init()
	return r.start(&r.Bin, r.args)
}

func (r *Redis) init() {
	r.name, r.probe = "redis-server", answers("PING\r\n", "+PONG")
}

func (r *Redis) args(port int) ([]string, error) {
	var args []string
	if r.Conf != "" {
		conf := filepath.Join(r.Dir, "redis.conf")
		if err := os.WriteFile(conf, []byte(r.Conf), 0o600); err != nil {
			return nil, err
		}
		args = append(args, conf)
	}
	// Protected mode only refuses clients from other hosts, and the bind
	// already keeps those out; it stays on as Redis ships it.
	args = append(args, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.Dir, "--protected-mode", "yes")
	return append(args, r.Args...), nil
}

// Restart brings a stopped or killed server back on the same port and
// directory, so clients reconnect to the address they already have and
// find whatever the server persisted.
func (r *Redis) Restart() error {
	if r.Port == 0 {
		return errors.New("testserver: Restart before Start")
	}
	r.Stop()
	r.init()
	var err error
	// The old socket may linger in the kernel for a moment after a kill.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if err = r.startOn(r.Bin, r.Port, r.args); err == nil || time.Now().After(deadline) {
			return err
		}
	}
}

// StartRedis runs a redis-server with the extra arguments in a temporary
// directory until the test ends. A missing binary skips or fails the test
// as Need does.
func StartRedis(t TB, args ...string) *Redis {
	t.Helper()
	r := &Redis{Bin: Need(t, "redis-server"), Dir: t.TempDir(), Args: args}
	if err := r.Start(); err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(r.Stop)
	return r
}
