package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/phpsessd/phpsessd/handlers"
	"github.com/phpsessd/phpsessd/handlers/files"

	// Schemes only the migration needs; handlers/all brings the rest.
	_ "github.com/phpsessd/phpsessd/handlers/all"
	_ "github.com/phpsessd/phpsessd/handlers/memcached"
	_ "github.com/phpsessd/phpsessd/handlers/migrating"
)

func init() {
	register("migrate", command{
		Summary: "copy sessions from one store to another (files, phpredis, php-memcached, …)",
		Run: func(env *cmdEnv, args []string) int {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return migrateMain(ctx, env, args)
		},
	})
}

// migrateOptions are the settings of one migration.
type migrateOptions struct {
	Overwrite     bool
	DryRun        bool
	Verify        bool
	Precheck      bool
	Concurrency   int
	OpTimeout     time.Duration
	ProgressEvery time.Duration
}

// migrateStats counts what happened to each listed session. Every listed
// session ends in exactly one of Copied, Identical, Different,
// Overwritten or Vanished (or none, when the run stopped early).
type migrateStats struct {
	Listed      int64 // live sessions the source scan reported
	Copied      int64 // written to the target (would be, in a dry run)
	Identical   int64 // the target already held the same bytes
	Different   int64 // the target held other bytes and was left alone
	Overwritten int64 // the target held other bytes and was replaced
	Vanished    int64 // expired or deleted in the source during the run
	Verified    int64 // re-read from the target and byte-identical
	Mismatched  int64 // re-read from the target and not identical
	Elapsed     time.Duration

	// writing is set once the copy phase starts: errors before it leave
	// the target untouched.
	writing     bool
	mismatchIDs []string
}

func (st *migrateStats) done() int64 {
	return atomic.LoadInt64(&st.Copied) + atomic.LoadInt64(&st.Identical) + atomic.LoadInt64(&st.Different) +
		atomic.LoadInt64(&st.Overwritten) + atomic.LoadInt64(&st.Vanished)
}

func migrateMain(ctx context.Context, env *cmdEnv, args []string) int {
	fs := newFlagSet(env, "migrate", "--from URL --to URL [flags]")
	from := fs.String("from", "", "source store URL: files:///dir?depth=N&ttl=S, redis://host:port/db?prefix=PHPREDIS_SESSION:, memcached://host:port?prefix=memc.sess.key., or any phpsessd store URL")
	to := fs.String("to", "", "target store URL (any writable phpsessd store)")
	var o migrateOptions
	fs.BoolVar(&o.Overwrite, "overwrite", false, "replace target sessions whose bytes differ from the source (default: leave them and count them)")
	fs.BoolVar(&o.DryRun, "dry-run", false, "read both stores and report what would be copied; write nothing")
	fs.BoolVar(&o.Verify, "verify", false, "re-read every session from the target and byte-compare it with the source; exit 1 on any difference")
	fs.BoolVar(&o.Precheck, "precheck", true, "read every source session once before writing anything, so an unreadable session aborts with nothing written")
	fs.IntVar(&o.Concurrency, "concurrency", 8, "sessions copied in parallel")
	fs.DurationVar(&o.OpTimeout, "op-timeout", 30*time.Second, "deadline of each single store call")
	fs.DurationVar(&o.ProgressEvery, "progress-interval", 10*time.Second, "how often a progress line is logged when stderr is not a terminal (a terminal gets a live line)")
	verbose := fs.Bool("verbose", false, "log every session left alone because the target differs")
	var sf sealFlags
	sf.register(fs)
	if code := parseFlags(env, fs, args); code >= 0 {
		return code
	}
	if sf.reseal {
		return resealMain(ctx, env, &sf, *from, *to, o)
	}
	switch {
	case fs.NArg() > 0:
		return usageError(env, "migrate", "unexpected argument %q", fs.Arg(0))
	case *from == "" || *to == "":
		return usageError(env, "migrate", "both --from and --to are required")
	case *from == *to:
		return usageError(env, "migrate", "--from and --to name the same store")
	case o.Concurrency < 1 || o.Concurrency > 1024:
		return usageError(env, "migrate", "--concurrency %d: want 1..1024", o.Concurrency)
	case o.OpTimeout <= 0:
		return usageError(env, "migrate", "--op-timeout must be positive")
	case o.ProgressEvery <= 0:
		return usageError(env, "migrate", "--progress-interval must be positive")
	}
	plan, err := sf.load()
	if err != nil {
		fmt.Fprintf(env.Stderr, "phpsessd migrate: %v (nothing was written)\n", err)
		return exitFail
	}
	lvl := slog.LevelInfo
	if *verbose {
		lvl = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: lvl}))

	// The source is opened without creating anything (the files store
	// would create a missing directory, turning a mistyped path into a
	// migration that "succeeds" with zero sessions); so is the target of a
	// dry run.
	src, err := openStoreURL(ctx, *from, true)
	if err != nil {
		fmt.Fprintf(env.Stderr, "phpsessd migrate: source --from: %v (nothing was written)\n", err)
		return exitFail
	}
	defer src.Close()
	src, releaseSource, err := plan.wrapSource(src)
	if err != nil {
		fmt.Fprintf(env.Stderr, "phpsessd migrate: source: %v (nothing was written)\n", err)
		return exitFail
	}
	defer releaseSource()
	dst, err := openStoreURL(ctx, *to, o.DryRun)
	if err != nil {
		fmt.Fprintf(env.Stderr, "phpsessd migrate: target --to: %v (nothing was written)\n", err)
		return exitFail
	}
	defer dst.Close()
	if ro, ok := dst.(interface{ ReadOnly() bool }); ok && ro.ReadOnly() {
		return usageError(env, "migrate", "--to: this store is read-only and can only be a source")
	}
	dst, releaseTarget, err := plan.wrapTarget(dst)
	if err != nil {
		fmt.Fprintf(env.Stderr, "phpsessd migrate: target: %v (nothing was written)\n", err)
		return exitFail
	}
	defer releaseTarget()

	prog := newProgress(env.Stderr, log, o.ProgressEvery)
	st, err := migrateStores(ctx, src, dst, o, log, prog)
	printSummary(env.Stdout, st, o)
	switch {
	case err != nil && !st.writing && !o.DryRun:
		fmt.Fprintf(env.Stderr, "phpsessd migrate: %v (nothing was written)\n", err)
		return exitFail
	case err != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) && ctx.Err() != nil:
		fmt.Fprintf(env.Stderr, "phpsessd migrate: interrupted after %d of %d sessions; run the same command again to resume (sessions already copied are skipped as identical)\n", st.done(), st.Listed)
		return exitFail
	case err != nil:
		fmt.Fprintf(env.Stderr, "phpsessd migrate: %v; run the same command again to resume once the cause is fixed\n", err)
		return exitFail
	case o.Verify && st.Mismatched > 0:
		fmt.Fprintf(env.Stderr, "phpsessd migrate: verify: %d sessions differ between source and target, e.g. %s\n",
			st.Mismatched, strings.Join(st.mismatchIDs, ", "))
		return exitFail
	}
	return exitOK
}

// openStoreURL opens a store URL; mustExist refuses a files:// directory
// that is missing instead of creating it. Errors never repeat a password
// the URL carries: they end up in terminals and CI logs.
func openStoreURL(ctx context.Context, raw string, mustExist bool) (handlers.Store, error) {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("not a valid store URL: %v", err)
	}
	s, err := openParsed(ctx, u, raw, mustExist)
	if err == nil {
		return s, nil
	}
	msg := err.Error()
	for _, pw := range secrets(u) {
		msg = strings.ReplaceAll(msg, pw, "xxxxx")
	}
	if msg != err.Error() {
		return nil, errors.New(msg)
	}
	return nil, err
}

func openParsed(ctx context.Context, u *url.URL, raw string, mustExist bool) (handlers.Store, error) {
	known := false
	for _, s := range handlers.Schemes() {
		known = known || s == u.Scheme
	}
	if !known {
		return nil, fmt.Errorf("%s: unknown store scheme %q (known: %s)", u.Redacted(), u.Scheme, strings.Join(handlers.Schemes(), ", "))
	}
	if u.Scheme == "files" && mustExist {
		o, err := files.ParseURL(u)
		if err != nil {
			return nil, err
		}
		fi, err := os.Stat(o.Dir)
		if err != nil {
			return nil, fmt.Errorf("session directory: %w", err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("session directory %s is not a directory", o.Dir)
		}
	}
	return handlers.Open(ctx, raw)
}

func secrets(u *url.URL) []string {
	var out []string
	if pw, ok := u.User.Password(); ok && pw != "" {
		out = append(out, pw)
	}
	for _, k := range []string{"password", "sentinel_password"} {
		if pw := u.Query().Get(k); pw != "" {
			out = append(out, pw)
		}
	}
	return out
}

// migrateItem is one listed session; its expiry is re-read with the data.
type migrateItem struct {
	id string
}

// migrateStores copies every live session of src into dst. It lists the
// source first (so progress has a total), optionally reads every session
// once (precheck), then copies with o.Concurrency workers. Sessions are
// created in the target with a compare-and-swap against "absent", which is
// what makes a rerun safe: whatever is already there is compared, not
// clobbered.
func migrateStores(ctx context.Context, src, dst handlers.Store, o migrateOptions, log *slog.Logger, prog *progress) (*migrateStats, error) {
	st := &migrateStats{}
	start := time.Now()
	defer func() { st.Elapsed = time.Since(start) }()
	if o.Concurrency < 1 {
		o.Concurrency = 1
	}
	if o.OpTimeout <= 0 {
		o.OpTimeout = 30 * time.Second
	}

	var items []migrateItem
	now := time.Now()
	err := src.Scan(ctx, func(id string, exp time.Time) error {
		if !exp.IsZero() && !exp.After(now) {
			return nil // stores never report expired sessions; a clock edge
		}
		items = append(items, migrateItem{id: id})
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("listing source sessions: %w", err)
	}
	// A stable order makes progress and logs of a rerun comparable.
	sort.Slice(items, func(i, j int) bool { return items[i].id < items[j].id })
	st.Listed = int64(len(items))
	log.Info("migrate: source listed", "sessions", len(items), "dry_run", o.DryRun)

	op := func(ctx context.Context) (context.Context, context.CancelFunc) {
		return context.WithTimeout(ctx, o.OpTimeout)
	}

	if o.Precheck && !o.DryRun {
		prog.start("reading", int64(len(items)))
		var checked atomic.Int64
		err := forEachItem(ctx, items, o.Concurrency, func(ctx context.Context, it migrateItem) error {
			cctx, cancel := op(ctx)
			_, err := src.Load(cctx, it.id)
			cancel()
			if err != nil && !errors.Is(err, handlers.ErrNotFound) {
				return fmt.Errorf("reading source session %s: %w", it.id, err)
			}
			prog.set(checked.Add(1))
			return nil
		})
		prog.stop()
		if err != nil {
			return st, err
		}
	}

	st.writing = true
	prog.start("copying", int64(len(items)))
	defer prog.stop()
	var mu sync.Mutex
	mismatch := func(id string) {
		atomic.AddInt64(&st.Mismatched, 1)
		mu.Lock()
		if len(st.mismatchIDs) < 10 {
			st.mismatchIDs = append(st.mismatchIDs, id)
		}
		mu.Unlock()
	}
	err = forEachItem(ctx, items, o.Concurrency, func(ctx context.Context, it migrateItem) error {
		defer func() { prog.set(st.done()) }()
		cctx, cancel := op(ctx)
		defer cancel()
		rec, err := src.Load(cctx, it.id)
		if errors.Is(err, handlers.ErrNotFound) {
			atomic.AddInt64(&st.Vanished, 1)
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading source session %s: %w", it.id, err)
		}
		if !rec.Expires.IsZero() && !rec.Expires.After(time.Now()) {
			atomic.AddInt64(&st.Vanished, 1)
			return nil
		}
		rec.Version = 0
		outcome, err := copyOne(cctx, dst, it.id, rec, o)
		if err != nil {
			return err
		}
		switch outcome {
		case outCopied:
			atomic.AddInt64(&st.Copied, 1)
		case outIdentical:
			atomic.AddInt64(&st.Identical, 1)
		case outOverwritten:
			atomic.AddInt64(&st.Overwritten, 1)
		case outDifferent:
			atomic.AddInt64(&st.Different, 1)
			log.Debug("migrate: target holds different data, left alone", "id", it.id)
		}
		if !o.Verify || o.DryRun {
			return nil
		}
		got, err := dst.Load(cctx, it.id)
		switch {
		case err == nil && bytes.Equal(got.Data, rec.Data):
			atomic.AddInt64(&st.Verified, 1)
		case err == nil || errors.Is(err, handlers.ErrNotFound):
			mismatch(it.id)
		default:
			return fmt.Errorf("verifying target session %s: %w", it.id, err)
		}
		return nil
	})
	return st, err
}

type copyOutcome int

const (
	outCopied copyOutcome = iota
	outIdentical
	outDifferent
	outOverwritten
)

// copyOne writes rec as id into dst unless dst already has it. The loop
// only repeats when the target changed between our read and our write.
func copyOne(ctx context.Context, dst handlers.Store, id string, rec handlers.Record, o migrateOptions) (copyOutcome, error) {
	for attempt := 0; attempt < 5; attempt++ {
		if o.DryRun {
			cur, err := dst.Load(ctx, id)
			switch {
			case errors.Is(err, handlers.ErrNotFound):
				return outCopied, nil
			case err != nil:
				return 0, fmt.Errorf("reading target session %s: %w", id, err)
			case bytes.Equal(cur.Data, rec.Data):
				return outIdentical, nil
			case o.Overwrite:
				return outOverwritten, nil
			default:
				return outDifferent, nil
			}
		}
		_, err := dst.Save(ctx, id, rec, 0)
		if err == nil {
			return outCopied, nil
		}
		if !errors.Is(err, handlers.ErrVersionMismatch) {
			return 0, fmt.Errorf("writing target session %s: %w", id, err)
		}
		cur, err := dst.Load(ctx, id)
		if errors.Is(err, handlers.ErrNotFound) {
			continue // expired or deleted since the Save; create it again
		}
		if err != nil {
			return 0, fmt.Errorf("reading target session %s: %w", id, err)
		}
		if bytes.Equal(cur.Data, rec.Data) {
			return outIdentical, nil
		}
		if !o.Overwrite {
			return outDifferent, nil
		}
		_, err = dst.Save(ctx, id, rec, cur.Version)
		if err == nil {
			return outOverwritten, nil
		}
		if !errors.Is(err, handlers.ErrVersionMismatch) {
			return 0, fmt.Errorf("overwriting target session %s: %w", id, err)
		}
	}
	return 0, fmt.Errorf("target session %s: %w: it keeps changing while being copied", id, handlers.ErrVersionMismatch)
}

// forEachItem runs fn over items with n workers and stops at the first
// error, which it returns; every worker has exited when it returns.
func forEachItem(ctx context.Context, items []migrateItem, n int, fn func(context.Context, migrateItem) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	if n > len(items) {
		n = len(items)
	}
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(len(items)) {
					return
				}
				if err := fn(ctx, items[i]); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

func printSummary(w io.Writer, st *migrateStats, o migrateOptions) {
	if st == nil {
		return
	}
	verb := "copied"
	if o.DryRun {
		verb = "would copy"
	}
	rate := 0.0
	if secs := st.Elapsed.Seconds(); secs > 0 {
		rate = float64(st.done()) / secs
	}
	fmt.Fprintf(w, "listed: %d\n", st.Listed)
	fmt.Fprintf(w, "%s: %d\n", verb, st.Copied)
	fmt.Fprintf(w, "identical: %d\n", st.Identical)
	if o.Overwrite {
		v := "overwritten"
		if o.DryRun {
			v = "would overwrite"
		}
		fmt.Fprintf(w, "%s: %d\n", v, st.Overwritten)
	} else {
		fmt.Fprintf(w, "different (left alone; --overwrite replaces them): %d\n", st.Different)
	}
	fmt.Fprintf(w, "vanished: %d\n", st.Vanished)
	if o.Verify && !o.DryRun {
		fmt.Fprintf(w, "verified: %d\n", st.Verified)
		fmt.Fprintf(w, "mismatched: %d\n", st.Mismatched)
	}
	fmt.Fprintf(w, "elapsed: %s (%.0f sessions/s)\n", st.Elapsed.Round(time.Millisecond), rate)
}

// progress reports how far a phase is: a live line redrawn in place when
// stderr is a terminal, a plain log line every interval otherwise (a
// journal or CI log would fill up with carriage returns).
type progress struct {
	w        io.Writer
	log      *slog.Logger
	tty      bool
	interval time.Duration

	phase string
	total int64
	done  atomic.Int64
	began time.Time
	quit  chan struct{}
	exit  chan struct{}
}

func newProgress(w io.Writer, log *slog.Logger, every time.Duration) *progress {
	return &progress{w: w, log: log, tty: isTerminal(w), interval: every}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (p *progress) start(phase string, total int64) {
	if p == nil {
		return
	}
	p.stop()
	p.phase, p.total, p.began = phase, total, time.Now()
	p.done.Store(0)
	p.quit, p.exit = make(chan struct{}), make(chan struct{})
	every := p.interval
	if p.tty {
		every = 250 * time.Millisecond
	}
	go func() {
		defer close(p.exit)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.quit:
				if p.tty {
					fmt.Fprintf(p.w, "\r\x1b[K%s\n", p.line(time.Now()))
				}
				return
			case now := <-t.C:
				if p.tty {
					fmt.Fprintf(p.w, "\r\x1b[K%s", p.line(now))
				} else {
					d := p.done.Load()
					rate, eta := p.rateETA(now, d)
					p.log.Info("migrate: progress", "phase", p.phase, "done", d, "total", p.total,
						"rate_per_s", int64(rate), "eta", eta.Round(time.Second))
				}
			}
		}
	}()
}

func (p *progress) set(n int64) {
	if p != nil {
		p.done.Store(n)
	}
}

func (p *progress) stop() {
	if p == nil || p.quit == nil {
		return
	}
	close(p.quit)
	<-p.exit
	p.quit = nil
}

func (p *progress) rateETA(now time.Time, done int64) (float64, time.Duration) {
	secs := now.Sub(p.began).Seconds()
	if secs <= 0 || done == 0 {
		return 0, 0
	}
	rate := float64(done) / secs
	return rate, time.Duration(float64(p.total-done) / rate * float64(time.Second))
}

func (p *progress) line(now time.Time) string {
	d := p.done.Load()
	rate, eta := p.rateETA(now, d)
	pct := 100.0
	if p.total > 0 {
		pct = float64(d) * 100 / float64(p.total)
	}
	return fmt.Sprintf("%s %d/%d (%.1f%%) %.0f sessions/s, ETA %s", p.phase, d, p.total, pct, rate, eta.Round(time.Second))
}
