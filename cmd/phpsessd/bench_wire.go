package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/phpsessd/phpsessd/internal/fpmtest"
	"github.com/phpsessd/phpsessd/protocol"
)

func init() {
	register("bench-wire", command{
		Summary: "READ+WRITE round trips/s of the daemon (memory store, unix socket) next to Redis GET+SET, same client, same run",
		Run:     interruptible(benchWireMain),
	})
}

type benchWireOptions struct {
	loadFlags
	jsonOut        bool
	redisServer    string
	redisBenchmark string
	daemonBin      string
	daemonProcs    int
}

// benchWireReport is the --json output and the source of the text table.
type benchWireReport struct {
	CPUs    int `json:"cpus"`
	Clients int `json:"clients"`
	// DaemonProcs is the GOMAXPROCS the daemon ran with; 0: Go's default
	// (every CPU).
	DaemonProcs int             `json:"daemon_procs,omitempty"`
	DurationSec float64         `json:"duration_per_row_s"`
	Rounds      int             `json:"rounds"`
	Rows        []benchWireRow  `json:"rows"`
	CRows       []benchWireCRow `json:"redis_benchmark_rows,omitempty"`
	// VsRedis is READ+WRITE pairs/s over Redis GET+SET pairs/s, both
	// driven by the same Go client: the figure the target is about.
	VsRedis float64  `json:"read_write_vs_redis"`
	Notes   []string `json:"notes,omitempty"`
	Elapsed float64  `json:"elapsed_s"`

	daemonLog func() string `json:"-"`
}

// benchWireRow is one load driven by the Go client: a pair is two round
// trips, as a PHP request makes (READ at session_start, WRITE at its end).
type benchWireRow struct {
	Name    string  `json:"name"`
	Server  string  `json:"server"`
	Pairs   int64   `json:"pairs"`
	Seconds float64 `json:"seconds"`
	PairsPS float64 `json:"pairs_per_s"`
	VsRedis float64 `json:"vs_redis"`
	// CPUMicros is the server process's CPU time (user+system) per pair,
	// read from /proc; 0 where that is not available. It tells how much
	// of the machine a pair costs, independent of who else is busy.
	CPUMicros float64 `json:"server_cpu_us_per_pair"`
	// ClientCPUMicros is the same for the load generator (this process):
	// the share of the machine the client takes from the server.
	ClientCPUMicros float64 `json:"client_cpu_us_per_pair"`
	cpuTicks        int64
	clientTicks     int64
}

// benchWireCRow is one redis-benchmark test: the C client Redis ships,
// sending one command again and again (no READ before the WRITE, so the
// WRITEs merge against an empty base).
type benchWireCRow struct {
	Name       string  `json:"name"`
	Server     string  `json:"server"`
	RequestsPS float64 `json:"requests_per_s"`
	VsRedis    float64 `json:"vs_redis_get_set"`
}

func benchWireMain(ctx context.Context, env *cmdEnv, args []string) int {
	var o benchWireOptions
	fs := newFlagSet(env, "bench-wire", "[flags]")
	fs.IntVar(&o.clients, "clients", 50, "concurrent connections, each with its own session (or key)")
	fs.DurationVar(&o.duration, "duration", 9*time.Second, "time each row gets")
	fs.Int64Var(&o.requests, "requests", 10000000, "upper bound on the pairs of each row over all rounds")
	fs.IntVar(&o.rounds, "rounds", 9, "interleaved slices each row gets (a shared machine drifts; interleaving spreads the drift over every row)")
	fs.BoolVar(&o.jsonOut, "json", false, "print the report as JSON")
	fs.StringVar(&o.redisServer, "redis-server", "", `redis-server binary ("" finds it on $PATH)`)
	fs.StringVar(&o.redisBenchmark, "redis-benchmark", "", `redis-benchmark binary ("" finds it on $PATH, "none" skips its rows)`)
	fs.StringVar(&o.daemonBin, "daemon-bin", "", "phpsessd binary to run as the daemon (default: this executable)")
	fs.IntVar(&o.daemonProcs, "daemon-procs", 0, "GOMAXPROCS for the daemon alone, as Redis runs on one thread (0: every CPU)")
	if code := parseFlags(env, fs, args); code >= 0 {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(env, "bench-wire", "unexpected argument %q", fs.Arg(0))
	}
	if code := o.check(env, "bench-wire"); code >= 0 {
		return code
	}
	if o.daemonProcs < 0 {
		return usageError(env, "bench-wire", "--daemon-procs must be 0 or more, got %d", o.daemonProcs)
	}
	rep, err := benchWire(ctx, o)
	if err != nil {
		fmt.Fprintf(env.Stderr, "phpsessd bench-wire: %v\n", err)
		if rep != nil && rep.daemonLog != nil && ctx.Err() == nil {
			if s := rep.daemonLog(); s != "" {
				fmt.Fprintf(env.Stderr, "--- daemon log\n%s\n", lastLines(s, 20))
			}
		}
		return exitFail
	}
	return printReport(env, "bench-wire", o.jsonOut, rep, func(w io.Writer) { printBenchWire(w, rep) })
}

func benchWire(ctx context.Context, o benchWireOptions) (*benchWireReport, error) {
	began := time.Now()
	rep := &benchWireReport{CPUs: runtime.NumCPU(), Clients: o.clients, DurationSec: o.duration.Seconds(), Rounds: o.rounds, DaemonProcs: o.daemonProcs}
	defer func() { rep.Elapsed = time.Since(began).Seconds() }()

	bin, dir, err := benchWorkspace(o.daemonBin, "psd-bw-")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(dir)

	// Both servers answer on a unix socket in the same directory, so the
	// transport is the same for both; Redis also needs its loopback port
	// for the readiness probe.
	rsock := filepath.Join(dir, "redis.sock")
	redis := &fpmtest.Redis{Bin: o.redisServer, Dir: dir, Args: []string{"--unixsocket", rsock, "--unixsocketperm", "700"}}
	if err := redis.Start(); err != nil {
		return rep, fmt.Errorf("redis-server: %w", err)
	}
	defer redis.Stop()
	dcfg := fpmtest.DaemonConfig{Bin: bin, Dir: dir, Store: "memory://"}
	if o.daemonProcs > 0 {
		dcfg.Env = []string{"GOMAXPROCS=" + strconv.Itoa(o.daemonProcs)}
	}
	daemon, err := fpmtest.StartDaemon(dcfg)
	if err != nil {
		return rep, fmt.Errorf("daemon: %w", err)
	}
	defer daemon.Stop()
	rep.daemonLog = daemon.Logs

	redisAddr := "unix://" + rsock
	redisPID := redis.PID()
	rows := []struct {
		row  benchWireRow
		addr string
		pid  int
		pair pairFunc
	}{
		{benchWireRow{Name: "GET+SET", Server: "redis"}, redisAddr, redisPID, getSetPair},
		{benchWireRow{Name: "PING+PING", Server: "phpsessd"}, daemon.Address(), daemon.PID(), pingPair},
		{benchWireRow{Name: "READ+WRITE", Server: "phpsessd"}, daemon.Address(), daemon.PID(), readWritePair},
	}
	slice := o.duration / time.Duration(o.rounds)
	perSlice := (o.requests + int64(o.rounds) - 1) / int64(o.rounds)
	for round := 0; round < o.rounds; round++ {
		for i := range rows {
			r := &rows[i]
			limit := min(perSlice, o.requests-r.row.Pairs)
			if limit <= 0 {
				continue
			}
			before, cbefore := procCPUTicks(r.pid), procCPUTicks(os.Getpid())
			pairs, secs, err := runPairs(ctx, []string{r.addr}, o.clients, slice, limit, "benchwire", r.pair)
			if err != nil {
				return rep, fmt.Errorf("%s %s: %w", r.row.Server, r.row.Name, err)
			}
			after, cafter := procCPUTicks(r.pid), procCPUTicks(os.Getpid())
			if cbefore >= 0 && cafter >= cbefore {
				r.row.clientTicks += cafter - cbefore
			}
			r.row.Pairs += pairs
			r.row.Seconds += secs
			if before >= 0 && after >= before {
				r.row.cpuTicks += after - before
			} else {
				r.row.cpuTicks = -1 << 62
			}
		}
	}
	for i := range rows {
		r := &rows[i].row
		// Every ratio stays finite: NaN or Inf would make --json fail.
		if r.Pairs == 0 || r.Seconds <= 0 {
			return rep, fmt.Errorf("%s %s: no pair completed in %v; raise --duration", r.Server, r.Name, o.duration)
		}
		r.PairsPS = float64(r.Pairs) / r.Seconds
		r.VsRedis = r.PairsPS / rows[0].row.PairsPS
		if r.cpuTicks > 0 {
			r.CPUMicros = float64(r.cpuTicks) * 1e6 / clockTicks / float64(r.Pairs)
		}
		if r.clientTicks > 0 {
			r.ClientCPUMicros = float64(r.clientTicks) * 1e6 / clockTicks / float64(r.Pairs)
		}
		rep.Rows = append(rep.Rows, *r)
	}
	rep.VsRedis = rep.Rows[2].VsRedis

	if err := benchWireC(ctx, o, rep, redisAddr, daemon.Address()); err != nil {
		return rep, err
	}
	rep.Notes = append(rep.Notes,
		fmt.Sprintf("one machine, %d CPUs shared by redis-server, the daemon and the load generator", rep.CPUs),
		"Go client rows: the same client for both servers, unix sockets, one session (key) per connection; every WRITE (SET) stores new bytes",
		"PING+PING is the daemon's transport alone: what any reply costs before the session engine does anything",
		"the daemon runs the memory store; Redis runs without persistence")
	return rep, nil
}

// benchWireC adds redis-benchmark's view: GET and SET on Redis, READ and
// WRITE on the daemon, each test sized to last about one row slice.
func benchWireC(ctx context.Context, o benchWireOptions, rep *benchWireReport, redisAddr, daemonAddr string) error {
	bin := o.redisBenchmark
	if bin == "none" {
		return nil
	}
	if bin == "" {
		p, err := exec.LookPath("redis-benchmark")
		if err != nil {
			rep.Notes = append(rep.Notes, "redis-benchmark not installed: no C client rows")
			return nil
		}
		bin = p
	}
	// Sized from the Go client's rate so each test lasts about one slice.
	n := int64(rep.Rows[0].PairsPS * 2 * (o.duration / time.Duration(o.rounds)).Seconds())
	n = max(1000, min(n, o.requests))
	gs, err := redisBenchmark(ctx, bin, redisAddr, o.clients, n, "-t", "get,set")
	if err != nil {
		return err
	}
	rd, err := redisBenchmark(ctx, bin, daemonAddr, o.clients, n, "READ", "benchwire__rand_int__", "FORMAT", "php")
	if err != nil {
		return err
	}
	wr, err := redisBenchmark(ctx, bin, daemonAddr, o.clients, n, "WRITE", "benchwire__rand_int__", "n|i:1;", "FORMAT", "php")
	if err != nil {
		return err
	}
	if gs["GET"] <= 0 || gs["SET"] <= 0 || rd["READ"] <= 0 || wr["WRITE"] <= 0 {
		return fmt.Errorf("redis-benchmark reported no rate: GET/SET %v, READ %v, WRITE %v", gs, rd, wr)
	}
	// The mean of two rates, as pairs: n requests of each over their
	// summed times.
	both := func(a, b float64) float64 { return 2 / (1/a + 1/b) }
	redisRate := both(gs["GET"], gs["SET"])
	rep.CRows = []benchWireCRow{
		{Name: "GET", Server: "redis", RequestsPS: gs["GET"], VsRedis: gs["GET"] / redisRate},
		{Name: "SET", Server: "redis", RequestsPS: gs["SET"], VsRedis: gs["SET"] / redisRate},
		{Name: "READ", Server: "phpsessd", RequestsPS: rd["READ"], VsRedis: rd["READ"] / redisRate},
		{Name: "WRITE", Server: "phpsessd", RequestsPS: wr["WRITE"], VsRedis: wr["WRITE"] / redisRate},
		{Name: "READ/WRITE", Server: "phpsessd", RequestsPS: both(rd["READ"], wr["WRITE"]), VsRedis: both(rd["READ"], wr["WRITE"]) / redisRate},
	}
	return nil
}

func getSetPair(ctx context.Context, c *protocol.Client, id string, k int64) error {
	if _, err := c.Do(ctx, "GET", id); err != nil {
		return fmt.Errorf("GET: %w", err)
	}
	if _, err := c.Do(ctx, "SET", id, "n|i:"+strconv.FormatInt(k, 10)+";"); err != nil {
		return fmt.Errorf("SET: %w", err)
	}
	return nil
}

func pingPair(ctx context.Context, c *protocol.Client, _ string, _ int64) error {
	for i := 0; i < 2; i++ {
		if _, err := c.Do(ctx, "PING"); err != nil {
			return fmt.Errorf("PING: %w", err)
		}
	}
	return nil
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// procCPUTicks returns a process's user+system CPU time in clock ticks,
// or -1 where /proc does not tell.
func procCPUTicks(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	// The command name in parentheses may hold spaces; fields count from
	// after its closing parenthesis, where field 3 (state) starts.
	s := string(b)
	end := strings.LastIndexByte(s, ')')
	if end < 0 {
		return -1
	}
	f := strings.Fields(s[end+1:])
	// utime and stime are fields 14 and 15 of the whole line.
	if len(f) < 13 {
		return -1
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return -1
	}
	return u + st
}

func printBenchWire(w io.Writer, rep *benchWireReport) {
	procs := ""
	if rep.DaemonProcs > 0 {
		procs = fmt.Sprintf(", daemon on GOMAXPROCS=%d", rep.DaemonProcs)
	}
	fmt.Fprintf(w, "round trips on a unix socket: %d clients, %v per row in %d interleaved rounds, %d CPUs%s\n\n",
		rep.Clients, time.Duration(rep.DurationSec*float64(time.Second)), rep.Rounds, rep.CPUs, procs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "Go client\tpairs/s\t× redis\tserver CPU µs/pair\tclient CPU µs/pair\t")
	for _, r := range rep.Rows {
		fmt.Fprintf(tw, "%s %s\t%.0f\t%.2f\t%s\t%s\t\n", r.Server, r.Name, r.PairsPS, r.VsRedis, micros(r.CPUMicros), micros(r.ClientCPUMicros))
	}
	_ = tw.Flush()
	if len(rep.CRows) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "redis-benchmark\trequests/s\t× redis GET/SET\t")
		for _, r := range rep.CRows {
			fmt.Fprintf(tw, "%s %s\t%.0f\t%.2f\t\n", r.Server, r.Name, r.RequestsPS, r.VsRedis)
		}
		_ = tw.Flush()
	}
	fmt.Fprintf(w, "\ntarget: READ+WRITE >= 1.00 x Redis GET+SET (same client): %.2f x, %s\n", rep.VsRedis, metOrMissed(rep.VsRedis >= 1))
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "\nnote: %s", n)
	}
	fmt.Fprintf(w, "\n\nelapsed %.1fs\n", rep.Elapsed)
}

// micros prints a CPU time per pair, or "-" where it was not measured.
func micros(v float64) string {
	if v <= 0 {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

func metOrMissed(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}
