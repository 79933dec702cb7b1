package redis

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/phpsessd/phpsessd/internal/testserver"
)

// TestMain drops go-redis's own log lines (dial failures during the
// restart test); the tests assert on returned errors instead.
func TestMain(m *testing.M) {
	SetLogger(nil)
	os.Exit(m.Run())
}

// redisServer is a redis-server the test owns, on loopback, with the
// client helpers these tests share.
type redisServer struct {
	*testserver.Redis
}

// startRedis starts a redis-server with the extra arguments and stops it
// when the test ends.
func startRedis(t testing.TB, extra ...string) *redisServer {
	t.Helper()
	return &redisServer{testserver.StartRedis(t, extra...)}
}

// newClient is a go-redis client for the server, configured as the
// store's URL parser would.
func (r *redisServer) newClient(t testing.TB) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: r.Addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// openStore opens a store through its URL, owning its client.
func (r *redisServer) openStore(t testing.TB, query string) *Store {
	t.Helper()
	u := "redis://" + r.Addr + "/0"
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
	cli := testserver.Need(t, "redis-cli")
	c := &cluster{}
	for i := 0; i < 3; i++ {
		n := startRedis(t, "--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")
		c.nodes = append(c.nodes, n)
	}
	args := []string{"--cluster", "create"}
	for _, n := range c.nodes {
		args = append(args, n.Addr)
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.Command(cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok := true
		for _, n := range c.nodes {
			out, err := exec.Command(cli, "-p", strconv.Itoa(n.Port), "cluster", "info").Output()
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
	u := "redis+cluster://" + c.nodes[0].Addr + "," + c.nodes[1].Addr + "/"
	if query != "" {
		u += "?" + query
	}
	return u
}

// startSentinel starts a sentinel monitoring master under the name
// "sessions" and waits until it reports the master.
func startSentinel(t testing.TB, master *redisServer) *redisServer {
	t.Helper()
	conf := fmt.Sprintf("sentinel monitor sessions 127.0.0.1 %d 1\nsentinel down-after-milliseconds sessions 5000\n", master.Port)
	for attempt := 0; ; attempt++ {
		s := &testserver.Redis{Bin: master.Bin, Dir: t.TempDir(), Conf: conf, Args: []string{"--sentinel"}}
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Stop)
		c := goredis.NewSentinelClient(&goredis.Options{Addr: s.Addr})
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			addr, err := c.GetMasterAddrByName(context.Background(), "sessions").Result()
			if err == nil && len(addr) == 2 && addr[1] == strconv.Itoa(master.Port) {
				_ = c.Close()
				return &redisServer{s}
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = c.Close()
		s.Stop()
		if attempt == 2 {
			t.Fatal("sentinel did not come up")
		}
	}
}
