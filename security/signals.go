// Package security collects phpsessd's security signals: malformed and
// unknown session ids, authentication failures and fingerprint mismatches,
// counted per kind and per source. Each signal is logged at most once per
// kind and source per interval (with the number suppressed since), so a
// scanner cannot flood the log, and can be handed to an operator's hook,
// either a command that reads the event as JSON on stdin or an HTTP
// endpoint on loopback, to feed fail2ban-style blocking or alerting. Hook
// deliveries run on a bounded queue with bounded concurrency and a timeout,
// so a slow hook can never slow down or block a PHP request.
package security

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for zero Options.
const (
	DefaultLogEvery        = time.Minute
	DefaultMaxSources      = 10000
	DefaultHookTimeout     = 5 * time.Second
	DefaultHookConcurrency = 2
	DefaultHookQueue       = 256
)

// Options configure Signals.
type Options struct {
	Logger *slog.Logger
	// LogEvery: at most one log line (and one hook delivery) per kind and
	// source per interval; 0 means one minute.
	LogEvery time.Duration
	// MaxSources bounds the per-source table; when it is full, sources
	// not seen for LogEvery are evicted, and events of further sources are
	// accounted under the source "other" (one extra entry per kind).
	MaxSources int
	// Hook, if set, receives events: an http:// or https:// URL whose host
	// is a loopback address (or "localhost"), or the absolute path of an
	// executable, optionally followed by arguments separated by spaces (no
	// shell is involved). See ValidateHook.
	Hook string
	// HookTimeout bounds one delivery; 0 means 5 s.
	HookTimeout time.Duration
	// HookConcurrency bounds deliveries in flight; 0 means 2.
	HookConcurrency int
	// HookQueue bounds events waiting for delivery; beyond it events are
	// dropped and counted. 0 means 256.
	HookQueue int
	// Host is put in events; "" means os.Hostname().
	Host string

	now func() time.Time // tests
}

// Signals counts, logs and forwards security events. The zero value is
// not usable; create one with New and stop it with Close.
type Signals struct {
	opts Options
	log  *slog.Logger
	hook deliverer

	totals [numKinds]atomic.Uint64
	other  atomic.Uint64 // totals of kinds not in knownKinds

	mu      sync.Mutex
	sources map[sourceKey]*sourceState

	qmu        sync.RWMutex // guards sends against Close closing queue
	qclosed    bool
	queue      chan Event
	wg         sync.WaitGroup
	hookCtx    context.Context // parent of every delivery; cancelled by Close
	hookCancel context.CancelFunc
	closeOnce  sync.Once

	delivered, failed, dropped atomic.Uint64
	lastHookLog                atomic.Int64 // unix nanos of the last hook failure log
}

var knownKinds = [...]Kind{KindInvalidID, KindUnknownID, KindAuthFailure, KindFingerprintMismatch}

const numKinds = len(knownKinds)

type sourceKey struct {
	kind   Kind
	source string
}

type sourceState struct {
	count      uint64
	suppressed uint64
	lastEmit   time.Time
	lastSeen   time.Time
}

// New validates the options (a hook URL off loopback is refused here) and
// starts the hook workers when a hook is configured.
func New(o Options) (*Signals, error) {
	if o.LogEvery <= 0 {
		o.LogEvery = DefaultLogEvery
	}
	if o.MaxSources <= 0 {
		o.MaxSources = DefaultMaxSources
	}
	if o.HookTimeout <= 0 {
		o.HookTimeout = DefaultHookTimeout
	}
	if o.HookConcurrency <= 0 {
		o.HookConcurrency = DefaultHookConcurrency
	}
	if o.HookQueue <= 0 {
		o.HookQueue = DefaultHookQueue
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.Host == "" {
		o.Host, _ = os.Hostname()
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Signals{opts: o, log: log, sources: make(map[sourceKey]*sourceState)}
	s.hookCtx, s.hookCancel = context.WithCancel(context.Background())
	if o.Hook != "" {
		h, err := parseHook(o.Hook)
		if err != nil {
			s.hookCancel()
			return nil, err
		}
		s.hook = h
		s.queue = make(chan Event, o.HookQueue)
		for i := 0; i < o.HookConcurrency; i++ {
			s.wg.Add(1)
			go s.worker()
		}
	}
	return s, nil
}

// Report records one event. It never blocks on I/O: logging is rate
// limited and hook delivery is queued. id may be empty; it is only ever
// logged or posted verbatim for KindInvalidID (see Event.ID).
func (s *Signals) Report(kind Kind, source, id, reason string) {
	s.countKind(kind)
	if source == "" {
		source = "unknown"
	}
	now := s.opts.now()
	ev, emit := s.account(kind, clean(source, MaxSourceLen), now)
	if !emit {
		return
	}
	ev.Time = now
	ev.Reason = reason
	if id != "" {
		ev.IDHash = HashID(id)
		if kind == KindInvalidID {
			ev.ID = id
		}
	}
	ev.Host = s.opts.Host
	ev = ev.normalize()
	attrs := []any{"kind", string(ev.Kind), "source", ev.Source, "count", ev.Count, "suppressed_since_last", ev.Suppressed}
	if ev.ID != "" {
		attrs = append(attrs, "id", ev.ID)
	}
	if ev.IDHash != "" {
		attrs = append(attrs, "id_hash", ev.IDHash)
	}
	if ev.Reason != "" {
		attrs = append(attrs, "reason", ev.Reason)
	}
	s.log.Warn("security event", attrs...)
	s.enqueue(ev)
}

// OnInvalidID has the signature of engine.Config.OnInvalidID. The engine
// does not know the peer, so the source is "engine".
func (s *Signals) OnInvalidID(id, reason string) {
	s.Report(KindInvalidID, "engine", id, reason)
}

func (s *Signals) countKind(kind Kind) {
	for i, k := range knownKinds {
		if k == kind {
			s.totals[i].Add(1)
			return
		}
	}
	s.other.Add(1)
}

// account updates the per-source table and decides whether this event is
// logged and posted.
func (s *Signals) account(kind Kind, source string, now time.Time) (Event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := sourceKey{kind, source}
	st, ok := s.sources[key]
	if !ok {
		if len(s.sources) >= s.opts.MaxSources {
			s.evictLocked(now)
		}
		if len(s.sources) >= s.opts.MaxSources {
			key.source = "other"
			st = s.sources[key]
		}
		if st == nil {
			st = &sourceState{}
			s.sources[key] = st
		}
	}
	st.count++
	st.lastSeen = now
	if !st.lastEmit.IsZero() && now.Sub(st.lastEmit) < s.opts.LogEvery {
		st.suppressed++
		return Event{}, false
	}
	ev := Event{Kind: kind, Source: key.source, Count: st.count, Suppressed: st.suppressed}
	st.suppressed = 0
	st.lastEmit = now
	return ev, true
}

func (s *Signals) evictLocked(now time.Time) {
	for k, st := range s.sources {
		if now.Sub(st.lastSeen) >= s.opts.LogEvery && k.source != "other" {
			delete(s.sources, k)
		}
	}
}

func (s *Signals) enqueue(ev Event) {
	if s.hook == nil {
		return
	}
	s.qmu.RLock()
	defer s.qmu.RUnlock()
	if s.qclosed {
		return
	}
	select {
	case s.queue <- ev:
	default:
		s.dropped.Add(1)
		s.hookFailed("hook queue full; event dropped", nil)
	}
}

func (s *Signals) worker() {
	defer s.wg.Done()
	for ev := range s.queue {
		if s.hookCtx.Err() != nil {
			// Close ran out of time: what is still queued is dropped.
			s.dropped.Add(1)
			continue
		}
		s.deliver(ev)
	}
}

func (s *Signals) deliver(ev Event) {
	payload, err := EncodeEvent(ev)
	if err != nil {
		s.failed.Add(1)
		s.hookFailed("security hook: cannot encode event", err)
		return
	}
	ctx, cancel := context.WithTimeout(s.hookCtx, s.opts.HookTimeout)
	defer cancel()
	if err := s.hook.deliver(ctx, payload); err != nil {
		s.failed.Add(1)
		s.hookFailed("security hook failed", err)
		return
	}
	s.delivered.Add(1)
}

// hookFailed logs hook trouble at most once per LogEvery: a broken hook
// must not turn every event into a log line.
func (s *Signals) hookFailed(msg string, err error) {
	now := s.opts.now().UnixNano()
	last := s.lastHookLog.Load()
	if last != 0 && now-last < int64(s.opts.LogEvery) {
		return
	}
	if !s.lastHookLog.CompareAndSwap(last, now) {
		return
	}
	s.log.Warn(msg, "hook", s.hook.String(), "err", err,
		"delivered", s.delivered.Load(), "failed", s.failed.Load(), "dropped", s.dropped.Load())
}

// Close stops the hook workers. Queued events are still delivered until
// ctx ends; then deliveries in flight are cancelled (commands killed, HTTP
// requests aborted), the events still queued are dropped, and Close
// returns ctx's error. Reports after Close are counted and logged only.
func (s *Signals) Close(ctx context.Context) error {
	var err error
	s.closeOnce.Do(func() {
		defer s.hookCancel()
		if s.hook == nil {
			return
		}
		s.qmu.Lock()
		s.qclosed = true
		close(s.queue)
		s.qmu.Unlock()
		done := make(chan struct{})
		go func() { s.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			s.hookCancel()
			<-done
			err = fmt.Errorf("security: hook deliveries cut short: %w", ctx.Err())
		}
	})
	return err
}

// Counts returns the number of events per kind since start.
func (s *Signals) Counts() map[Kind]uint64 {
	out := make(map[Kind]uint64, numKinds+1)
	for i, k := range knownKinds {
		out[k] = s.totals[i].Load()
	}
	if n := s.other.Load(); n > 0 {
		out["other"] = n
	}
	return out
}

// SourceCount returns how many events of kind came from source (0 once
// the source was evicted from the bounded table).
func (s *Signals) SourceCount(kind Kind, source string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.sources[sourceKey{kind, source}]; ok {
		return st.count
	}
	return 0
}

// HookStats reports hook deliveries that succeeded, failed and were
// dropped because the queue was full.
type HookStats struct {
	Delivered, Failed, Dropped uint64
}

// HookStats returns the delivery counters.
func (s *Signals) HookStats() HookStats {
	return HookStats{Delivered: s.delivered.Load(), Failed: s.failed.Load(), Dropped: s.dropped.Load()}
}
