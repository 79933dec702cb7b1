package server

import (
	"context"
	"encoding/csv"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/engine"
	"github.com/phpsessd/phpsessd/handlers"
	_ "github.com/phpsessd/phpsessd/handlers/all"
	"github.com/phpsessd/phpsessd/handlers/cache"
	"github.com/phpsessd/phpsessd/protocol"
)

// loadReadWrite runs clients concurrent connections, each doing READ then
// WRITE of its own session (with changed data, so every WRITE stores), until
// d passes. It returns the commands completed: one READ+WRITE is two round
// trips, the same count redis-benchmark gives for one GET plus one SET.
func loadReadWrite(tb testing.TB, addr string, clients int, d time.Duration) (ops int64, err error) {
	// No deadline on the round trips: the load generator shares the CPUs
	// with the server, so it should cost as little as a C client would.
	ctx := context.Background()
	var total atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	stop := time.Now().Add(d)
	for i := 0; i < clients; i++ {
		c, err := protocol.Dial(ctx, addr)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id := fmt.Sprintf("benchsession%020d", i)
			var n int64
			for k := 0; time.Now().Before(stop); k++ {
				rep, err := c.Do(ctx, "READ", id, "FORMAT", "php")
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				base := rep.Array[1].Int
				if _, err := c.Do(ctx, "WRITE", id, "n|i:"+strconv.Itoa(k)+";", "BASE", base, "FORMAT", "php"); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				n += 2
			}
			total.Add(n)
		}(i)
	}
	wg.Wait()
	if e, ok := firstErr.Load().(error); ok {
		return total.Load(), e
	}
	return total.Load(), nil
}

// BenchmarkReadWrite measures READ+WRITE round trips over a unix socket
// with 32 concurrent connections against the memory store.
func BenchmarkReadWrite(b *testing.B) {
	env := startServer(b, nil)
	ctx := context.Background()
	const clients = 32
	conns := make([]*protocol.Client, clients)
	for i := range conns {
		c, err := protocol.Dial(ctx, env.unix)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	var next atomic.Int64
	b.SetParallelism((clients + 1) / 2)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)-1) % clients
		c := conns[i]
		id := fmt.Sprintf("benchsession%020d", i)
		for k := 0; pb.Next(); k++ {
			rep, err := c.Do(ctx, "READ", id, "FORMAT", "php")
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := c.Do(ctx, "WRITE", id, "n|i:"+strconv.Itoa(k)+";", "BASE", rep.Array[1].Int, "FORMAT", "php"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// TestCompareRedis prints phpsessd READ+WRITE round trips per second beside
// redis-benchmark GET+SET against a redis-server it starts on a free
// loopback port (and a unix socket, which is what both are compared on).
// It is opt-in: PHPSESSD_BENCH=1 go test -run CompareRedis -v ./server/
// (PHPSESSD_BENCH_CLIENTS, PHPSESSD_BENCH_SECONDS tune it;
// PHPSESSD_BENCH_STORE=default or a store URL replaces the memory store).
func TestCompareRedis(t *testing.T) {
	if os.Getenv("PHPSESSD_BENCH") != "1" {
		t.Skip("set PHPSESSD_BENCH=1 to run the comparison with redis-benchmark")
	}
	redisServer, err1 := exec.LookPath("redis-server")
	redisBenchBin, err2 := exec.LookPath("redis-benchmark")
	if err1 != nil || err2 != nil {
		t.Skip("redis-server or redis-benchmark not installed")
	}
	clients := envInt("PHPSESSD_BENCH_CLIENTS", 50)
	secs := envInt("PHPSESSD_BENCH_SECONDS", 5)

	storeDesc := "memory store"
	var mod func(*Config, *engine.Config)
	if u := os.Getenv("PHPSESSD_BENCH_STORE"); u != "" {
		// "default" is what `phpsessd serve` runs without flags: a files
		// store behind the LRU read cache.
		var st handlers.Store
		var err error
		if u == "default" {
			u = "files://" + filepath.ToSlash(t.TempDir())
			if st, err = handlers.Open(context.Background(), u); err == nil {
				st, err = cache.New(st, 10000)
			}
			storeDesc = u + " + LRU read cache"
		} else {
			st, err = handlers.Open(context.Background(), u)
			storeDesc = u
		}
		if err != nil {
			t.Fatal(err)
		}
		mod = func(_ *Config, e *engine.Config) { e.Store = st }
	}
	env := startServer(t, mod)
	ops, err := loadReadWrite(t, env.unix, clients, time.Duration(secs)*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ours := float64(ops) / float64(secs)

	dir := shortTempDir(t)
	rsock := filepath.Join(dir, "redis.sock")
	port := freePort(t)
	srv := exec.Command(redisServer, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--unixsocket", rsock, "--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--dir", dir)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("unix", rsock); err == nil {
			c.Close()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Size the runs to last about as long as ours did.
	n := int(ours * float64(secs) / 2)
	if n < 10000 {
		n = 10000
	}
	get := redisBench(t, redisBenchBin, rsock, clients, n, "-t", "get,set")
	theirs := (get["GET"] + get["SET"]) / 2

	// The same C client against phpsessd: apples to apples, with no Go
	// load generator sharing the CPUs. Each connection issues READs, then
	// WRITEs, on random session ids (WRITE without a READ on the
	// connection: the daemon-wide base cache or an empty base).
	sameRead := redisBench(t, redisBenchBin, env.sock, clients, n, "READ", "bench__rand_int__", "FORMAT", "php")
	sameWrite := redisBench(t, redisBenchBin, env.sock, clients, n, "WRITE", "bench__rand_int__", "n|i:1;", "FORMAT", "php")
	same := (sameRead["READ"] + sameWrite["WRITE"]) / 2

	t.Logf("clients=%d, unix socket, %d CPUs shared by server and load generator", clients, runtime.NumCPU())
	t.Logf("phpsessd READ+WRITE, Go client : %10.0f round trips/s (%s, changed data every WRITE)", ours, storeDesc)
	t.Logf("phpsessd READ/WRITE, redis-benchmark: %10.0f round trips/s (READ %.0f, WRITE %.0f)", same, sameRead["READ"], sameWrite["WRITE"])
	t.Logf("redis    GET/SET,  redis-benchmark: %10.0f requests/s    (GET %.0f, SET %.0f)", theirs, get["GET"], get["SET"])
	t.Logf("ratio phpsessd/redis: %.2f (Go client), %.2f (same client)", ours/theirs, same/theirs)
}

// redisBench runs redis-benchmark against a unix socket and returns
// requests per second by test name (the command name for custom commands).
func redisBench(t *testing.T, bin, sock string, clients, n int, args ...string) map[string]float64 {
	t.Helper()
	full := append([]string{"-s", sock, "-c", strconv.Itoa(clients), "-n", strconv.Itoa(n), "-r", "100000", "--csv"}, args...)
	out, err := exec.Command(bin, full...).Output()
	if err != nil {
		t.Fatalf("redis-benchmark %v: %v", args, err)
	}
	rows, err := csv.NewReader(strings.NewReader(string(out))).ReadAll()
	if err != nil {
		t.Fatalf("redis-benchmark csv: %v\n%s", err, out)
	}
	res := map[string]float64{}
	for _, r := range rows {
		if len(r) < 2 || r[0] == "test" {
			continue
		}
		if v, err := strconv.ParseFloat(r[1], 64); err == nil {
			name, _, _ := strings.Cut(r[0], " ")
			res[name] = v
		}
	}
	if len(res) == 0 {
		t.Fatalf("redis-benchmark output not understood:\n%s", out)
	}
	return res
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
