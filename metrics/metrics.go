// Package metrics exposes phpsessd's counters to Prometheus. Almost
// everything is read at scrape time from the counters the engine and the
// server already keep (engine.Stats, server.AllStats), so serving metrics
// adds no work to a request; the only per-request cost is the observer the
// server calls once per command to fill the latency histograms and the
// per-mode request counts, which the existing counters cannot provide.
// Each connection gets its own observer bound to one of a few shards, so
// requests on different CPUs do not fight over one histogram; a scrape adds
// the shards up. The number of stored sessions is counted at most once
// per Options.ScanEvery, in the background, when a scrape finds the last
// count stale: through handlers.Sizer when the store implements it, which
// also gives the bytes stored, otherwise through a Scan. Bytes are only
// exported for a Sizer: a Scan lists ids and expiries, and measuring sizes
// from it would mean loading every session.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/phpsessd/phpsessd/engine"
	"github.com/phpsessd/phpsessd/handlers"
	"github.com/phpsessd/phpsessd/security"
	"github.com/phpsessd/phpsessd/server"
)

// Namespace prefixes every metric name.
const Namespace = "phpsessd"

// DefaultScanEvery is the default minimum interval between session counts.
const DefaultScanEvery = 60 * time.Second

// Options say where the numbers come from. Every source is optional.
type Options struct {
	// Engine supplies engine.Stats (also reachable through Server, but a
	// daemon-less test or tool may only have an engine).
	Engine func() engine.Stats
	// Server supplies server.AllStats; when set, its Engine part is used
	// and Engine above is ignored.
	Server func() server.AllStats
	// Signals, when set, exports security event counts and hook results.
	Signals *security.Signals
	// Store, when set, is counted for live sessions (and bytes stored,
	// when it is a handlers.Sizer).
	Store handlers.Store
	// ScanEvery is the minimum interval between two scans; 0: 60 s,
	// negative: never scan.
	ScanEvery time.Duration
	// ScanTimeout bounds one scan; 0: 30 s.
	ScanTimeout time.Duration
	// Version is exported as phpsessd_build_info{version}.
	Version string
	Logger  *slog.Logger
}

// Metrics owns a Prometheus registry with phpsessd's collector, the Go
// runtime and process collectors, and the per-command histograms.
type Metrics struct {
	opts     Options
	log      *slog.Logger
	reg      *prometheus.Registry
	commands *commandCollector

	scanMu      sync.Mutex
	scanning    bool
	lastScan    time.Time
	sessions    atomic.Int64 // -1 until the first count finished
	bytes       atomic.Int64 // -1 until a Sizer answered; stays -1 without one
	noSizer     atomic.Bool  // the store's Size said it cannot: Scan from then on
	scanErrors  atomic.Uint64
	scanCtx     context.Context
	scanCancel  context.CancelFunc
	scanWG      sync.WaitGroup
	closeOnce   sync.Once
	healthCheck atomic.Pointer[func() error]
}

// New builds the registry. Close stops a scan in progress.
func New(o Options) (*Metrics, error) {
	if o.ScanEvery == 0 {
		o.ScanEvery = DefaultScanEvery
	}
	if o.ScanTimeout <= 0 {
		o.ScanTimeout = 30 * time.Second
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	m := &Metrics{opts: o, log: log, reg: prometheus.NewRegistry()}
	m.sessions.Store(-1)
	m.bytes.Store(-1)
	m.scanCtx, m.scanCancel = context.WithCancel(context.Background())
	// 50 µs .. ~52 s: an in-memory READ is tens of µs, a locked READ may
	// wait up to the lock deadline.
	m.commands = newCommandCollector(prometheus.ExponentialBuckets(50e-6, 4, 11))
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "build_info", Help: "Always 1; the version label says which build runs.",
		ConstLabels: prometheus.Labels{"version": o.Version},
	})
	build.Set(1)
	for _, c := range []prometheus.Collector{
		m.commands, build, &statsCollector{m: m},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := m.reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Registry is the registry /metrics serves; callers may add collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// SetHealthCheck makes /healthz report the function's error as 503 (for
// example while the server shuts down).
func (m *Metrics) SetHealthCheck(f func() error) { m.healthCheck.Store(&f) }

// ConnObserver returns the per-command hook for one connection: cmd is the
// command name, mode the mode granted to READ/LOCK ("" otherwise), took the
// time from dispatch to reply, code the protocol error code ("" on
// success). Connections are spread over a few shards as they come; a hook
// is safe for concurrent use, but the server calls each from its own
// connection only. After the first call per command and mode on a shard it
// does not allocate.
func (m *Metrics) ConnObserver() func(cmd, mode string, took time.Duration, code string) {
	sh := m.commands.nextShard()
	return func(cmd, mode string, took time.Duration, code string) {
		m.commands.observe(sh, cmd, mode, took, code)
	}
}

// ObserveCommand counts one command the way a ConnObserver hook does, for
// callers without a connection of their own.
func (m *Metrics) ObserveCommand(cmd, mode string, took time.Duration, code string) {
	m.commands.observe(m.commands.nextShard(), cmd, mode, took, code)
}

// Close stops a session scan in progress and waits for it.
func (m *Metrics) Close() error {
	m.closeOnce.Do(func() {
		m.scanCancel()
		m.scanWG.Wait()
	})
	return nil
}

// maybeScan starts a background session count when the last one is older
// than ScanEvery. A scrape never waits for it: it reports the previous
// count, so a slow directory walk cannot time a scrape out.
func (m *Metrics) maybeScan() {
	if m.opts.Store == nil || m.opts.ScanEvery < 0 {
		return
	}
	m.scanMu.Lock()
	defer m.scanMu.Unlock()
	if m.scanning || time.Since(m.lastScan) < m.opts.ScanEvery || m.scanCtx.Err() != nil {
		return
	}
	m.scanning = true
	m.lastScan = time.Now()
	m.scanWG.Add(1)
	go func() {
		defer m.scanWG.Done()
		ctx, cancel := context.WithTimeout(m.scanCtx, m.opts.ScanTimeout)
		defer cancel()
		err := m.count(ctx)
		switch {
		case err == nil:
		case errors.Is(err, context.Canceled) && m.scanCtx.Err() != nil:
		default:
			m.scanErrors.Add(1)
			m.log.Warn("metrics: counting sessions failed", "err", err)
		}
		m.scanMu.Lock()
		m.scanning = false
		m.scanMu.Unlock()
	}()
}

// count stores the session count, and the bytes when the store can size
// itself. A decorator over a store that cannot answers ErrSizeUnsupported
// on every call, so that is remembered and Scan used from then on.
func (m *Metrics) count(ctx context.Context) error {
	if sz, ok := m.opts.Store.(handlers.Sizer); ok && !m.noSizer.Load() {
		n, b, err := sz.Size(ctx)
		switch {
		case err == nil:
			m.sessions.Store(n)
			m.bytes.Store(b)
			return nil
		case errors.Is(err, handlers.ErrSizeUnsupported):
			m.noSizer.Store(true)
			m.bytes.Store(-1)
		default:
			return fmt.Errorf("size store: %w", err)
		}
	}
	var n int64
	err := m.opts.Store.Scan(ctx, func(string, time.Time) error {
		n++
		return nil
	})
	if err != nil {
		return fmt.Errorf("scan store: %w", err)
	}
	m.sessions.Store(n)
	return nil
}
