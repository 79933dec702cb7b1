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
// Within a shard the LRU is keyed by session id, each holding the last few
// versions of that session: a WRITE, which makes a new version of a
// session already cached, then overwrites the oldest of its versions in
// place instead of adding an LRU element and evicting another, which on a
// busy daemon touched memory no other part of the request needed.
type baseCache struct {
	seed   maphash.Seed
	shards [baseShards]baseShard
	ttl    time.Duration
	// epoch is when the cache was made; entries are timed from it on the
	// monotonic clock alone, half the cost of time.Now on every put.
	epoch time.Time
}

const (
	baseShards = 16
	// baseVersions is how many versions of one session stay findable. A
	// reconnecting writer whose base is older than that many writes of
	// others merges against an empty base, which only ever keeps more.
	baseVersions = 8
)

type baseShard struct {
	mu         sync.Mutex
	c          *simplelru.LRU[string, *baseSet]
	entries    int // versions held, over every set
	bytes      int
	maxEntries int
	maxBytes   int
	_          [64]byte // shards are locked from different CPUs
}

// baseSet is one session's recent versions, a ring with next the slot the
// next new version takes.
type baseSet struct {
	v    [baseVersions]baseEntry
	n    int // slots in use
	next int
}

type baseEntry struct {
	version uint64
	data    []byte
	format  string
	at      time.Duration // since baseCache.epoch
}

func newBaseCache(entries, maxBytes int, ttl time.Duration) *baseCache {
	bc := &baseCache{seed: maphash.MakeSeed(), ttl: ttl, epoch: time.Now()}
	perEntries := max(1, entries/baseShards)
	perBytes := max(1, maxBytes/baseShards)
	for i := range bc.shards {
		sh := &bc.shards[i]
		sh.maxEntries, sh.maxBytes = perEntries, perBytes
		// The id count is bounded by the entry budget below; the LRU's
		// own limit is only a backstop.
		c, err := simplelru.NewLRU[string, *baseSet](perEntries, func(_ string, s *baseSet) {
			for j := 0; j < s.n; j++ {
				sh.bytes -= len(s.v[j].data)
			}
			sh.entries -= s.n
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
	now := time.Since(bc.epoch)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	s, ok := sh.c.Get(id)
	if !ok {
		s = &baseSet{}
		sh.c.Add(id, s)
	}
	if e := s.find(version); e != nil {
		// Refreshed so a session read again and again stays findable.
		e.at = now
		return
	}
	slot := &s.v[s.next]
	if s.n == baseVersions {
		sh.bytes -= len(slot.data)
	} else {
		s.n++
		sh.entries++
	}
	*slot = baseEntry{version: version, data: data, format: format, at: now}
	s.next = (s.next + 1) % baseVersions
	sh.bytes += len(data)
	for (sh.bytes > sh.maxBytes || sh.entries > sh.maxEntries) && sh.c.Len() > 0 {
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
	s, ok := sh.c.Get(id)
	if !ok {
		return baseEntry{}, false
	}
	e := s.find(version)
	if e == nil || time.Since(bc.epoch)-e.at > bc.ttl {
		return baseEntry{}, false
	}
	return *e, true
}

func (s *baseSet) find(version uint64) *baseEntry {
	for i := 0; i < s.n; i++ {
		if s.v[i].version == version {
			return &s.v[i]
		}
	}
	return nil
}
