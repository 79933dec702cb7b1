package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/phpsessd/phpsessd/handlers"
	"github.com/phpsessd/phpsessd/handlers/sealed"
)

// sealFlags are the migrate flags that read sealed stores, seal the copies
// or re-encrypt a store in place.
type sealFlags struct {
	fromKeys     string
	toKeys       string
	compressOver string
	reseal       bool
}

func (f *sealFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.fromKeys, "from-keys", "", "the source is sealed: open its records with the keys in FILE (same format as serve --keys-file)")
	fs.StringVar(&f.toKeys, "to-keys", "", "seal the copies under the first key in FILE (with --reseal: the keys of the store being resealed)")
	fs.StringVar(&f.compressOver, "to-compress-over", "", "zstd-compress copies larger than SIZE (like serve --compress-over)")
	fs.BoolVar(&f.reseal, "reseal", false, "rewrite every record of --to under the first key of --to-keys, in place (no --from)")
}

// sealPlan is sealFlags with the key files read. Key files are read before
// any store is opened, so a missing or bad file stops the run with
// nothing written.
type sealPlan struct {
	from         []sealed.Key
	to           []sealed.Key
	compressOver int
}

func (f *sealFlags) load() (*sealPlan, error) {
	p := &sealPlan{}
	var err error
	if f.fromKeys != "" {
		if p.from, err = sealed.LoadKeyFile(f.fromKeys); err != nil {
			return nil, fmt.Errorf("--from-keys: %w", err)
		}
	}
	if f.toKeys != "" {
		if p.to, err = sealed.LoadKeyFile(f.toKeys); err != nil {
			return nil, fmt.Errorf("--to-keys: %w", err)
		}
	}
	if f.compressOver != "" {
		n, err := parseSize(f.compressOver)
		if err != nil {
			return nil, fmt.Errorf("--to-compress-over: %w", err)
		}
		if n > int64(sealed.DefaultMaxSize) {
			return nil, fmt.Errorf("--to-compress-over: %d is above the largest record a sealed store accepts (%d)", n, sealed.DefaultMaxSize)
		}
		p.compressOver = int(n)
	}
	return p, nil
}

// wrapSource opens the source's sealed records when --from-keys is set;
// otherwise s is returned as is. release frees the wrapper's codecs and
// never closes s, whose Close the caller already owns.
func (p *sealPlan) wrapSource(s handlers.Store) (_ handlers.Store, release func(), err error) {
	if len(p.from) == 0 {
		return s, func() {}, nil
	}
	w, err := sealed.New(keepOpen{s}, sealed.Options{Keys: p.from})
	if err != nil {
		return nil, nil, fmt.Errorf("--from-keys: %w", err)
	}
	return w, func() { _ = w.Close() }, nil
}

// wrapTarget seals what is written to the target when --to-keys or
// --to-compress-over is set; release as for wrapSource.
func (p *sealPlan) wrapTarget(s handlers.Store) (_ handlers.Store, release func(), err error) {
	if len(p.to) == 0 && p.compressOver == 0 {
		return s, func() {}, nil
	}
	w, err := sealed.New(keepOpen{s}, sealed.Options{Keys: p.to, CompressOver: p.compressOver})
	if err != nil {
		return nil, nil, fmt.Errorf("--to-keys: %w", err)
	}
	return w, func() { _ = w.Close() }, nil
}

// keepOpen lets a sealed wrapper be closed (releasing its codecs) without
// closing the store below, whose Close migrateMain has already deferred.
type keepOpen struct{ handlers.Store }

func (keepOpen) Close() error { return nil }

// resealMain is `phpsessd migrate --reseal --to URL --to-keys FILE`.
func resealMain(ctx context.Context, env *cmdEnv, f *sealFlags, from, to string, o migrateOptions) int {
	switch {
	case from != "" || f.fromKeys != "":
		return usageError(env, "migrate", "--reseal rewrites --to in place and takes no --from or --from-keys")
	case to == "":
		return usageError(env, "migrate", "--reseal needs --to URL")
	case f.toKeys == "":
		return usageError(env, "migrate", "--reseal needs --to-keys FILE (the new key first, every key still in use after it)")
	case o.DryRun || o.Overwrite || o.Verify:
		return usageError(env, "migrate", "--reseal does not take --dry-run, --overwrite or --verify")
	case o.Concurrency < 1 || o.Concurrency > 1024:
		return usageError(env, "migrate", "--concurrency %d: want 1..1024", o.Concurrency)
	case o.OpTimeout <= 0:
		return usageError(env, "migrate", "--op-timeout must be positive")
	}
	plan, err := f.load()
	if err != nil {
		fmt.Fprintf(env.Stderr, "phpsessd migrate: %v (nothing was written)\n", err)
		return exitFail
	}
	log := slog.New(slog.NewTextHandler(env.Stderr, nil))
	// Opened like a migration source: a mistyped files:// path must not
	// become an empty directory that "reseals" zero sessions.
	inner, err := openStoreURL(ctx, to, true)
	if err != nil {
		fmt.Fprintf(env.Stderr, "phpsessd migrate: --to: %v (nothing was written)\n", err)
		return exitFail
	}
	defer inner.Close()
	if ro, ok := inner.(interface{ ReadOnly() bool }); ok && ro.ReadOnly() {
		return usageError(env, "migrate", "--to: this store is read-only and cannot be resealed")
	}
	s, err := sealed.New(keepOpen{inner}, sealed.Options{Keys: plan.to, CompressOver: plan.compressOver})
	if err != nil {
		fmt.Fprintf(env.Stderr, "phpsessd migrate: --to-keys: %v (nothing was written)\n", err)
		return exitFail
	}
	defer s.Close()

	began := time.Now()
	if o.Precheck {
		n, err := resealPrecheck(ctx, s, o)
		if err != nil {
			fmt.Fprintf(env.Stderr, "phpsessd migrate: reseal: %v (nothing was written)\n", err)
			return exitFail
		}
		log.Info("migrate: reseal precheck passed", "sessions", n, "key", s.CurrentKeyID())
	}
	st, err := sealed.Reseal(ctx, s)
	elapsed := time.Since(began)
	fmt.Fprintf(env.Stdout, "scanned: %d\nresealed: %d\nalready current: %d\nvanished: %d\nfailed: %d\nkey: %s\nelapsed: %s\n",
		st.Scanned, st.Resealed, st.Current, st.Vanished, st.Failed, s.CurrentKeyID(), elapsed.Round(time.Millisecond))
	if err != nil {
		fmt.Fprintf(env.Stderr, "phpsessd migrate: %v; run the same command again once the cause is fixed (records already resealed are skipped)\n", err)
		return exitFail
	}
	return exitOK
}

// resealPrecheck opens every record once with the configured keys before
// Reseal writes anything: Reseal alone would rewrite the records it can
// open and only count the rest, so a key file missing an old key would
// leave the store half converted.
func resealPrecheck(ctx context.Context, s *sealed.Store, o migrateOptions) (int, error) {
	var items []migrateItem
	if err := s.Scan(ctx, func(id string, _ time.Time) error {
		items = append(items, migrateItem{id: id})
		return nil
	}); err != nil {
		return 0, fmt.Errorf("listing sessions: %w", err)
	}
	sort.Slice(items, func(i, j int) bool { return items[i].id < items[j].id })
	var (
		mu     sync.Mutex
		failed int
		first  error
	)
	err := forEachItem(ctx, items, o.Concurrency, func(ctx context.Context, it migrateItem) error {
		cctx, cancel := context.WithTimeout(ctx, o.OpTimeout)
		defer cancel()
		_, err := s.Load(cctx, it.id)
		switch {
		case err == nil, errors.Is(err, handlers.ErrNotFound):
			return nil
		case errors.Is(err, sealed.ErrUnknownKey), errors.Is(err, sealed.ErrAuth), errors.Is(err, sealed.ErrCorrupt):
			// Counted, not fatal: the report names how many, so one run
			// shows the whole extent of a wrong key file.
			mu.Lock()
			failed++
			if first == nil {
				first = err
			}
			mu.Unlock()
			return nil
		default:
			return fmt.Errorf("reading session %s: %w", it.id, err)
		}
	})
	if err != nil {
		return len(items), err
	}
	if failed > 0 {
		return len(items), fmt.Errorf("%d of %d sessions cannot be opened with --to-keys (is a key still in use missing from the file?), e.g. %w",
			failed, len(items), first)
	}
	return len(items), nil
}
