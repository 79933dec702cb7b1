// Package memory is the memory:// session store: sessions live in the
// daemon's heap, bounded by an entry count and a byte budget through an LRU
// (least recently used sessions are evicted first), with per-record expiry
// and compare-and-swap versions drawn from one store-wide counter. It suits
// a single daemon that may lose sessions on restart; the layout is kept
// compact (one allocation for data and meta, one LRU node with the record
// inline) because 100k sessions must cost little more than their payload.
//
// URL options: memory://?max_entries=1000000&max_bytes=1073741824
package memory

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/phpsessd/phpsessd/handlers"
)

func init() {
	handlers.Register("memory", func(_ context.Context, u *url.URL) (handlers.Store, error) {
		o, err := ParseOptions(u)
		if err != nil {
			return nil, err
		}
		return New(o)
	})
}

const (
	// DefaultMaxEntries bounds the LRU when the URL sets no max_entries.
	DefaultMaxEntries = 1_000_000
	// DefaultMaxBytes bounds the accounted bytes when the URL sets no
	// max_bytes.
	DefaultMaxBytes = 1 << 30
	// EntryOverhead is what one session costs beyond its id, data and meta
	// bytes (LRU node, map slot, id string header). It is charged against
	// max_bytes so the byte budget tracks real heap use, not only payload.
	EntryOverhead = 192
	// MaxIDLength bounds ids; longer ones are refused.
	MaxIDLength = 1024
	// sweepBatch keeps each lock hold of Sweep short so that loads and saves
	// interleave with a sweep over a large store.
	sweepBatch = 1024
)

// ErrTooLarge is returned by Save for a record that alone exceeds max_bytes.
var ErrTooLarge = errors.New("memory store: record larger than max_bytes")

// ErrClosed is returned by every call after Close.
var ErrClosed = fmt.Errorf("memory store: closed: %w", handlers.ErrUnavailable)

// Options bound the store. Zero values mean the defaults.
type Options struct {
	MaxEntries int
	MaxBytes   int64
}

// ParseOptions reads max_entries and max_bytes from a memory:// URL.
func ParseOptions(u *url.URL) (Options, error) {
	var o Options
	q := u.Query()
	for k := range q {
		if k != "max_entries" && k != "max_bytes" {
			return o, fmt.Errorf("memory store: unknown option %q", k)
		}
	}
	if v := q.Get("max_entries"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return o, fmt.Errorf("memory store: max_entries %q: want a positive integer", v)
		}
		o.MaxEntries = n
	}
	if v := q.Get("max_bytes"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return o, fmt.Errorf("memory store: max_bytes %q: want a positive integer", v)
		}
		o.MaxBytes = n
	}
	return o, nil
}

// entry is kept inline in the LRU node. Data and meta share one buffer
// (data first, meta after dataLen) to save an allocation and a slice header
// per session.
type entry struct {
	buf     []byte
	dataLen int
	version uint64
	expires int64 // see Store.deadline; 0 never expires
}

func (e *entry) expired(now int64) bool { return e.expires != 0 && now > e.expires }

func cost(id string, e entry) int64 { return int64(len(id)+len(e.buf)) + EntryOverhead }

// Store is the memory store. Use New or handlers.Open("memory://...").
type Store struct {
	maxBytes int64
	// epoch is when the store was made. Deadlines are kept as nanoseconds
	// since then on the monotonic clock: every Load and Save reads the
	// clock, and the monotonic clock alone costs half of time.Now, which
	// reads the wall clock too. A step of the wall clock then neither
	// expires nor revives sessions.
	epoch time.Time

	mu      sync.Mutex
	lru     *simplelru.LRU[string, entry]
	bytes   int64
	counter uint64
	closed  bool
}

// New creates a memory store.
func New(o Options) (*Store, error) {
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	s := &Store{maxBytes: o.MaxBytes, epoch: time.Now()}
	l, err := simplelru.NewLRU[string, entry](o.MaxEntries, func(id string, e entry) {
		// Called with s.mu held for every removal, eviction or purge.
		s.bytes -= cost(id, e)
	})
	if err != nil {
		return nil, fmt.Errorf("memory store: %w", err)
	}
	s.lru = l
	return s, nil
}

// validID accepts the session id alphabet PHP itself allows
// ([A-Za-z0-9,-]); the engine validates first, this is defence in depth.
func validID(id string) error {
	if id == "" || len(id) > MaxIDLength {
		return fmt.Errorf("memory store: invalid session id of length %d", len(id))
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == ',' || c == '-') {
			return fmt.Errorf("memory store: invalid character %q in session id", c)
		}
	}
	return nil
}

func (s *Store) check(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory store: %w", err)
	}
	return validID(id)
}

// now is the current time in the unit of entry.expires.
func (s *Store) now() int64 { return int64(time.Since(s.epoch)) }

// deadline turns an expiry into the unit of entry.expires.
func (s *Store) deadline(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	// Sub uses the monotonic readings when t has one (time.Now().Add(ttl)
	// does) and the wall clock otherwise; times before the epoch come out
	// negative, already expired.
	n := int64(t.Sub(s.epoch))
	if n == 0 {
		n = 1 // 0 means "never"
	}
	return n
}

func (s *Store) expiresTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return s.epoch.Add(time.Duration(n))
}

// Load implements handlers.Store.
func (s *Store) Load(ctx context.Context, id string) (handlers.Record, error) {
	if err := s.check(ctx, id); err != nil {
		return handlers.Record{}, err
	}
	now := s.now()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return handlers.Record{}, ErrClosed
	}
	e, ok := s.lru.Get(id)
	if ok && e.expired(now) {
		s.lru.Remove(id)
		ok = false
	}
	s.mu.Unlock()
	if !ok {
		return handlers.Record{}, handlers.ErrNotFound
	}
	// buf is never written after it is stored (Save swaps in a new one), so
	// copying outside the lock is safe and keeps the critical section short.
	// One allocation for data and meta, each capped so an append to one
	// cannot run into the other.
	buf := append(make([]byte, 0, len(e.buf)), e.buf...)
	rec := handlers.Record{
		Data:    buf[:e.dataLen:e.dataLen],
		Version: e.version,
		Expires: s.expiresTime(e.expires),
	}
	if len(buf) > e.dataLen {
		rec.Meta = buf[e.dataLen:len(buf):len(buf)]
	}
	return rec, nil
}

// ExactVersion implements handlers.ExactVersioner: every Save takes the
// next value of one store-wide counter.
func (s *Store) ExactVersion(uint64) bool { return true }

// Save implements handlers.Store.
func (s *Store) Save(ctx context.Context, id string, rec handlers.Record, expect uint64) (uint64, error) {
	if err := s.check(ctx, id); err != nil {
		return 0, err
	}
	buf := make([]byte, len(rec.Data)+len(rec.Meta))
	copy(buf, rec.Data)
	copy(buf[len(rec.Data):], rec.Meta)
	ne := entry{buf: buf, dataLen: len(rec.Data), expires: s.deadline(rec.Expires)}
	if cost(id, ne) > s.maxBytes {
		return 0, fmt.Errorf("memory store: save %s: %d bytes: %w", id, len(buf), ErrTooLarge)
	}
	now := s.now()

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	old, present := s.lru.Peek(id)
	exists := present && !old.expired(now)
	switch {
	case exists && old.version != expect, !exists && expect != 0:
		return 0, handlers.ErrVersionMismatch
	}
	s.counter++
	ne.version = s.counter
	if present {
		// Add replaces the value in place, keeping the stored key and
		// skipping the eviction callback, so release the old bytes here.
		s.bytes -= cost(id, old)
		s.lru.Add(id, ne)
	} else {
		// A fresh key: keep a private copy so the caller's id string (often
		// a slice of a large request buffer) is not pinned by the store.
		s.lru.Add(strings.Clone(id), ne)
	}
	s.bytes += cost(id, ne)
	for s.bytes > s.maxBytes {
		if _, _, ok := s.lru.RemoveOldest(); !ok {
			break
		}
	}
	return ne.version, nil
}

// Touch implements handlers.Store.
func (s *Store) Touch(ctx context.Context, id string, expires time.Time) error {
	if err := s.check(ctx, id); err != nil {
		return err
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	e, ok := s.lru.Get(id)
	if !ok || e.expired(now) {
		return handlers.ErrNotFound
	}
	e.expires = s.deadline(expires)
	s.lru.Add(id, e) // same key, same cost: no accounting change
	return nil
}

// Delete implements handlers.Store.
func (s *Store) Delete(ctx context.Context, id string) (bool, error) {
	if err := s.check(ctx, id); err != nil {
		return false, err
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, ErrClosed
	}
	e, ok := s.lru.Peek(id)
	if !ok {
		return false, nil
	}
	s.lru.Remove(id)
	return !e.expired(now), nil
}

type live struct {
	id      string
	expires int64
}

// Scan implements handlers.Store. It works on a snapshot taken under the
// lock so fn may call back into the store.
func (s *Store) Scan(ctx context.Context, fn func(id string, expires time.Time) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory store: scan: %w", err)
	}
	now := s.now()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	ids := s.lru.Keys()
	snap := make([]live, 0, len(ids))
	for _, id := range ids {
		if e, ok := s.lru.Peek(id); ok && !e.expired(now) {
			snap = append(snap, live{id, e.expires})
		}
	}
	s.mu.Unlock()
	for i, l := range snap {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("memory store: scan: %w", err)
			}
		}
		if err := fn(l.id, s.expiresTime(l.expires)); err != nil {
			return err
		}
	}
	return nil
}

// Sweep implements handlers.Store.
func (s *Store) Sweep(ctx context.Context, now time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memory store: sweep: %w", err)
	}
	nowN := s.deadline(now)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, ErrClosed
	}
	ids := s.lru.Keys()
	s.mu.Unlock()
	removed := 0
	for start := 0; start < len(ids); start += sweepBatch {
		if err := ctx.Err(); err != nil {
			return removed, fmt.Errorf("memory store: sweep: %w", err)
		}
		end := min(start+sweepBatch, len(ids))
		s.mu.Lock()
		for _, id := range ids[start:end] {
			// Re-check under the lock: the record may have been re-saved.
			if e, ok := s.lru.Peek(id); ok && e.expired(nowN) {
				s.lru.Remove(id)
				removed++
			}
		}
		s.mu.Unlock()
	}
	return removed, nil
}

// Len reports the number of records held, expired ones included.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Len()
}

// Bytes reports the accounted bytes (see EntryOverhead).
func (s *Store) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

var _ handlers.Sizer = (*Store)(nil)

// Size implements handlers.Sizer in O(1) from the LRU's own accounting:
// bytes are the accounted bytes (id, data and meta plus EntryOverhead per
// session, what max_bytes limits), and both numbers include records that
// expired but were not swept or loaded since, as Len does.
func (s *Store) Size(ctx context.Context) (sessions, bytes int64, err error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, fmt.Errorf("memory store: size: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, 0, ErrClosed
	}
	return int64(s.lru.Len()), s.bytes, nil
}

// Close drops every record; later calls return ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.lru.Purge()
	}
	return nil
}
