package redis

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// TestMain drops go-redis's own log lines (dial failures during the
// restart test); the tests assert on returned errors instead.
func TestMain(m *testing.M) {
	SetLogger(nil)
	os.Exit(m.Run())
}

const (
	redisServerBin = "/usr/bin/redis-server"
	redisCLIBin    = "/usr/bin/redis-cli"
)

// needBinary skips the test when a binary is missing on a developer
// machine, and fails it where the test script demands full coverage.
func needBinary(t testing.TB, path string) {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		return
	}
	if os.Getenv("PHPSESSD_REQUIRE_PHP") == "1" {
		t.Fatalf("%s is required (PHPSESSD_REQUIRE_PHP=1) but missing", path)
	}
	t.Skipf("%s not installed", path)
}

// redisServer is a redis-server process the test owns, on loopback.
type redisServer struct {
	t    testing.TB
	port int
	dir  string
	args []string
	cmd  *exec.Cmd
	done chan struct{}
}

func (r *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// freePort finds a loopback port that is free, and whose cluster bus port
// (+10000) is free too. Ports come from a range far from 6379 so the
// machine's own Redis is never touched.
func freePort(t testing.TB) int {
	t.Helper()
	for i := 0; i < 200; i++ {
		p := 20000 + rand.IntN(25000)
		ok := true
		for _, q := range []int{p, p + 10000} {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(q))
			if err != nil {
				ok = false
				break
			}
			_ = l.Close()
		}
		if ok {
			return p
		}
	}
	t.Fatal("no free loopback port")
	return 0
}

// startRedis starts a redis-server on a free loopback port with the extra
// arguments and stops it when the test ends.
func startRedis(t testing.TB, extra ...string) *redisServer {
	t.Helper()
	needBinary(t, redisServerBin)
	r := &redisServer{t: t, dir: t.TempDir(), args: extra}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		r.port = freePort(t)
		if lastErr = r.start(); lastErr == nil {
			t.Cleanup(r.stop)
			return r
		}
	}
	t.Fatalf("redis-server did not start: %v", lastErr)
	return nil
}

func (r *redisServer) start() error {
	args := append([]string{
		"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir,
		"--protected-mode", "no", "--logfile", filepath.Join(r.dir, "redis.log"),
	}, r.args...)
	cmd := exec.Command(redisServerBin, args...)
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	r.cmd, r.done = cmd, done
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
			return fmt.Errorf("exited early: %s", tail(string(log)))
		default:
		}
		if c, err := net.DialTimeout("tcp", r.addr(), 200*time.Millisecond); err == nil {
			ok := ping(c)
			_ = c.Close()
			if ok {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.kill()
	return fmt.Errorf("not answering PING on %s", r.addr())
}

// ping is a raw RESP PING so startup does not depend on the code under test.
func ping(c net.Conn) bool {
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

func tail(s string) string {
	if len(s) > 800 {
		return s[len(s)-800:]
	}
	return s
}

func (r *redisServer) kill() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.done
	r.cmd = nil
}

func (r *redisServer) stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		_ = r.cmd.Process.Signal(syscall.SIGKILL)
		<-r.done
	}
	r.cmd = nil
}

// restart brings the server back on the same port and directory.
func (r *redisServer) restart() {
	r.t.Helper()
	var err error
	for i := 0; i < 50; i++ {
		if err = r.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond) // the port may linger briefly
	}
	r.t.Fatalf("restart redis-server: %v", err)
}

// newClient is a go-redis client for the server, configured as the
// store's URL parser would.
func (r *redisServer) newClient(t testing.TB) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: r.addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// openStore opens a store through its URL, owning its client.
func (r *redisServer) openStore(t testing.TB, query string) *Store {
	t.Helper()
	u := "redis://" + r.addr() + "/0"
	if query != "" {
		u += "?" + query
	}
	return openURL(t, u)
}

func openURL(t testing.TB, rawURL string) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := openForTest(ctx, rawURL)
	if err != nil {
		t.Fatalf("open %s: %v", rawURL, err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// cluster is three masters on loopback, no replicas.
type cluster struct {
	nodes []*redisServer
}

func startCluster(t testing.TB) *cluster {
	t.Helper()
	needBinary(t, redisCLIBin)
	c := &cluster{}
	for i := 0; i < 3; i++ {
		n := startRedis(t, "--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")
		c.nodes = append(c.nodes, n)
	}
	args := []string{"--cluster", "create"}
	for _, n := range c.nodes {
		args = append(args, n.addr())
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.Command(redisCLIBin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok := true
		for _, n := range c.nodes {
			out, err := exec.Command(redisCLIBin, "-p", strconv.Itoa(n.port), "cluster", "info").Output()
			if err != nil || !strings.Contains(string(out), "cluster_state:ok") {
				ok = false
			}
		}
		if ok {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatal("cluster did not reach cluster_state:ok")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *cluster) url(query string) string {
	u := "redis+cluster://" + c.nodes[0].addr() + "," + c.nodes[1].addr() + "/"
	if query != "" {
		u += "?" + query
	}
	return u
}

// startSentinel starts a sentinel monitoring master under the name
// "sessions" and waits until it reports the master.
func startSentinel(t testing.TB, master *redisServer) *redisServer {
	t.Helper()
	s := &redisServer{t: t, dir: t.TempDir()}
	for attempt := 0; ; attempt++ {
		s.port = freePort(t)
		conf := filepath.Join(s.dir, "sentinel.conf")
		body := fmt.Sprintf("port %d\nbind 127.0.0.1\nsentinel monitor sessions 127.0.0.1 %d 1\nsentinel down-after-milliseconds sessions 5000\n", s.port, master.port)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(redisServerBin, conf, "--sentinel", "--logfile", filepath.Join(s.dir, "sentinel.log"))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		s.cmd, s.done = cmd, done
		t.Cleanup(s.stop)
		c := goredis.NewSentinelClient(&goredis.Options{Addr: s.addr()})
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			addr, err := c.GetMasterAddrByName(context.Background(), "sessions").Result()
			if err == nil && len(addr) == 2 && addr[1] == strconv.Itoa(master.port) {
				_ = c.Close()
				return s
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = c.Close()
		s.stop()
		if attempt == 2 {
			t.Fatal("sentinel did not come up")
		}
	}
}
