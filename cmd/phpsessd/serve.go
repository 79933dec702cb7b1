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
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/phpsessd/phpsessd/engine"
	"github.com/phpsessd/phpsessd/handlers"
	"github.com/phpsessd/phpsessd/handlers/cache"
	"github.com/phpsessd/phpsessd/handlers/memory"
	"github.com/phpsessd/phpsessd/handlers/migrating"
	redisstore "github.com/phpsessd/phpsessd/handlers/redis"
	"github.com/phpsessd/phpsessd/handlers/sealed"
	"github.com/phpsessd/phpsessd/metrics"
	"github.com/phpsessd/phpsessd/protocol"
	"github.com/phpsessd/phpsessd/security"
	"github.com/phpsessd/phpsessd/server"

	_ "github.com/phpsessd/phpsessd/handlers/all"
)

func init() {
	register("serve", command{
		Summary: "run the daemon",
		Run: func(env *cmdEnv, args []string) int {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return serveMain(ctx, env, args, nil)
		},
	})
}

// serveMain runs the daemon until ctx ends (SIGTERM/SIGINT in production, a
// cancel in tests), then shuts down gracefully. ready, when not nil, gets
// the bound addresses once the daemon accepts connections.
func serveMain(ctx context.Context, env *cmdEnv, args []string, ready func(addrs []string)) int {
	opts := serveOptions()
	fs := newFlagSet(env, "serve", "[flags]")
	flags := registerFlags(fs, opts)
	fs.Usage = func() { printServeUsage(fs.Output(), opts) }
	if code := parseFlags(env, fs, args); code >= 0 {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(env, "serve", "unexpected argument %q", fs.Arg(0))
	}
	cfg, err := loadServeConfig(opts, flags, env.Getenv)
	if err != nil {
		return usageError(env, "serve", "%v", err)
	}
	log := newLogger(env.Stderr, cfg)
	redisstore.SetLogger(log)
	if err := serve(ctx, env, cfg, log, ready); err != nil {
		log.Error("phpsessd failed", "err", err)
		return exitFail
	}
	return exitOK
}

func newLogger(w io.Writer, cfg serveConfig) *slog.Logger {
	var lvl slog.Level
	lvl.UnmarshalText([]byte(cfg.LogLevel))
	ho := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}

func serve(ctx context.Context, env *cmdEnv, cfg serveConfig, log *slog.Logger, ready func([]string)) error {
	euid := os.Geteuid()
	if cfg.DataDir == "" {
		cfg.DataDir = defaultDataDir(env.Getenv, euid)
		// A service account often has no writable home; falling back to a
		// private temp dir keeps "phpsessd serve" working with no setup.
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			fallback := filepath.Join(os.TempDir(), fmt.Sprintf("phpsessd-%d", euid))
			log.Warn("default data dir unusable, using a temp dir", "dir", cfg.DataDir, "err", err, "fallback", fallback)
			cfg.DataDir = fallback
		}
	}
	if len(cfg.Listen) == 0 {
		cfg.Listen = []string{"unix://" + filepath.Join(defaultRuntimeDir(env.Getenv, euid, cfg.DataDir), "phpsessd.sock")}
	}
	for _, l := range cfg.Listen {
		a, err := protocol.ParseAddress(l)
		if err != nil {
			return err
		}
		if a.Network == "unix" {
			// Traversable by the PHP workers; the socket's own mode guards it.
			if err := os.MkdirAll(filepath.Dir(a.Addr), 0o755); err != nil {
				return fmt.Errorf("socket directory: %w", err)
			}
		}
	}

	store, storeDesc, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	if ro, ok := store.(interface{ ReadOnly() bool }); ok && ro.ReadOnly() {
		store.Close()
		return fmt.Errorf("store %s is read-only: it can be a migrate source or --migrate-from, not the daemon's store", storeDesc)
	}
	if cfg.MigrateFrom != "" {
		old, err := handlers.Open(ctx, cfg.MigrateFrom)
		if err != nil {
			store.Close()
			return fmt.Errorf("--migrate-from: %w", err)
		}
		// The migrating store owns both from here on and closes both.
		ms, err := migrating.New(old, store, cfg.MigrateUntil)
		if err != nil {
			old.Close()
			store.Close()
			return fmt.Errorf("--migrate-from: %w", err)
		}
		store = ms
		storeDesc += fmt.Sprintf(" (falling back to %s until %s)", redactURL(cfg.MigrateFrom), cfg.MigrateUntil.Format(time.RFC3339))
	}
	// A store shared by several daemons (Redis) brings its own locker so a
	// lock taken through one daemon excludes requests on all of them. The
	// decorators (migrating, sealed, cache) forward their inner store's
	// locker, so --migrate-from and migrating:// keep it; nil from one of
	// them means none is shared and the engine locks in process.
	var locker engine.Locker
	if lp, ok := store.(interface{ EngineLocker() engine.Locker }); ok {
		locker = lp.EngineLocker()
	}
	loops, err := eventLoops(cfg, store, locker)
	if err != nil {
		store.Close()
		return err
	}
	// Sealing wraps last, so the checks above still see the raw store.
	if store, err = sealStore(store, cfg, env.Getenv, log); err != nil {
		return err
	}
	sig, err := security.New(security.Options{Logger: log, Hook: cfg.SecurityHook})
	if err != nil {
		store.Close()
		return fmt.Errorf("security signals: %w", err)
	}
	defer func() {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		sig.Close(c)
	}()
	ecfg := engine.NewConfig(store)
	ecfg.Logger = log
	ecfg.Locker = locker
	ecfg.OnInvalidID = sig.OnInvalidID
	ecfg.ModeRules = cfg.ModeRules
	ecfg.KeyRules = cfg.KeyRules
	ecfg.Counters = cfg.Counters
	ecfg.LockWait = cfg.LockWait
	ecfg.LockLease = cfg.LockLease
	ecfg.RegenerateGrace = cfg.RegenerateGrace
	ecfg.DefaultTTL = cfg.DefaultTTL
	ecfg.StrictIDs = cfg.Strict
	ecfg.MaxDataSize = int(cfg.MaxFrame)
	ecfg.SingleSessionRefs = cfg.SingleSessionRefs
	ecfg.FingerprintUA, ecfg.FingerprintIP = cfg.FingerprintUA, cfg.FingerprintIP
	ecfg.FingerprintIPv4Prefix, ecfg.FingerprintIPv6Prefix = cfg.FingerprintIPv4, cfg.FingerprintIPv6
	ecfg.FingerprintAction = cfg.FingerprintAction
	if cfg.FingerprintKeyFile != "" {
		key, err := os.ReadFile(cfg.FingerprintKeyFile)
		if err != nil {
			store.Close()
			return fmt.Errorf("fingerprint key: %w", err)
		}
		ecfg.FingerprintKey = bytes.TrimSpace(key)
	}
	eng, err := engine.New(ecfg)
	if err != nil {
		store.Close()
		return fmt.Errorf("engine: %w", err)
	}
	// Metrics read the server's counters at scrape time, through a
	// closure because the server is created after them.
	var srv *server.Server
	m, err := metrics.New(metrics.Options{
		Server:  func() server.AllStats { return srv.Stats() },
		Store:   store,
		Signals: sig,
		Version: version,
		Logger:  log,
	})
	if err != nil {
		eng.Close()
		return fmt.Errorf("metrics: %w", err)
	}
	defer m.Close()
	srv, err = server.New(server.Config{
		ObserveConn: m.ConnObserver,
		Security: func(kind, source, id, reason string) {
			sig.Report(security.Kind(kind), source, id, reason)
		},
		Engine:         eng,
		Listen:         cfg.Listen,
		Token:          cfg.Token,
		InsecureNoAuth: cfg.InsecureNoAuth,
		SocketMode:     cfg.SocketMode,
		SocketGroup:    cfg.SocketGroup,
		MaxFrame:       cfg.MaxFrame,
		IdleTimeout:    cfg.IdleTimeout,
		Logger:         log,
		Version:        version,
		Loops:          loops,
	})
	if err != nil {
		eng.Close()
		return err
	}
	if cfg.MetricsListen != "" {
		m.SetHealthCheck(func() error {
			if srv.ShuttingDown() {
				return errors.New("shutting down")
			}
			return nil
		})
		hs, err := m.Listen(cfg.MetricsListen)
		if err != nil {
			srv.Shutdown(context.Background())
			eng.Close()
			return fmt.Errorf("metrics listener: %w", err)
		}
		log.Info("metrics listening", "addr", "http://"+hs.Addr()+"/metrics")
		defer func() {
			c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			hs.Shutdown(c)
		}()
	}
	srv.Start()
	log.Info("phpsessd serving", "listen", strings.Join(srv.Addrs(), ","), "store", storeDesc,
		"version", version, "pid", os.Getpid(), "procs", runtime.GOMAXPROCS(0), "auth", cfg.Token != "", "config", cfg.ConfigFile)
	if ready != nil {
		ready(srv.Addrs())
	}

	<-ctx.Done()
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	serr := srv.Shutdown(sctx)
	if serr != nil {
		log.Warn("shutdown cut commands short", "err", serr)
	}
	// Only now, with every connection gone, flush and close the store.
	if err := eng.Close(); err != nil {
		return fmt.Errorf("closing engine and store: %w", err)
	}
	log.Info("phpsessd stopped")
	return nil
}

// openStore opens --store, or the embedded default: a files store in the
// data dir behind an LRU read cache. The cache is only put in front of the
// default store, where this daemon is the only writer; a shared store
// (Redis, a directory PHP writes too) must not be cached per daemon.
func openStore(ctx context.Context, cfg serveConfig) (handlers.Store, string, error) {
	if cfg.Store != "" {
		st, err := handlers.Open(ctx, cfg.Store)
		if err != nil {
			return nil, "", err
		}
		return st, redactURL(cfg.Store), nil
	}
	dir := filepath.Join(cfg.DataDir, "sessions")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", fmt.Errorf("data directory: %w", err)
	}
	u := "files://" + filepath.ToSlash(dir)
	st, err := handlers.Open(ctx, u)
	if err != nil {
		return nil, "", err
	}
	if cfg.CacheEntries == 0 {
		return st, u, nil
	}
	c, err := cache.New(st, cfg.CacheEntries)
	if err != nil {
		st.Close()
		return nil, "", fmt.Errorf("read cache: %w", err)
	}
	return c, fmt.Sprintf("%s (LRU read cache, %d entries)", u, cfg.CacheEntries), nil
}

// redactURL hides a password in a store URL before it reaches the log.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable store url)"
	}
	return u.Redacted()
}

// sealStore wraps store in encryption and compression when keys or a
// compression threshold are configured; otherwise it returns store as is.
func sealStore(store handlers.Store, cfg serveConfig, getenv func(string) string, log *slog.Logger) (handlers.Store, error) {
	keys, err := sealed.KeysFromEnv(getenv)
	if err == nil && cfg.KeysFile != "" {
		keys, err = sealed.LoadKeyFile(cfg.KeysFile)
	}
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("encryption keys: %w", err)
	}
	if len(keys) == 0 && cfg.CompressOver == 0 && !cfg.RequireEncrypted {
		return store, nil
	}
	ss, err := sealed.New(store, sealed.Options{Keys: keys, CompressOver: int(cfg.CompressOver), RequireEncrypted: cfg.RequireEncrypted})
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("sealing: %w", err)
	}
	log.Info("sealing sessions", "key", ss.CurrentKeyID(), "keys", len(keys), "compress_over", cfg.CompressOver)
	return ss, nil
}

// eventLoops resolves --event-loops for the store the daemon runs on. A
// loop runs commands on its own thread, so only a store that answers from
// memory qualifies; the engine reports its own lock waits.
func eventLoops(cfg serveConfig, store handlers.Store, locker engine.Locker) (int, error) {
	_, inMemory := store.(*memory.Store)
	inMemory = inMemory && locker == nil
	switch {
	case cfg.EventLoops < 0:
		if !inMemory || runtime.GOOS != "linux" {
			return 0, nil
		}
		return runtime.GOMAXPROCS(0), nil
	case cfg.EventLoops > 0 && !inMemory:
		return 0, fmt.Errorf("--event-loops %d: event loops run commands in place and need the memory:// store, which never blocks; use auto or 0 with this store", cfg.EventLoops)
	}
	return cfg.EventLoops, nil
}
