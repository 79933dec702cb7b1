// Package cache is a read-through LRU cache in front of any handlers.Store,
// used for the daemon's embedded default (files store + cache) so that the
// read of every request does not cost an open, a flock and a read. Writes
// go straight to the store and invalidate the cached record; a record is
// only cached when no write to the same id overlapped the read that
// fetched it, so a concurrent Save can never leave an older record behind.
// When the store can report a cheap fingerprint of a record (the files
// store does, from one stat), every hit is validated against it, so changes
// made by another process (PHP's own files handler, a second daemon) are
// seen at once; without one, the cache assumes it fronts the only writer.
package cache

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/phpsessd/phpsessd/handlers"
)

// Fingerprinter is implemented by stores whose records other processes
// may change. Fingerprint must be much cheaper than Load and must change
// whenever the record may have changed; it returns handlers.ErrNotFound
// for an absent record.
type Fingerprinter interface {
	Fingerprint(ctx context.Context, id string) (uint64, error)
}

// MaxCachedSize is the largest record (data + meta) the cache keeps;
// larger ones are always read from the store so a few huge sessions cannot
// hold the cache's memory.
const MaxCachedSize = 1 << 20

const stripes = 256

type entry struct {
	rec handlers.Record
	fp  uint64
}

// Cache is a handlers.Store that caches Load results of another store.
type Cache struct {
	inner handlers.Store
	fp    Fingerprinter
	seed  maphash.Seed

	mu  sync.Mutex
	lru *simplelru.LRU[string, entry]
	// gen counts writes started and finished per stripe of ids; inflight
	// counts writes under way. A read may fill the cache only if its
	// stripe saw neither since the read began.
	gen      [stripes]uint64
	inflight [stripes]int32

	hits, misses uint64
	closed       bool
}

// New wraps store with an LRU of at most maxEntries records.
func New(store handlers.Store, maxEntries int) (*Cache, error) {
	if store == nil {
		return nil, fmt.Errorf("cache: nil store")
	}
	if maxEntries <= 0 {
		return nil, fmt.Errorf("cache: maxEntries %d: want > 0", maxEntries)
	}
	l, err := simplelru.NewLRU[string, entry](maxEntries, nil)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	c := &Cache{inner: store, seed: maphash.MakeSeed(), lru: l}
	c.fp, _ = store.(Fingerprinter)
	return c, nil
}

// Unwrap returns the store behind the cache.
func (c *Cache) Unwrap() handlers.Store { return c.inner }

// Stats reports cache hits and misses.
func (c *Cache) Stats() (hits, misses uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.misses
}

func (c *Cache) stripe(id string) int { return int(maphash.String(c.seed, id) % stripes) }

func clone(r handlers.Record) handlers.Record {
	if r.Data != nil {
		r.Data = append(make([]byte, 0, len(r.Data)), r.Data...)
	}
	if r.Meta != nil {
		r.Meta = append(make([]byte, 0, len(r.Meta)), r.Meta...)
	}
	return r
}

func expired(r handlers.Record, now time.Time) bool {
	return !r.Expires.IsZero() && now.After(r.Expires)
}

// Load implements handlers.Store.
func (c *Cache) Load(ctx context.Context, id string) (handlers.Record, error) {
	if err := ctx.Err(); err != nil {
		return handlers.Record{}, fmt.Errorf("cache: load %s: %w", id, err)
	}
	st := c.stripe(id)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.inner.Load(ctx, id) // the store reports its own closed error
	}
	e, hit := c.lru.Get(id)
	if hit && expired(e.rec, time.Now()) {
		c.lru.Remove(id)
		hit = false
	}
	g0, busy := c.gen[st], c.inflight[st] > 0
	c.mu.Unlock()

	if hit && c.fp != nil {
		fp, err := c.fp.Fingerprint(ctx, id)
		hit = err == nil && fp == e.fp
	}
	if hit {
		c.mu.Lock()
		c.hits++
		c.mu.Unlock()
		return clone(e.rec), nil
	}

	// Fingerprint before reading: if the record changes in between, the
	// stored fingerprint is older than the record and the next hit just
	// reloads; it can never vouch for a record older than itself.
	var fp uint64
	cacheable := !busy
	if c.fp != nil && cacheable {
		var err error
		fp, err = c.fp.Fingerprint(ctx, id)
		cacheable = err == nil
	}
	rec, err := c.inner.Load(ctx, id)
	c.mu.Lock()
	c.misses++
	if err == nil && cacheable && !c.closed && len(rec.Data)+len(rec.Meta) <= MaxCachedSize &&
		c.gen[st] == g0 && c.inflight[st] == 0 {
		c.lru.Add(id, entry{rec: clone(rec), fp: fp})
	} else if err == nil {
		c.lru.Remove(id)
	}
	c.mu.Unlock()
	return rec, err
}

// begin marks a write to id under way and drops its cached record.
func (c *Cache) begin(id string) (st int, g uint64) {
	st = c.stripe(id)
	c.mu.Lock()
	c.gen[st]++
	c.inflight[st]++
	c.lru.Remove(id)
	g = c.gen[st]
	c.mu.Unlock()
	return st, g
}

// end finishes a write; with a record, and when no other write to the
// stripe overlapped this one, the saved record is cached. Save passes one
// only for stores without fingerprints: for the others the next Load has
// to take a fingerprint anyway, and one taken after the write could vouch
// for a change another process made in between.
func (c *Cache) end(id string, st int, g uint64, rec *handlers.Record) {
	c.mu.Lock()
	c.inflight[st]--
	if rec != nil && !c.closed && c.gen[st] == g && c.inflight[st] == 0 &&
		len(rec.Data)+len(rec.Meta) <= MaxCachedSize && !expired(*rec, time.Now()) {
		c.lru.Add(id, entry{rec: *rec})
	}
	c.gen[st]++
	c.mu.Unlock()
}

// Save implements handlers.Store.
func (c *Cache) Save(ctx context.Context, id string, rec handlers.Record, expect uint64) (uint64, error) {
	st, g := c.begin(id)
	v, err := c.inner.Save(ctx, id, rec, expect)
	if err != nil || c.fp != nil {
		c.end(id, st, g, nil)
		return v, err
	}
	saved := clone(rec)
	saved.Version = v
	if len(saved.Data) == 0 {
		saved.Data = []byte{}
	}
	c.end(id, st, g, &saved)
	return v, nil
}

// Touch implements handlers.Store.
func (c *Cache) Touch(ctx context.Context, id string, expires time.Time) error {
	st, g := c.begin(id)
	err := c.inner.Touch(ctx, id, expires)
	c.end(id, st, g, nil)
	return err
}

// Delete implements handlers.Store.
func (c *Cache) Delete(ctx context.Context, id string) (bool, error) {
	st, g := c.begin(id)
	ok, err := c.inner.Delete(ctx, id)
	c.end(id, st, g, nil)
	return ok, err
}

// Scan implements handlers.Store; it always asks the store.
func (c *Cache) Scan(ctx context.Context, fn func(id string, expires time.Time) error) error {
	return c.inner.Scan(ctx, fn)
}

var _ handlers.Sizer = (*Cache)(nil)

// Size implements handlers.Sizer by asking the store: cached records are
// copies of stored ones, so they add no sessions and no stored bytes.
func (c *Cache) Size(ctx context.Context) (sessions, bytes int64, err error) {
	sz, ok := c.inner.(handlers.Sizer)
	if !ok {
		return 0, 0, fmt.Errorf("cache: %w", handlers.ErrSizeUnsupported)
	}
	return sz.Size(ctx)
}

// Sweep implements handlers.Store. Besides the store's sweep it drops the
// cached records expired at now (now may lie in the future) and fences off
// reads that fetched a record before the store removed it.
func (c *Cache) Sweep(ctx context.Context, now time.Time) (int, error) {
	n, err := c.inner.Sweep(ctx, now)
	c.mu.Lock()
	for i := range c.gen {
		c.gen[i]++
	}
	for _, id := range c.lru.Keys() {
		if e, ok := c.lru.Peek(id); ok && expired(e.rec, now) {
			c.lru.Remove(id)
		}
	}
	c.mu.Unlock()
	return n, err
}

// Close empties the cache and closes the store.
func (c *Cache) Close() error {
	c.mu.Lock()
	c.closed = true
	c.lru.Purge()
	c.mu.Unlock()
	return c.inner.Close()
}
