package engine

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/phpsessd/phpsessd/handlers"
)

const (
	// maxCASRetries bounds the load-merge-save loop. Writers inside one
	// daemon are serialised per session (see Engine.shards), so retries only
	// happen when several daemons share a store.
	maxCASRetries = 32
	// maxAliasHops bounds alias chains (a session regenerated twice within
	// the grace period makes a chain of two).
	maxAliasHops = 8
	numShards    = 256
)

// Engine is one session engine over one store.
type Engine struct {
	cfg       Config
	store     handlers.Store
	locker    Locker
	ownLocker *MemLocker // the locker New created, closed by Close
	log       *slog.Logger

	keyRules []compiledKeyRule
	counters []keyPattern
	bases    *baseCache
	// exactVersions: the store hands out versions that change with every
	// save (see handlers.ExactVersioner), so a write from an exact base
	// with such a version may skip the load and save against the version
	// it read. versioner says which versions those are; tests switch the
	// whole path off through exactVersions.
	exactVersions bool
	versioner     handlers.ExactVersioner

	// shards serialise the load-merge-save of writes to one session inside
	// this daemon so concurrent writers queue instead of burning CAS
	// retries; the store's compare-and-swap still guards across daemons.
	// A channel per shard so waiting honours ctx.
	shards [numShards]chan struct{}
	seed   maphash.Seed

	st           counters
	sweptSinceGC atomic.Int64
	closed       atomic.Bool
	closeOnce    sync.Once
	stopSweep    context.CancelFunc
	sweepDone    chan struct{}

	invalidLog rateLog

	refs  refState // refs.go
	fpLog rateLog  // fingerprint.go
}

type counters struct {
	reads, writes, merges, dropped, unchanged     atomic.Uint64
	conflictsMine, conflictsTheirs, conflictsFail atomic.Uint64
	lockTimeouts                                  atomic.Uint64
	invalidIDs, unknownIDs, regenerates, swept    atomic.Uint64
	locksHeld, clients                            atomic.Int64
}

// NewConfig returns a Config over store with every default filled in and
// strict ids on, which is what the daemon uses.
func NewConfig(store handlers.Store) Config {
	cfg := Config{Store: store, StrictIDs: true}
	cfg.fillDefaults()
	return cfg
}

// Defaults for the zero values of Config.
const (
	DefaultLockWait        = 30 * time.Second
	DefaultLockLease       = 5 * time.Minute
	DefaultRegenerateGrace = 10 * time.Second
	DefaultTTL             = 1440 * time.Second
	DefaultSweepInterval   = 30 * time.Second
	DefaultMaxIDLength     = 256
	DefaultMaxDataSize     = 16 << 20
	DefaultBaseCacheSize   = 4096
	DefaultBaseCacheBytes  = 64 << 20
	DefaultBaseCacheTTL    = 10 * time.Minute
)

func (c *Config) fillDefaults() {
	if c.LockWait <= 0 {
		c.LockWait = DefaultLockWait
	}
	if c.LockLease <= 0 {
		c.LockLease = DefaultLockLease
	}
	if c.RegenerateGrace <= 0 {
		c.RegenerateGrace = DefaultRegenerateGrace
	}
	if c.DefaultTTL <= 0 {
		c.DefaultTTL = DefaultTTL
	}
	if c.SweepInterval <= 0 {
		c.SweepInterval = DefaultSweepInterval
	}
	if c.MaxIDLength <= 0 || c.MaxIDLength > DefaultMaxIDLength {
		c.MaxIDLength = DefaultMaxIDLength
	}
	if c.MaxDataSize <= 0 {
		c.MaxDataSize = DefaultMaxDataSize
	}
	if c.BaseCacheSize <= 0 {
		c.BaseCacheSize = DefaultBaseCacheSize
	}
	if c.BaseCacheBytes <= 0 {
		c.BaseCacheBytes = DefaultBaseCacheBytes
	}
	if c.BaseCacheTTL <= 0 {
		c.BaseCacheTTL = DefaultBaseCacheTTL
	}
}

// New validates cfg, fills defaults and starts the expiry sweeper.
func New(cfg Config) (*Engine, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("engine: %w: no store", ErrBadRequest)
	}
	cfg.fillDefaults()
	keyRules, ctrs, err := compileRules(&cfg)
	if err != nil {
		return nil, fmt.Errorf("engine: %w: %v", ErrBadRequest, err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	e := &Engine{
		cfg: cfg, store: cfg.Store, locker: cfg.Locker, log: log,
		keyRules: keyRules, counters: ctrs,
		bases: newBaseCache(cfg.BaseCacheSize, cfg.BaseCacheBytes, cfg.BaseCacheTTL),
		seed:  maphash.MakeSeed(),
	}
	if ev, ok := cfg.Store.(handlers.ExactVersioner); ok {
		e.exactVersions, e.versioner = true, ev
	}
	if e.locker == nil {
		e.ownLocker = NewMemLocker(log)
		e.locker = e.ownLocker
	}
	for i := range e.shards {
		e.shards[i] = make(chan struct{}, 1)
	}
	e.invalidLog.every = time.Second
	e.fpLog.every = time.Second
	e.startSweeper()
	return e, nil
}

// Close stops the sweeper, releases every lock and closes the store.
func (e *Engine) Close() error {
	var err error
	e.closeOnce.Do(func() {
		e.closed.Store(true)
		e.stopSweeper()
		if e.ownLocker != nil {
			e.ownLocker.Close()
		}
		if cerr := e.store.Close(); cerr != nil {
			err = fmt.Errorf("engine: close store: %w", cerr)
		}
	})
	return err
}

func (e *Engine) enter() error {
	if e.closed.Load() {
		return ErrClosed
	}
	return nil
}

// lockShard waits for the per-session write slot.
func (e *Engine) lockShard(ctx context.Context, id string) (shardSlot, error) {
	ch := e.shards[maphash.String(e.seed, id)%numShards]
	select {
	case ch <- struct{}{}:
		return ch, nil
	default:
	}
	beforeWait(ctx)
	select {
	case ch <- struct{}{}:
		return ch, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("write session %s: %w", id, ctx.Err())
	}
}

// shardSlot is a held write slot. A type with a method, not a closure,
// because every WRITE takes one and a closure would be an allocation.
type shardSlot chan struct{}

func (s shardSlot) unlock() { <-s }

// resolved is a session after following regenerate aliases.
type resolved struct {
	id      string   // where the session data lives
	aliases []string // alias ids followed to get there, in order
	rec     handlers.Record
	meta    sessionMeta
	found   bool
}

// resolve loads id and follows alias records to the session they name.
func (e *Engine) resolve(ctx context.Context, id string) (resolved, error) {
	var res resolved
	cur := id
	for hop := 0; hop <= maxAliasHops; hop++ {
		rec, err := e.store.Load(ctx, cur)
		if errors.Is(err, handlers.ErrNotFound) {
			res.id = cur
			return res, nil
		}
		if err != nil {
			return resolved{}, fmt.Errorf("load session %s: %w", cur, err)
		}
		m, merr := decodeMeta(rec.Meta)
		if merr != nil {
			e.log.Warn("ignoring unreadable session metadata", "session", shortID(cur), "err", merr)
		}
		if m.Alias == "" {
			res.id, res.rec, res.meta, res.found = cur, rec, m, true
			return res, nil
		}
		res.aliases = append(res.aliases, cur)
		cur = m.Alias
	}
	return resolved{}, fmt.Errorf("session %s: alias chain longer than %d", id, maxAliasHops)
}

// exactVersion reports whether a write from a base at version v may save
// without loading first.
func (e *Engine) exactVersion(v uint64) bool {
	return e.exactVersions && v != 0 && (e.versioner == nil || e.versioner.ExactVersion(v))
}

func (e *Engine) ttl(t time.Duration) time.Duration {
	if t <= 0 {
		return e.cfg.DefaultTTL
	}
	return t
}

// Stats returns the counters.
func (e *Engine) Stats() Stats {
	s := Stats{
		Reads: e.st.reads.Load(), Writes: e.st.writes.Load(), Merges: e.st.merges.Load(),
		Dropped: e.st.dropped.Load(), Unchanged: e.st.unchanged.Load(),
		ConflictsMine: e.st.conflictsMine.Load(), ConflictsTheirs: e.st.conflictsTheirs.Load(), ConflictsFail: e.st.conflictsFail.Load(),
		LockTimeouts: e.st.lockTimeouts.Load(),
		InvalidIDs:   e.st.invalidIDs.Load(), UnknownIDs: e.st.unknownIDs.Load(),
		Regenerates: e.st.regenerates.Load(), Swept: e.st.swept.Load(),
		LocksHeld: e.st.locksHeld.Load(), Clients: e.st.clients.Load(),
	}
	// The total is derived from the loaded parts so a scrape never sees
	// it disagree with their sum.
	s.Conflicts = s.ConflictsMine + s.ConflictsTheirs + s.ConflictsFail
	if e.ownLocker != nil {
		ls := e.ownLocker.Stats()
		// The locker knows about leases that ran out; the clients do not.
		s.LockWaits, s.LockHandOffs, s.LocksHeld = ls.Waits, ls.HandOffs, ls.Held
	}
	return s
}

// Info describes a session for admins.
func (e *Engine) Info(ctx context.Context, id string) (Info, error) {
	if err := e.enter(); err != nil {
		return Info{}, err
	}
	if err := e.checkID(id); err != nil {
		return Info{}, err
	}
	res, err := e.resolve(ctx, id)
	if err != nil {
		return Info{}, err
	}
	info := Info{ID: id, Exists: res.found}
	if len(res.aliases) > 0 {
		info.AliasOf = res.id
	}
	if res.found {
		info.Version = res.rec.Version
		info.Size = len(res.rec.Data)
		info.Format = res.meta.Format
		info.Expires = res.rec.Expires
		info.Data = jsonView(res.rec.Data, res.meta.Format)
		info.Refs = res.meta.Refs
	}
	if li, ok := e.locker.(LockInspector); ok {
		if h, ok := li.Holder(res.id); ok {
			info.LockHolder = h.Owner
		}
	}
	return info, nil
}

// LockInfo reports who holds the lock on id, when the locker can tell.
func (e *Engine) LockInfo(id string) (LockInfo, bool) {
	if li, ok := e.locker.(LockInspector); ok {
		return li.Holder(id)
	}
	return LockInfo{}, false
}

// rateLog lets one message through per interval and counts the rest, so a
// scanner hammering bad ids cannot flood the log.
type rateLog struct {
	mu         sync.Mutex
	every      time.Duration
	last       time.Time
	suppressed int
}

func (r *rateLog) allow() (ok bool, suppressed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if now.Sub(r.last) < r.every {
		r.suppressed++
		return false, 0
	}
	r.last = now
	s := r.suppressed
	r.suppressed = 0
	return true, s
}
