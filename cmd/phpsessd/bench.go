package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/phpsessd/phpsessd/internal/fpmtest"
)

func init() {
	register("bench", command{
		Summary: "compare phpsessd with PHP's files handler and phpredis on a real php-fpm pool",
		Run:     runBench,
	})
}

// benchRounds is how many turns each handler gets in the throughput runs.
const benchRounds = 3

type benchOptions struct {
	phpFPM      string
	address     string
	token       string
	store       string
	redisServer string
	duration    time.Duration
	concurrency int
	shared      int
	requests    int64
	parallel    int
	sleep       time.Duration
	children    int
	jsonOut     bool
	handlers    string
	daemonArgs  []string
}

// benchReport is the --json output and the source of the text tables.
type benchReport struct {
	PHP         string          `json:"php"`
	CPUs        int             `json:"cpus"`
	Children    int             `json:"children"`
	Address     string          `json:"address"`
	Redis       string          `json:"redis,omitempty"`
	Parallel    []parallelRow   `json:"parallel"`
	Throughput  []throughputRow `json:"throughput"`
	Targets     []benchTarget   `json:"targets"`
	Notes       []string        `json:"notes,omitempty"`
	DurationSec float64         `json:"duration_per_run_s"`
	Elapsed     float64         `json:"elapsed_s"`
	daemonLog   func() string   `json:"-"`
	opts        benchOptions    `json:"-"`
}

type parallelRow struct {
	Handler  string  `json:"handler"`
	N        int     `json:"n"`
	WallMS   float64 `json:"wall_ms"`
	OneMS    float64 `json:"one_request_ms"`
	Kept     int     `json:"kept"`
	Warnings int     `json:"warned_requests"`
	Failed   int     `json:"failed"`
}

type throughputRow struct {
	Handler      string  `json:"handler"`
	DistinctRPS  float64 `json:"distinct_rps"`
	DistinctC    int     `json:"distinct_concurrency"`
	DistinctLost int64   `json:"distinct_lost"`
	SharedRPS    float64 `json:"shared_rps"`
	SharedC      int     `json:"shared_concurrency"`
	SharedLost   int64   `json:"shared_lost"`
	SharedTotal  int64   `json:"shared_requests"`
	Errors       int64   `json:"errors"`
	Warnings     int64   `json:"warned_requests"`
}

type benchTarget struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Limit float64 `json:"limit"`
	Met   bool    `json:"met"`
	Note  string  `json:"note"`
}

func runBench(env *cmdEnv, args []string) int {
	var o benchOptions
	fs := newFlagSet(env, "bench", "[flags]")
	fs.StringVar(&o.phpFPM, "php-fpm", "", "php-fpm binary (default: $PHP_FPM, then "+fpmtest.DefaultFPM+")")
	fs.StringVar(&o.address, "address", "", "benchmark an already running daemon at this address (unix:///path or tcp://host:port) instead of starting one")
	fs.StringVar(&o.token, "token", "", "token for --address")
	fs.StringVar(&o.store, "store", "memory://", "--store of the daemon the bench starts")
	fs.StringVar(&o.redisServer, "redis-server", "", `redis-server binary for the phpredis rows ("" finds it on $PATH, "none" skips them)`)
	fs.DurationVar(&o.duration, "duration", 3*time.Second, "time each handler gets per throughput load, split into 3 interleaved slices")
	fs.IntVar(&o.concurrency, "concurrency", 16, "workers of the distinct-sessions throughput run (one session each)")
	fs.IntVar(&o.shared, "shared-concurrency", 8, "workers of the one-session throughput run")
	fs.Int64Var(&o.requests, "requests", 50000, "upper bound on requests of each handler per throughput load")
	fs.IntVar(&o.parallel, "parallel", 10, "requests of the parallel-session run")
	fs.DurationVar(&o.sleep, "sleep", 200*time.Millisecond, "work time of each parallel request after session_start")
	fs.IntVar(&o.children, "children", 16, "php-fpm static children")
	fs.BoolVar(&o.jsonOut, "json", false, "print the report as JSON")
	fs.StringVar(&o.handlers, "handlers", "files,phpsessd,phpredis", "comma-separated handler families to run")
	noCounter := fs.Bool("no-counter", false, "start the daemon without --counter n (counter.php's increments then merge as plain values)")
	if code := parseFlags(env, fs, args); code >= 0 {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(env, "bench", "unexpected argument %q", fs.Arg(0))
	}
	switch {
	case o.duration <= 0 || o.duration > 10*time.Minute:
		return usageError(env, "bench", "--duration must be in (0, 10m], got %v", o.duration)
	case o.concurrency < 1 || o.concurrency > 256 || o.shared < 1 || o.shared > 256:
		return usageError(env, "bench", "--concurrency and --shared-concurrency must be 1..256")
	case o.requests < 1:
		return usageError(env, "bench", "--requests must be > 0")
	case o.parallel < 1 || o.parallel > 256:
		return usageError(env, "bench", "--parallel must be 1..256")
	case o.sleep < 0 || o.sleep > time.Minute:
		return usageError(env, "bench", "--sleep must be in [0, 1m]")
	case o.children < 1 || o.children > 512:
		return usageError(env, "bench", "--children must be 1..512")
	}
	if !*noCounter {
		o.daemonArgs = []string{"--counter", "n"}
	}
	for _, h := range strings.Split(o.handlers, ",") {
		switch strings.TrimSpace(h) {
		case "files", "phpsessd", "phpredis":
		default:
			return usageError(env, "bench", "--handlers: unknown handler family %q (want files, phpsessd, phpredis)", h)
		}
	}
	// Enough workers for the widest run, or the pool becomes the bottleneck
	// being measured.
	if need := max(o.parallel, o.concurrency, o.shared); o.children < need {
		fmt.Fprintf(env.Stderr, "phpsessd bench: raising --children from %d to %d so no run queues on php-fpm\n", o.children, need)
		o.children = need
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench(ctx, env, o)
	if err != nil {
		fmt.Fprintf(env.Stderr, "phpsessd bench: %v\n", err)
		if rep != nil && rep.daemonLog != nil {
			if l := rep.daemonLog(); l != "" {
				fmt.Fprintf(env.Stderr, "--- daemon log\n%s\n", lastLines(l, 40))
			}
		}
		return exitFail
	}
	if o.jsonOut {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(env.Stderr, "phpsessd bench: %v\n", err)
			return exitFail
		}
		return exitOK
	}
	printBench(env.Stdout, rep)
	return exitOK
}

func bench(ctx context.Context, env *cmdEnv, o benchOptions) (*benchReport, error) {
	began := time.Now()
	rep := &benchReport{CPUs: runtime.NumCPU(), Children: o.children, DurationSec: o.duration.Seconds(), opts: o}
	dir, err := os.MkdirTemp("", "phpsessd-bench-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	mk := func(name string) (string, error) {
		p := dir + "/" + name
		return p, os.MkdirAll(p, 0o755)
	}

	fpmDir, err := mk("fpm")
	if err != nil {
		return nil, err
	}
	pool, err := fpmtest.StartPool(fpmtest.PoolConfig{Binary: o.phpFPM, Dir: fpmDir, Children: o.children})
	if err != nil {
		return nil, err
	}
	defer pool.Stop()
	files := fpmtest.Files(pool.SavePath)
	probe, err := probePHP(ctx, pool, files)
	if err != nil {
		return nil, err
	}
	rep.PHP = probe.PHP

	want := func(family string) bool {
		for _, h := range strings.Split(o.handlers, ",") {
			if strings.TrimSpace(h) == family {
				return true
			}
		}
		return false
	}
	var parallelHandlers, throughputHandlers, warm []fpmtest.Handler
	if want("files") {
		parallelHandlers = append(parallelHandlers, files)
		throughputHandlers = append(throughputHandlers, files)
		warm = append(warm, files)
	}

	if want("phpsessd") {
		address, token := o.address, o.token
		if address == "" {
			self, err := os.Executable()
			if err != nil {
				return rep, fmt.Errorf("find own binary: %w", err)
			}
			dDir, err := mk("daemon")
			if err != nil {
				return rep, err
			}
			// counter.php's key is declared a counter, as a deployment
			// with counters in its sessions would do; without it the
			// optimistic rows show what "mine wins" does to a counter.
			d, err := fpmtest.StartDaemon(fpmtest.DaemonConfig{Bin: self, Dir: dDir, Store: o.store, Args: o.daemonArgs})
			if err != nil {
				return rep, err
			}
			defer d.Stop()
			rep.daemonLog = d.Logs
			address = d.Address()
		}
		rep.Address = address
		if o.address == "" {
			rep.Notes = append(rep.Notes, "daemon started as: phpsessd serve --store "+o.store+" "+strings.Join(o.daemonArgs, " "))
		} else {
			rep.Notes = append(rep.Notes, "using the daemon at "+o.address+": start it with --counter n, or counter.php's increments merge as plain values")
		}
		bootstrap, err := benchBootstrap(env)
		if err != nil {
			return rep, err
		}
		withToken := func(h fpmtest.Handler) fpmtest.Handler {
			if token == "" {
				return h
			}
			return h.With(nil, map[string]string{"PHPSESSD_TOKEN": token})
		}
		opt := withToken(fpmtest.Phpsessd(bootstrap, address, "optimistic"))
		locked := withToken(fpmtest.Phpsessd(bootstrap, address, "locked"))
		parallelHandlers = append(parallelHandlers, opt, locked)
		throughputHandlers = append(throughputHandlers, opt, locked)
		warm = append(warm, opt)
	}

	if want("phpredis") {
		switch {
		case o.redisServer == "none":
			rep.Notes = append(rep.Notes, "phpredis rows skipped (--redis-server none)")
		case !probe.Redis:
			rep.Notes = append(rep.Notes, "phpredis rows skipped: the redis extension is not loaded in php-fpm")
		default:
			rDir, err := mk("redis")
			if err != nil {
				return rep, err
			}
			r, err := fpmtest.StartRedis(o.redisServer, rDir)
			if err != nil {
				rep.Notes = append(rep.Notes, "phpredis rows skipped: "+err.Error())
				break
			}
			defer r.Stop()
			rep.Redis = r.Addr
			lock, noLock := fpmtest.PHPRedis(r.Addr, true, false), fpmtest.PHPRedis(r.Addr, false, false)
			parallelHandlers = append(parallelHandlers, lock, noLock, fpmtest.PHPRedis(r.Addr, true, true))
			throughputHandlers = append(throughputHandlers, noLock, lock)
			warm = append(warm, noLock)
		}
	}

	// Warm opcache and each family's connection path before measuring.
	for _, h := range warm {
		if _, err := pool.Throughput(ctx, h, 4, false, 300*time.Millisecond, 200); err != nil {
			return rep, fmt.Errorf("warm-up with %s: %w", h.Name, err)
		}
	}

	for _, h := range parallelHandlers {
		pr, _, _, err := pool.ParallelHits(ctx, h, h, o.parallel, o.sleep)
		if err != nil {
			return rep, fmt.Errorf("parallel run with %s: %w", h.Name, err)
		}
		rep.Parallel = append(rep.Parallel, parallelRow{Handler: h.Name, N: pr.N, WallMS: msf(pr.Wall), OneMS: msf(pr.One),
			Kept: pr.Kept, Warnings: pr.Warnings, Failed: pr.Failed})
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
	}

	// Handlers take turns in short slices instead of one long run each:
	// on a shared machine the background load drifts, and interleaving
	// spreads that drift over every row instead of favouring one.
	type acc struct {
		dist, shared fpmtest.ThroughputResult
	}
	accs := make([]acc, len(throughputHandlers))
	slice := o.duration / benchRounds
	perSlice := max(o.requests/benchRounds, 1)
	for round := 0; round < benchRounds; round++ {
		for i, h := range throughputHandlers {
			for _, shared := range []bool{false, true} {
				workers, sum := o.concurrency, &accs[i].dist
				if shared {
					workers, sum = o.shared, &accs[i].shared
				}
				r, err := pool.Throughput(ctx, h, workers, shared, slice, perSlice)
				if err != nil {
					return rep, fmt.Errorf("throughput with %s: %w", h.Name, err)
				}
				sum.Requests += r.Requests
				sum.Elapsed += r.Elapsed
				sum.Lost += r.Lost
				sum.Errors += r.Errors
				sum.Warnings += r.Warnings
				if ctx.Err() != nil {
					return rep, ctx.Err()
				}
			}
		}
	}
	for i, h := range throughputHandlers {
		d, sh := accs[i].dist, accs[i].shared
		rep.Throughput = append(rep.Throughput, throughputRow{
			Handler:     h.Name,
			DistinctC:   o.concurrency,
			SharedC:     o.shared,
			DistinctRPS: d.RPS(), DistinctLost: d.Lost,
			SharedRPS: sh.RPS(), SharedLost: sh.Lost, SharedTotal: sh.Requests,
			Errors:   d.Errors + sh.Errors,
			Warnings: d.Warnings + sh.Warnings,
		})
	}
	rep.Targets = benchTargets(rep)
	rep.Elapsed = time.Since(began).Seconds()
	return rep, nil
}

// benchBootstrap finds php-client/bootstrap.php in the checkout the bench
// runs from, or takes $PHPSESSD_BOOTSTRAP.
func benchBootstrap(env *cmdEnv) (string, error) {
	p := ""
	if env.Getenv != nil {
		p = env.Getenv("PHPSESSD_BOOTSTRAP")
	}
	if p == "" {
		root, err := fpmtest.ModuleRoot()
		if err != nil {
			return "", fmt.Errorf("php-client/bootstrap.php not found (%v): run from the phpsessd checkout or set PHPSESSD_BOOTSTRAP", err)
		}
		p = root + "/php-client/bootstrap.php"
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("php-client bootstrap: %w", err)
	}
	return p, nil
}

type phpProbe struct {
	PHP   string `json:"php"`
	Redis bool   `json:"redis"`
}

func probePHP(ctx context.Context, pool *fpmtest.Pool, h fpmtest.Handler) (*phpProbe, error) {
	r, err := pool.Do(ctx, h.Req("probe.php", "", ""))
	if err != nil {
		return nil, err
	}
	p := &phpProbe{}
	if err := json.Unmarshal(r.Body, p); err != nil {
		return nil, fmt.Errorf("probe.php answered %q (stderr %q): %w", r.Body, r.Stderr, err)
	}
	return p, nil
}

// benchTargets states the project's two headline claims as ratios measured
// in this one run, so machines of different speed agree on pass or miss.
func benchTargets(rep *benchReport) []benchTarget {
	var out []benchTarget
	find := func(name string) *parallelRow {
		for i := range rep.Parallel {
			if rep.Parallel[i].Handler == name {
				return &rep.Parallel[i]
			}
		}
		return nil
	}
	if p := find("phpsessd optimistic"); p != nil && p.OneMS > 0 {
		v := p.WallMS / p.OneMS
		out = append(out, benchTarget{
			Name: "parallel wall ≤ 1.05 × one request, all writes kept", Value: v, Limit: 1.05,
			Met:  v <= 1.05 && p.Kept == p.N,
			Note: fmt.Sprintf("%.2f × (%.0f ms vs %.0f ms), kept %d/%d", v, p.WallMS, p.OneMS, p.Kept, p.N),
		})
	}
	var files, ours *throughputRow
	for i := range rep.Throughput {
		switch rep.Throughput[i].Handler {
		case "files":
			files = &rep.Throughput[i]
		case "phpsessd optimistic":
			ours = &rep.Throughput[i]
		}
	}
	if files != nil && ours != nil && files.DistinctRPS > 0 {
		v := ours.DistinctRPS / files.DistinctRPS
		out = append(out, benchTarget{
			Name: "distinct-session throughput ≥ 1.1 × files", Value: v, Limit: 1.1, Met: v >= 1.1,
			Note: fmt.Sprintf("%.2f × (%.0f vs %.0f req/s)", v, ours.DistinctRPS, files.DistinctRPS),
		})
	}
	return out
}

func printBench(w io.Writer, rep *benchReport) {
	fmt.Fprintf(w, "phpsessd bench: PHP %s php-fpm, %d static children, %d CPUs", rep.PHP, rep.Children, rep.CPUs)
	if rep.Address != "" {
		fmt.Fprintf(w, "; phpsessd at %s", rep.Address)
	}
	if rep.Redis != "" {
		fmt.Fprintf(w, "; redis-server at %s", rep.Redis)
	}
	fmt.Fprintln(w)
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	fmt.Fprintf(w, "\n%d parallel requests of one session (each sleeps %v after session_start, appends to $_SESSION['hits'])\n",
		rep.opts.parallel, rep.opts.sleep)
	// tabwriter right-aligns every column; padding the names keeps them
	// flush left.
	width := len("handler")
	for _, p := range rep.Parallel {
		width = max(width, len(p.Handler))
	}
	name := func(s string) string { return fmt.Sprintf("%-*s", width, s) }
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\twall ms\t× one request\tkept\twarned\tfailed\t\n", name("handler"))
	for _, p := range rep.Parallel {
		ratio := 0.0
		if p.OneMS > 0 {
			ratio = p.WallMS / p.OneMS
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.2f\t%d/%d\t%d\t%d\t\n", name(p.Handler), p.WallMS, ratio, p.Kept, p.N, p.Warnings, p.Failed)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nThroughput of counter.php ($_SESSION['n']++), %v per handler and load in %d interleaved slices\n", rep.opts.duration, benchRounds)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\t%d sessions c=%d req/s\t× files\t1 session c=%d req/s\t× files\tlost updates\terrors\twarned\t\n",
		name("handler"), rep.opts.concurrency, rep.opts.concurrency, rep.opts.shared)
	var files *throughputRow
	for i := range rep.Throughput {
		if rep.Throughput[i].Handler == "files" {
			files = &rep.Throughput[i]
		}
	}
	rel := func(v, base float64) string {
		if base <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", v/base)
	}
	for _, t := range rep.Throughput {
		var fd, fs float64
		if files != nil {
			fd, fs = files.DistinctRPS, files.SharedRPS
		}
		lost := fmt.Sprintf("%d", t.SharedLost+t.DistinctLost)
		if t.SharedTotal > 0 && t.SharedLost > 0 {
			lost += fmt.Sprintf(" (%.0f %%)", 100*float64(t.SharedLost)/float64(t.SharedTotal))
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%.0f\t%s\t%s\t%d\t%d\t\n", name(t.Handler), t.DistinctRPS, rel(t.DistinctRPS, fd),
			t.SharedRPS, rel(t.SharedRPS, fs), lost, t.Errors, t.Warnings)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nTargets (ratios within this run)")
	for _, t := range rep.Targets {
		verdict := "MISS"
		if t.Met {
			verdict = "MET"
		}
		fmt.Fprintf(w, "  %-4s %s: %s\n", verdict, t.Name, t.Note)
	}
	fmt.Fprintf(w, "\nbench took %.1f s\n", rep.Elapsed)
}

func msf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
