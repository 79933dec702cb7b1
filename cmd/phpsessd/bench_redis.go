package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/phpsessd/phpsessd/internal/fpmtest"
	"github.com/phpsessd/phpsessd/protocol"
)

func init() {
	register("bench-redis", command{
		Summary: "READ+WRITE pairs/s of phpsessd on Redis next to redis-benchmark GET+SET, and 1/2/4 daemons sharing one Redis",
		Run:     interruptible(benchRedisMain),
	})
}

type benchRedisOptions struct {
	loadFlags
	daemons        []int
	jsonOut        bool
	redisServer    string
	redisBenchmark string
	daemonBin      string
}

// benchRedisReport is the --json output and the source of the text tables.
type benchRedisReport struct {
	CPUs        int               `json:"cpus"`
	Clients     int               `json:"clients"`
	DurationSec float64           `json:"duration_per_row_s"`
	Rounds      int               `json:"rounds"`
	Requests    int64             `json:"max_pairs_per_row"`
	Redis       string            `json:"redis"`
	Baseline    benchRedisBase    `json:"baseline"`
	Daemons     []benchRedisRow   `json:"daemons"`
	VsRedis     float64           `json:"phpsessd_vs_redis"`
	Notes       []string          `json:"notes,omitempty"`
	Elapsed     float64           `json:"elapsed_s"`
	daemonLogs  []func() string   `json:"-"`
	redisLog    func() string     `json:"-"`
	opts        benchRedisOptions `json:"-"`
}

// benchRedisBase is Redis alone. A pair is one GET plus one SET, the two
// round trips a READ plus a WRITE cost through phpsessd.
type benchRedisBase struct {
	Tool     string  `json:"tool"`
	GetRPS   float64 `json:"get_rps"`
	SetRPS   float64 `json:"set_rps"`
	PairsPS  float64 `json:"pairs_per_s"`
	Requests int64   `json:"requests"`
}

type benchRedisRow struct {
	Daemons int     `json:"daemons"`
	Pairs   int64   `json:"pairs"`
	Seconds float64 `json:"seconds"`
	PairsPS float64 `json:"pairs_per_s"`
	VsOne   float64 `json:"ratio_to_1_daemon"`
	VsRedis float64 `json:"ratio_to_redis"`
	// RedisCmds is Redis commands per pair (INFO total_commands_processed
	// over the row, warm-up included, commands inside Lua scripts counted
	// too): what one PHP request costs Redis, against 2 for GET+SET.
	RedisCmds float64 `json:"redis_commands_per_pair"`
}

func benchRedisMain(ctx context.Context, env *cmdEnv, args []string) int {
	var o benchRedisOptions
	fs := newFlagSet(env, "bench-redis", "[flags]")
	fs.IntVar(&o.clients, "clients", 32, "concurrent connections, each with its own session (spread over the daemons)")
	fs.DurationVar(&o.duration, "duration", 3*time.Second, "time each row gets")
	fs.Int64Var(&o.requests, "requests", 1000000, "upper bound on READ+WRITE pairs of each row, and on GET+SET pairs of the redis baseline, over all rounds")
	fs.IntVar(&o.rounds, "rounds", 3, "interleaved slices each row and the redis baseline get (a shared machine drifts; interleaving spreads the drift over every row)")
	daemons := fs.String("daemons", "1,2,4", "comma-separated daemon counts for the scale rows (1..16 each)")
	fs.BoolVar(&o.jsonOut, "json", false, "print the report as JSON")
	fs.StringVar(&o.redisServer, "redis-server", "", `redis-server binary ("" finds it on $PATH)`)
	fs.StringVar(&o.redisBenchmark, "redis-benchmark", "", `redis-benchmark binary ("" finds it on $PATH, "none" uses a Go GET+SET loop)`)
	fs.StringVar(&o.daemonBin, "daemon-bin", "", "phpsessd binary to run as the daemons (default: this executable)")
	if code := parseFlags(env, fs, args); code >= 0 {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(env, "bench-redis", "unexpected argument %q", fs.Arg(0))
	}
	if code := o.check(env, "bench-redis"); code >= 0 {
		return code
	}
	var err error
	if o.daemons, err = parseDaemonCounts(*daemons); err != nil {
		return usageError(env, "bench-redis", "--daemons: %v", err)
	}

	rep, err := benchRedis(ctx, o)
	if err != nil {
		fmt.Fprintf(env.Stderr, "phpsessd bench-redis: %v\n", err)
		// The logs explain a failure, not a ctrl-C.
		if rep != nil && ctx.Err() == nil {
			for i, l := range rep.daemonLogs {
				if s := l(); s != "" {
					fmt.Fprintf(env.Stderr, "--- daemon %d log\n%s\n", i+1, lastLines(s, 20))
				}
			}
			if rep.redisLog != nil {
				if s := rep.redisLog(); s != "" {
					fmt.Fprintf(env.Stderr, "--- redis-server log\n%s\n", lastLines(s, 20))
				}
			}
		}
		return exitFail
	}
	return printReport(env, "bench-redis", o.jsonOut, rep, func(w io.Writer) { printBenchRedis(w, rep) })
}

// parseDaemonCounts reads "1,2,4" into sorted, distinct counts, so the
// daemons started for one row are reused by the next.
func parseDaemonCounts(s string) ([]int, error) {
	seen := map[int]bool{}
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 16 {
			return nil, fmt.Errorf("%q is not a daemon count in 1..16", f)
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no daemon counts")
	}
	sort.Ints(out)
	return out, nil
}

func benchRedis(ctx context.Context, o benchRedisOptions) (*benchRedisReport, error) {
	began := time.Now()
	rep := &benchRedisReport{CPUs: runtime.NumCPU(), Clients: o.clients, DurationSec: o.duration.Seconds(), Rounds: o.rounds, Requests: o.requests, opts: o}
	defer func() { rep.Elapsed = time.Since(began).Seconds() }()

	bin, dir, err := benchWorkspace(o.daemonBin, "psd-br-")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(dir)

	rDir := filepath.Join(dir, "redis")
	if err := os.Mkdir(rDir, 0o700); err != nil {
		return rep, fmt.Errorf("temp dir: %w", err)
	}
	redis, err := fpmtest.StartRedis(o.redisServer, rDir)
	if err != nil {
		return rep, err
	}
	defer redis.Stop()
	rep.Redis = redis.Addr
	rdb := goredis.NewClient(&goredis.Options{Addr: redis.Addr, PoolSize: 1})
	defer rdb.Close()

	// Every daemon is started up front (the rounds interleave the rows)
	// and all are stopped on return, whatever the reason; a daemon left
	// idle by a smaller row costs nothing measurable.
	var running []*fpmtest.Daemon
	defer func() {
		for _, d := range running {
			_ = d.Stop()
		}
	}()
	store := "redis://" + redis.Addr + "/0"
	for len(running) < o.daemons[len(o.daemons)-1] {
		if err := ctx.Err(); err != nil {
			return rep, fmt.Errorf("interrupted: %w", err)
		}
		dDir := filepath.Join(dir, "d"+strconv.Itoa(len(running)+1))
		if err := os.Mkdir(dDir, 0o700); err != nil {
			return rep, fmt.Errorf("temp dir: %w", err)
		}
		d, err := fpmtest.StartDaemon(fpmtest.DaemonConfig{Bin: bin, Dir: dDir, Store: store})
		if err != nil {
			return rep, fmt.Errorf("daemon %d: %w", len(running)+1, err)
		}
		running = append(running, d)
		rep.daemonLogs = append(rep.daemonLogs, d.Logs)
	}

	base, err := newRedisBaseline(ctx, o, redis.Addr)
	if err != nil {
		return rep, fmt.Errorf("redis baseline: %w", err)
	}
	rows := make([]benchRedisRow, len(o.daemons))
	cmds := make([]int64, len(o.daemons))
	warm := make([]int64, len(o.daemons))
	slice := o.duration / time.Duration(o.rounds)
	perSlice := (o.requests + int64(o.rounds) - 1) / int64(o.rounds)
	for round := 0; round < o.rounds; round++ {
		for i, n := range o.daemons {
			rows[i].Daemons = n
			limit := min(perSlice, o.requests-rows[i].Pairs)
			if limit <= 0 {
				continue
			}
			addrs := make([]string, n)
			for k := range addrs {
				addrs[k] = running[k].Address()
			}
			before, err := redisCommands(ctx, rdb)
			if err != nil {
				return rep, err
			}
			pairs, secs, err := loadPairs(ctx, addrs, o.clients, slice, limit)
			if err != nil {
				return rep, fmt.Errorf("%d daemons: %w", n, err)
			}
			after, err := redisCommands(ctx, rdb)
			if err != nil {
				return rep, err
			}
			rows[i].Pairs += pairs
			rows[i].Seconds += secs
			// The warm-up pair of each client counts too; the two INFO
			// calls are noise at any useful slice length.
			cmds[i] += after - before
			warm[i] += int64(o.clients)
		}
		if err := base.run(ctx, slice, perSlice); err != nil {
			return rep, fmt.Errorf("redis baseline: %w", err)
		}
	}
	for i := range rows {
		// Every ratio below stays finite: NaN or Inf would make --json fail.
		if rows[i].Pairs == 0 || rows[i].Seconds <= 0 {
			return rep, fmt.Errorf("%d daemons: no READ+WRITE pair completed in %v; raise --duration", rows[i].Daemons, o.duration)
		}
		rows[i].RedisCmds = float64(cmds[i]) / float64(rows[i].Pairs+warm[i])
		rows[i].PairsPS = float64(rows[i].Pairs) / rows[i].Seconds
	}
	rep.Daemons = rows
	rep.Baseline = base.result()
	b := rep.Baseline
	first := rep.Daemons[0].PairsPS
	for i := range rep.Daemons {
		r := &rep.Daemons[i]
		r.VsOne = r.PairsPS / first
		if b.PairsPS > 0 {
			r.VsRedis = r.PairsPS / b.PairsPS
		}
	}
	if rep.Daemons[0].Daemons == 1 && b.PairsPS > 0 {
		rep.VsRedis = first / b.PairsPS
	}
	rep.Notes = append(rep.Notes,
		fmt.Sprintf("one machine, %d CPUs shared by redis-server, the daemons and the load generator: the scale rows show contention, not what separate hosts would give", rep.CPUs),
		"phpsessd rows: Go clients on unix sockets, one session per client, every WRITE changes the data; daemons reach Redis over loopback TCP; redis cmds/pair counts commands run inside Lua scripts too",
		"redis row: a pair is one GET plus one SET of small values over loopback TCP, "+b.Tool+" with the same client count; pairs/s = 1 / (1/GET + 1/SET)")
	return rep, nil
}

// redisCommands reads how many commands the server has processed so far.
func redisCommands(ctx context.Context, rdb *goredis.Client) (int64, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := rdb.Info(cctx, "stats").Result()
	if err != nil {
		return 0, fmt.Errorf("redis INFO stats: %w", err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_commands_processed:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("redis INFO stats: total_commands_processed %q: %w", v, err)
			}
			return n, nil
		}
	}
	return 0, errors.New("redis INFO stats: no total_commands_processed")
}

// loadPairs runs clients connections, spread round-robin over addrs, each
// doing READ then WRITE of its own session until d passes or max pairs are
// done in total. It returns the pairs done and the seconds they took.
func loadPairs(ctx context.Context, addrs []string, clients int, d time.Duration, maxPairs int64) (int64, float64, error) {
	return runPairs(ctx, addrs, clients, d, maxPairs, "benchredis", readWritePair)
}

// pairFunc is one unit of load on a connection: the round trips a PHP
// request makes, or their counterpart on the server compared with. k
// counts the pairs of the connection, -1 for the untimed warm-up.
type pairFunc func(ctx context.Context, c *protocol.Client, id string, k int64) error

func readWritePair(ctx context.Context, c *protocol.Client, id string, k int64) error {
	_, err := readWrite(ctx, c, id, k)
	return err
}

// runPairs runs clients connections, spread round-robin over addrs, each
// doing pair on its own session id (prefix plus the client number) until d
// passes or max pairs are done in total. It returns the pairs done and the
// seconds they took.
func runPairs(ctx context.Context, addrs []string, clients int, d time.Duration, maxPairs int64, prefix string, pair pairFunc) (int64, float64, error) {
	conns := make([]*protocol.Client, 0, clients)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for i := 0; i < clients; i++ {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		c, err := protocol.Dial(dctx, addrs[i%len(addrs)])
		cancel()
		if err != nil {
			return 0, 0, fmt.Errorf("connect client %d to %s: %w", i+1, addrs[i%len(addrs)], err)
		}
		conns = append(conns, c)
	}
	ids := make([]string, clients)
	// One untimed pair per client first: it creates the session and warms
	// the daemon's Redis connection pool, which the timed part should not
	// pay for.
	for i, c := range conns {
		ids[i] = fmt.Sprintf("%s%0*d", prefix, 32-len(prefix), i)
		if err := pair(ctx, c, ids[i], -1); err != nil {
			return 0, 0, fmt.Errorf("client %d warm-up: %w", i+1, err)
		}
	}

	// The round trips themselves run without a context deadline: a
	// cancellable context costs a timer per call, which the C client of
	// the baseline does not pay. Ctrl-C instead closes the connections.
	lctx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		<-lctx.Done()
		if ctx.Err() != nil {
			for _, c := range conns {
				_ = c.Close()
			}
		}
	}()
	defer func() { stopLoad(); <-watchDone }()

	var (
		total    atomic.Int64
		firstErr error
		once     sync.Once
		wg       sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for i, c := range conns {
		wg.Add(1)
		go func(i int, c *protocol.Client) {
			defer wg.Done()
			for k := int64(0); ; k++ {
				if time.Now().After(deadline) || lctx.Err() != nil {
					return
				}
				if total.Add(1) > maxPairs {
					total.Add(-1)
					return
				}
				if err := pair(context.Background(), c, ids[i], k); err != nil {
					total.Add(-1)
					once.Do(func() { firstErr = fmt.Errorf("client %d: %w", i+1, err) })
					stopLoad()
					return
				}
			}
		}(i, c)
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	if err := ctx.Err(); err != nil {
		return total.Load(), secs, fmt.Errorf("interrupted: %w", err)
	}
	if firstErr != nil {
		return total.Load(), secs, firstErr
	}
	return total.Load(), secs, nil
}

// readWrite is one READ+WRITE of a PHP request; k makes every WRITE store
// new bytes so no write is skipped as unchanged.
func readWrite(ctx context.Context, c *protocol.Client, id string, k int64) (int64, error) {
	rep, err := c.Do(ctx, "READ", id, "FORMAT", "php")
	if err != nil {
		return 0, fmt.Errorf("READ: %w", err)
	}
	if len(rep.Array) < 2 {
		return 0, fmt.Errorf("READ: unexpected reply %s", rep.String())
	}
	base := rep.Array[1].Int
	if _, err := c.Do(ctx, "WRITE", id, "n|i:"+strconv.FormatInt(k, 10)+";", "BASE", base, "FORMAT", "php"); err != nil {
		return 0, fmt.Errorf("WRITE: %w", err)
	}
	return base, nil
}

// redisBaseline measures GET+SET on the same Redis, in slices between the
// phpsessd rows, with redis-benchmark or, when that is not installed, a Go
// loop. Rates are summed as requests over time across the slices.
type redisBaseline struct {
	addr    string
	clients int
	bin     string  // "" for the Go loop
	rate    float64 // probed requests/s, sizes redis-benchmark's counts
	gets    int64
	sets    int64
	getSecs float64
	setSecs float64
}

func newRedisBaseline(ctx context.Context, o benchRedisOptions, addr string) (*redisBaseline, error) {
	b := &redisBaseline{addr: addr, clients: o.clients, bin: o.redisBenchmark}
	if b.bin == "" {
		if p, err := exec.LookPath("redis-benchmark"); err == nil {
			b.bin = p
		}
	}
	if b.bin == "none" {
		b.bin = ""
	}
	if b.bin == "" {
		return b, nil
	}
	// redis-benchmark takes a request count, not a time: a short probe
	// gives the rate the slices are sized by.
	get, set, err := runRedisBenchmark(ctx, b.bin, addr, o.clients, min(o.requests, 5000))
	if err != nil {
		return nil, err
	}
	b.rate = (get + set) / 2
	return b, nil
}

func (b *redisBaseline) run(ctx context.Context, d time.Duration, maxPairs int64) error {
	if b.bin == "" {
		pairs, secs, err := goRedisPairs(ctx, b.addr, b.clients, d, maxPairs)
		if err != nil {
			return err
		}
		b.gets, b.sets = b.gets+pairs, b.sets+pairs
		b.getSecs, b.setSecs = b.getSecs+secs/2, b.setSecs+secs/2
		return nil
	}
	n := max(1000, min(maxPairs, int64(d.Seconds()*b.rate)))
	get, set, err := runRedisBenchmark(ctx, b.bin, b.addr, b.clients, n)
	if err != nil {
		return err
	}
	b.gets, b.sets = b.gets+n, b.sets+n
	b.getSecs, b.setSecs = b.getSecs+float64(n)/get, b.setSecs+float64(n)/set
	return nil
}

func (b *redisBaseline) result() benchRedisBase {
	r := benchRedisBase{Tool: "redis-benchmark", Requests: b.gets + b.sets}
	if b.bin == "" {
		r.Tool = "go-redis GET+SET loop"
	}
	if b.getSecs > 0 && b.setSecs > 0 {
		r.GetRPS, r.SetRPS = float64(b.gets)/b.getSecs, float64(b.sets)/b.setSecs
		r.PairsPS = float64(b.gets) / (b.getSecs + b.setSecs)
	}
	return r
}

// runRedisBenchmark runs `redis-benchmark -t get,set` with n requests of
// each and returns their rates.
func runRedisBenchmark(ctx context.Context, bin, addr string, clients int, n int64) (get, set float64, err error) {
	rps, err := redisBenchmark(ctx, bin, addr, clients, n, "-t", "get,set")
	if err != nil {
		return 0, 0, err
	}
	get, set = rps["GET"], rps["SET"]
	if get <= 0 || set <= 0 {
		return 0, 0, fmt.Errorf("redis-benchmark reported no GET or SET rate: %v", rps)
	}
	return get, set, nil
}

// redisBenchmark runs redis-benchmark with n requests per test against
// addr (host:port, or unix:///path) and returns requests/s by test name;
// args choose the tests (-t get,set) or give one command of any server
// that speaks RESP.
func redisBenchmark(ctx context.Context, bin, addr string, clients int, n int64, args ...string) (map[string]float64, error) {
	var target []string
	if path, ok := strings.CutPrefix(addr, "unix://"); ok {
		target = []string{"-s", path}
	} else {
		host, port, ok := strings.Cut(addr, ":")
		if !ok {
			return nil, fmt.Errorf("redis address %q has no port", addr)
		}
		target = []string{"-h", host, "-p", port}
	}
	// Killed with its process group on ctrl-C, or after a bound no sane
	// machine reaches (n at 1000 requests/s, plus slack).
	rctx, cancel := context.WithTimeout(ctx, time.Duration(n)*time.Millisecond+time.Minute)
	defer cancel()
	full := append(target, "-c", strconv.Itoa(clients), "-n", strconv.FormatInt(n, 10), "-r", "100000", "--csv")
	cmd := exec.CommandContext(rctx, bin, append(full, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("interrupted: %w", ctx.Err())
		}
		return nil, fmt.Errorf("%s: %w: %s", bin, err, strings.TrimSpace(stderr.String()))
	}
	return parseRedisBenchmarkCSV(out)
}

// parseRedisBenchmarkCSV returns requests/s by test name from --csv
// output (both the old two-column and the newer latency-column format).
func parseRedisBenchmarkCSV(out []byte) (map[string]float64, error) {
	r := csv.NewReader(strings.NewReader(string(out)))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("redis-benchmark csv: %w", err)
	}
	res := map[string]float64{}
	for _, row := range rows {
		if len(row) < 2 || row[0] == "test" {
			continue
		}
		if v, err := strconv.ParseFloat(row[1], 64); err == nil {
			name, _, _ := strings.Cut(row[0], " ")
			res[name] = v
		}
	}
	if len(res) == 0 {
		return nil, fmt.Errorf("redis-benchmark output not understood: %q", lastLines(string(out), 5))
	}
	return res, nil
}

// goRedisPairs is the fallback baseline: clients goroutines on one
// go-redis pool, each doing GET then SET of its own key. It returns the
// pairs done and the seconds they took.
func goRedisPairs(ctx context.Context, addr string, clients int, d time.Duration, maxPairs int64) (int64, float64, error) {
	rdb := goredis.NewClient(&goredis.Options{Addr: addr, PoolSize: clients, MinIdleConns: clients})
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return 0, 0, fmt.Errorf("ping %s: %w", addr, err)
	}
	var (
		total    atomic.Int64
		firstErr error
		once     sync.Once
		wg       sync.WaitGroup
	)
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	deadline := start.Add(d)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			key := fmt.Sprintf("benchredis:%d", i)
			for k := 0; time.Now().Before(deadline) && lctx.Err() == nil; k++ {
				if total.Add(1) > maxPairs {
					total.Add(-1)
					return
				}
				err := rdb.Get(lctx, key).Err()
				if errors.Is(err, goredis.Nil) {
					err = nil
				}
				if err == nil {
					err = rdb.Set(lctx, key, strconv.Itoa(k), 0).Err()
				}
				if err != nil {
					total.Add(-1)
					once.Do(func() { firstErr = err; cancel() })
					return
				}
			}
		}(i)
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	if err := ctx.Err(); err != nil {
		return 0, 0, fmt.Errorf("interrupted: %w", err)
	}
	if firstErr != nil {
		return 0, 0, fmt.Errorf("GET+SET loop: %w", firstErr)
	}
	return total.Load(), secs, nil
}

func printBenchRedis(w io.Writer, rep *benchRedisReport) {
	fmt.Fprintf(w, "phpsessd on Redis %s: %d clients, %v per row in %d interleaved rounds, %d CPUs\n\n",
		rep.Redis, rep.Clients, time.Duration(rep.DurationSec*float64(time.Second)), rep.Rounds, rep.CPUs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "what\tpairs/s\tratio to redis\t")
	b := rep.Baseline
	fmt.Fprintf(tw, "redis GET+SET (%s; GET %.0f/s, SET %.0f/s)\t%.0f\t1.00\t\n", b.Tool, b.GetRPS, b.SetRPS, b.PairsPS)
	if len(rep.Daemons) > 0 && rep.Daemons[0].Daemons == 1 {
		fmt.Fprintf(tw, "phpsessd READ+WRITE, 1 daemon\t%.0f\t%.2f\t\n", rep.Daemons[0].PairsPS, rep.VsRedis)
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "daemons\tpairs\tpairs/s\tratio to 1st row\tratio to redis\tredis cmds/pair\t")
	for _, r := range rep.Daemons {
		fmt.Fprintf(tw, "%d\t%d\t%.0f\t%.2f\t%.2f\t%.1f\t\n", r.Daemons, r.Pairs, r.PairsPS, r.VsOne, r.VsRedis, r.RedisCmds)
	}
	_ = tw.Flush()
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "\nnote: %s", n)
	}
	fmt.Fprintf(w, "\n\nelapsed %.1fs\n", rep.Elapsed)
}
