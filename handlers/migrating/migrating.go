// Package migrating is a handlers.Store decorator for moving live sessions
// from one store to another without a flag day and without touching the
// application: until a cut-over time, reads look in the new store first and
// fall back to the old one (copying a session found there into the new
// store, with its remaining lifetime), while every write goes to the new
// store only; Delete removes a session from both so a destroyed session
// cannot come back from the old store, and Scan reports the union. From
// the cut-over time on the old store is no longer consulted at all, so a
// deployment can leave the configuration in place and the old store can be
// retired after that date. It is opened as
// migrating://?old=<escaped URL>&new=<escaped URL>&until=<RFC 3339 time>
// or built with New.
package migrating

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/phpsessd/phpsessd/engine"
	"github.com/phpsessd/phpsessd/handlers"
)

func init() {
	handlers.Register("migrating", open)
}

// Store serves sessions from New while falling back to Old until Until.
// It is no handlers.Sizer even when both stores are: before the cut-over a
// session copied on first access is held by both, and adding their sizes
// would count it twice; only Scan, which remembers new's ids, can tell, so
// metrics keep counting through Scan.
type Store struct {
	old, new handlers.Store
	until    time.Time
	now      func() time.Time

	copied atomic.Uint64
	closed atomic.Bool
}

var _ handlers.Store = (*Store)(nil)

// New returns a store that reads newStore first and falls back to
// oldStore until the time until. It takes ownership of both: Close closes
// them.
func New(oldStore, newStore handlers.Store, until time.Time) (*Store, error) {
	if oldStore == nil || newStore == nil {
		return nil, errors.New("migrating store: old and new stores are both required")
	}
	if until.IsZero() {
		return nil, errors.New("migrating store: a cut-over time is required")
	}
	return &Store{old: oldStore, new: newStore, until: until, now: time.Now}, nil
}

// open reads migrating://?old=…&new=…&until=…. The nested URLs are query
// values, so they must be escaped (url.QueryEscape) when they carry their
// own query strings.
func open(ctx context.Context, u *url.URL) (handlers.Store, error) {
	if u.Host != "" || (u.Path != "" && u.Path != "/") || u.Opaque != "" {
		return nil, fmt.Errorf("migrating store: put everything in the query: migrating://?old=URL&new=URL&until=TIME")
	}
	q := u.Query()
	for k := range q {
		switch k {
		case "old", "new", "until":
		default:
			return nil, fmt.Errorf("migrating store: unknown option %q", k)
		}
	}
	oldURL, newURL, untilS := q.Get("old"), q.Get("new"), q.Get("until")
	if oldURL == "" || newURL == "" || untilS == "" {
		return nil, errors.New("migrating store: old=, new= and until= are all required")
	}
	if oldURL == newURL {
		return nil, errors.New("migrating store: old and new name the same store")
	}
	until, err := time.Parse(time.RFC3339, untilS)
	if err != nil {
		return nil, fmt.Errorf("migrating store: until=%q: want an RFC 3339 time such as 2026-12-31T00:00:00Z: %w", untilS, err)
	}
	oldStore, err := handlers.Open(ctx, oldURL)
	if err != nil {
		return nil, fmt.Errorf("migrating store: old: %w", err)
	}
	newStore, err := handlers.Open(ctx, newURL)
	if err != nil {
		_ = oldStore.Close()
		return nil, fmt.Errorf("migrating store: new: %w", err)
	}
	return New(oldStore, newStore, until)
}

// Old returns the store being migrated from.
func (s *Store) Old() handlers.Store { return s.old }

// New returns the store being migrated to.
func (s *Store) New() handlers.Store { return s.new }

// Until returns the cut-over time.
func (s *Store) Until() time.Time { return s.until }

// Copied reports how many sessions this store has copied from old to new
// on first access, for logs and metrics.
func (s *Store) Copied() uint64 { return s.copied.Load() }

// EngineLocker returns the cross-daemon locker of the new store if it has
// one, else of the old store, else nil (the engine then locks in process).
// Daemons sharing a store only exclude each other through its locker, so
// hiding it behind the wrapper would drop mutual exclusion for the whole
// migration. New wins because every daemon keeps using it after the
// cut-over and once the wrapper is removed, so locks never move between
// backends during the rollout; old is the fallback so a fleet that shared
// its old store keeps excluding itself while moving to a store without a
// locker. The choice ignores the cut-over time on purpose: switching
// lockers at until would let two daemons hold one session in two backends.
func (s *Store) EngineLocker() engine.Locker {
	for _, st := range []handlers.Store{s.new, s.old} {
		if lp, ok := st.(interface{ EngineLocker() engine.Locker }); ok {
			// A nested wrapper may have none to offer.
			if l := lp.EngineLocker(); l != nil {
				return l
			}
		}
	}
	return nil
}

var errClosed = errors.New("migrating store: closed")

func (s *Store) check() error {
	if s.closed.Load() {
		return fmt.Errorf("%w: %w", handlers.ErrUnavailable, errClosed)
	}
	return nil
}

// migrating reports whether the old store is still consulted.
func (s *Store) migrating() bool { return s.now().Before(s.until) }

// Load implements handlers.Store.
func (s *Store) Load(ctx context.Context, id string) (handlers.Record, error) {
	if err := s.check(); err != nil {
		return handlers.Record{}, err
	}
	rec, err := s.new.Load(ctx, id)
	if !errors.Is(err, handlers.ErrNotFound) || !s.migrating() {
		return rec, err
	}
	return s.pull(ctx, id)
}

// pull copies id from old into new and returns new's record, so the
// version the caller gets is one that new's compare-and-swap accepts.
func (s *Store) pull(ctx context.Context, id string) (handlers.Record, error) {
	rec, err := s.old.Load(ctx, id)
	if err != nil {
		if errors.Is(err, handlers.ErrNotFound) {
			return handlers.Record{}, err
		}
		return handlers.Record{}, fmt.Errorf("migrating store: load %s from old: %w", id, err)
	}
	v, err := s.new.Save(ctx, id, rec, 0)
	switch {
	case err == nil:
		s.copied.Add(1)
		rec.Version = v
		return rec, nil
	case errors.Is(err, handlers.ErrVersionMismatch):
		// Someone created it in new meanwhile (a concurrent first read, or
		// a write): new's record is the newer truth.
		return s.new.Load(ctx, id)
	default:
		return handlers.Record{}, fmt.Errorf("migrating store: copy %s to new: %w", id, err)
	}
}

// Save implements handlers.Store. Creating a session (expect 0) first
// pulls an existing old record into new, so that "absent" means absent in
// both stores and the compare-and-swap fails as it would on one store.
func (s *Store) Save(ctx context.Context, id string, rec handlers.Record, expect uint64) (uint64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	if expect == 0 && s.migrating() {
		if _, err := s.new.Load(ctx, id); errors.Is(err, handlers.ErrNotFound) {
			if _, err := s.pull(ctx, id); err != nil && !errors.Is(err, handlers.ErrNotFound) {
				return 0, err
			}
		}
		// Any other Load error: new.Save below reports it with context.
	}
	return s.new.Save(ctx, id, rec, expect)
}

// Touch implements handlers.Store; a session still only in old is pulled
// into new first.
func (s *Store) Touch(ctx context.Context, id string, expires time.Time) error {
	if err := s.check(); err != nil {
		return err
	}
	err := s.new.Touch(ctx, id, expires)
	if !errors.Is(err, handlers.ErrNotFound) || !s.migrating() {
		return err
	}
	if _, err := s.pull(ctx, id); err != nil {
		return err
	}
	return s.new.Touch(ctx, id, expires)
}

// Delete implements handlers.Store. Before the cut-over it deletes from
// both stores, so a destroyed session is not found again in old.
func (s *Store) Delete(ctx context.Context, id string) (bool, error) {
	if err := s.check(); err != nil {
		return false, err
	}
	existed, err := s.new.Delete(ctx, id)
	if err != nil || !s.migrating() {
		return existed, err
	}
	oldExisted, err := s.old.Delete(ctx, id)
	if err != nil {
		return existed, fmt.Errorf("migrating store: delete %s from old: %w", id, err)
	}
	return existed || oldExisted, nil
}

// Scan implements handlers.Store. Before the cut-over it walks new, then
// old, reporting an id of old only if new did not; it keeps the ids seen
// in new in memory (roughly 50 bytes each) to do so.
func (s *Store) Scan(ctx context.Context, fn func(id string, expires time.Time) error) error {
	if err := s.check(); err != nil {
		return err
	}
	if !s.migrating() {
		return s.new.Scan(ctx, fn)
	}
	seen := make(map[string]struct{})
	err := s.new.Scan(ctx, func(id string, exp time.Time) error {
		seen[id] = struct{}{}
		return fn(id, exp)
	})
	if err != nil {
		return err
	}
	return s.old.Scan(ctx, func(id string, exp time.Time) error {
		if _, dup := seen[id]; dup {
			return nil
		}
		return fn(id, exp)
	})
}

// Sweep implements handlers.Store. Old is swept too before the cut-over:
// nothing else may be collecting its garbage any more.
func (s *Store) Sweep(ctx context.Context, now time.Time) (int, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	n, err := s.new.Sweep(ctx, now)
	if err != nil || !s.migrating() {
		return n, err
	}
	m, err := s.old.Sweep(ctx, now)
	if err != nil {
		return n, fmt.Errorf("migrating store: sweep old: %w", err)
	}
	return n + m, nil
}

// Close implements handlers.Store; it closes both stores.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return errors.Join(s.new.Close(), s.old.Close())
}
