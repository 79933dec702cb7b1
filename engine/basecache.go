package engine

import (
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// baseCache remembers recently handed-out session values by (id, version)
// so a WRITE arriving on a new connection (the PHP worker reconnected) can
// still be merged against the exact base its READ saw. It is bounded by
// entries and by bytes, and entries go stale after a TTL; a miss only means
// the merge falls back to an empty base.
type baseCache struct {
	mu       sync.Mutex
	c        *lru.Cache[baseKey, baseEntry]
	bytes    int
	maxBytes int
	ttl      time.Duration
}

type baseKey struct {
	id      string
	version uint64
}

type baseEntry struct {
	data   []byte
	format string
	at     time.Time
}

func newBaseCache(entries, maxBytes int, ttl time.Duration) *baseCache {
	bc := &baseCache{maxBytes: maxBytes, ttl: ttl}
	c, err := lru.NewWithEvict[baseKey, baseEntry](entries, func(_ baseKey, v baseEntry) {
		bc.bytes -= len(v.data)
	})
	if err != nil {
		return nil
	}
	bc.c = c
	return bc
}

func (bc *baseCache) put(id string, version uint64, data []byte, format string) {
	if bc == nil || version == 0 || len(data) > bc.maxBytes/4 {
		return
	}
	bc.mu.Lock()
	defer bc.mu.Unlock()
	k := baseKey{id, version}
	if old, ok := bc.c.Peek(k); ok {
		bc.bytes -= len(old.data)
	}
	bc.bytes += len(data)
	bc.c.Add(k, baseEntry{data: data, format: format, at: time.Now()})
	for bc.bytes > bc.maxBytes && bc.c.Len() > 0 {
		bc.c.RemoveOldest()
	}
}

func (bc *baseCache) get(id string, version uint64) (baseEntry, bool) {
	if bc == nil || version == 0 {
		return baseEntry{}, false
	}
	bc.mu.Lock()
	defer bc.mu.Unlock()
	e, ok := bc.c.Get(baseKey{id, version})
	if !ok {
		return baseEntry{}, false
	}
	if time.Since(e.at) > bc.ttl {
		bc.c.Remove(baseKey{id, version})
		return baseEntry{}, false
	}
	return e, true
}
