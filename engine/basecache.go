package engine

import (
	"hash/maphash"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// baseCache remembers recently handed-out session values by (id, version)
// so a WRITE arriving on a new connection (the PHP worker reconnected) can
// still be merged against the exact base its READ saw. It is bounded by
// entries and by bytes, and entries go stale after a TTL; a miss only means
// the merge falls back to an empty base.
//
// Every READ and WRITE passes through it, so it is split into shards by
// session id: requests of different sessions do not wait for one lock.
type baseCache struct {
	seed   maphash.Seed
	shards [baseShards]baseShard
	ttl    time.Duration
}

const baseShards = 16

type baseShard struct {
	mu       sync.Mutex
	c        *simplelru.LRU[baseKey, baseEntry]
	bytes    int
	maxBytes int
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
	bc := &baseCache{seed: maphash.MakeSeed(), ttl: ttl}
	perEntries := max(1, entries/baseShards)
	perBytes := max(1, maxBytes/baseShards)
	for i := range bc.shards {
		sh := &bc.shards[i]
		sh.maxBytes = perBytes
		c, err := simplelru.NewLRU[baseKey, baseEntry](perEntries, func(_ baseKey, v baseEntry) {
			sh.bytes -= len(v.data)
		})
		if err != nil {
			return nil
		}
		sh.c = c
	}
	return bc
}

func (bc *baseCache) shard(id string) *baseShard {
	return &bc.shards[maphash.String(bc.seed, id)%baseShards]
}

// put records data as the value of id at version. The same id and version
// always name the same bytes, so an entry already there is left alone: a
// READ of the version the last WRITE stored costs a lookup, not an insert.
func (bc *baseCache) put(id string, version uint64, data []byte, format string) {
	if bc == nil || version == 0 {
		return
	}
	sh := bc.shard(id)
	if len(data) > sh.maxBytes/4 {
		return
	}
	k := baseKey{id, version}
	now := time.Now()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if old, ok := sh.c.Peek(k); ok && now.Sub(old.at) < bc.ttl/2 {
		return
	} else if ok {
		// Refreshed so a session read again and again stays findable.
		sh.c.Remove(k)
	}
	sh.bytes += len(data)
	sh.c.Add(k, baseEntry{data: data, format: format, at: now})
	for sh.bytes > sh.maxBytes && sh.c.Len() > 0 {
		sh.c.RemoveOldest()
	}
}

func (bc *baseCache) get(id string, version uint64) (baseEntry, bool) {
	if bc == nil || version == 0 {
		return baseEntry{}, false
	}
	sh := bc.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	k := baseKey{id, version}
	e, ok := sh.c.Get(k)
	if !ok {
		return baseEntry{}, false
	}
	if time.Since(e.at) > bc.ttl {
		sh.c.Remove(k)
		return baseEntry{}, false
	}
	return e, true
}
