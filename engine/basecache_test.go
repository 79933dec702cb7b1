package engine

import (
	"fmt"
	"math/rand"
	"testing"
	"time"
)

// checkAccounting fails when a shard's running totals disagree with what
// its sets hold: a drift there would let the cache grow past its budget or
// shrink to nothing.
func checkAccounting(t *testing.T, bc *baseCache) {
	t.Helper()
	for i := range bc.shards {
		sh := &bc.shards[i]
		entries, bytes := 0, 0
		for _, id := range sh.c.Keys() {
			s, _ := sh.c.Peek(id)
			entries += s.n
			for j := 0; j < s.n; j++ {
				bytes += len(s.v[j].data)
			}
		}
		if entries != sh.entries || bytes != sh.bytes {
			t.Fatalf("shard %d: counted %d entries / %d bytes, recorded %d / %d", i, entries, bytes, sh.entries, sh.bytes)
		}
		if sh.entries > sh.maxEntries || sh.bytes > sh.maxBytes {
			t.Fatalf("shard %d over budget: %d entries (max %d), %d bytes (max %d)", i, sh.entries, sh.maxEntries, sh.bytes, sh.maxBytes)
		}
	}
}

func TestBaseCacheKeepsRecentVersionsOfASession(t *testing.T) {
	bc := newBaseCache(1<<10, 1<<20, time.Minute)
	for v := uint64(1); v <= 20; v++ {
		bc.put("sess", v, []byte(fmt.Sprint("value ", v)), "php")
	}
	for v := uint64(1); v <= 20; v++ {
		e, ok := bc.get("sess", v)
		want := v > 20-baseVersions
		if ok != want {
			t.Fatalf("version %d: found %v, want %v (the last %d versions stay)", v, ok, want, baseVersions)
		}
		if ok && (string(e.data) != fmt.Sprint("value ", v) || e.format != "php") {
			t.Fatalf("version %d: got %q %q", v, e.data, e.format)
		}
	}
	if _, ok := bc.get("other", 20); ok {
		t.Fatal("a version of one session was found under another id")
	}
	checkAccounting(t, bc)
}

func TestBaseCacheSameVersionIsNotAddedTwice(t *testing.T) {
	bc := newBaseCache(1<<10, 1<<20, time.Minute)
	bc.put("sess", 7, []byte("seven"), "php")
	for i := 0; i < 3*baseVersions; i++ {
		// A READ of the version the last WRITE stored.
		bc.put("sess", 7, []byte("seven"), "php")
	}
	bc.put("sess", 8, []byte("eight"), "php")
	if _, ok := bc.get("sess", 7); !ok {
		t.Fatal("re-reading a version pushed it out of its own session's ring")
	}
	sh := bc.shard("sess")
	if sh.entries != 2 {
		t.Fatalf("%d entries for two versions", sh.entries)
	}
	checkAccounting(t, bc)
}

func TestBaseCacheStaleEntriesAreIgnored(t *testing.T) {
	bc := newBaseCache(1<<10, 1<<20, 30*time.Millisecond)
	bc.put("sess", 1, []byte("one"), "php")
	time.Sleep(60 * time.Millisecond)
	if _, ok := bc.get("sess", 1); ok {
		t.Fatal("an entry older than the TTL was used as a base")
	}
	// Reading it again makes it fresh.
	bc.put("sess", 1, []byte("one"), "php")
	if _, ok := bc.get("sess", 1); !ok {
		t.Fatal("a refreshed entry was not found")
	}
}

func TestBaseCacheStaysWithinBudgets(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	// 16 shards: 4 entries and 4 KiB each.
	bc := newBaseCache(64, 64<<10, time.Minute)
	versions := map[string]uint64{}
	for i := 0; i < 5000; i++ {
		id := fmt.Sprintf("s%03d", rng.Intn(200))
		if rng.Intn(3) > 0 {
			versions[id]++
		}
		bc.put(id, versions[id]+1, make([]byte, rng.Intn(1200)), "php")
		if i%97 == 0 {
			checkAccounting(t, bc)
		}
	}
	checkAccounting(t, bc)
	// The most recent put is always findable: eviction takes the least
	// recently used sessions first.
	bc.put("last", 3, []byte("x"), "php")
	if _, ok := bc.get("last", 3); !ok {
		t.Fatal("the newest entry was evicted")
	}
	// A value over a quarter of a shard's bytes is not cached at all.
	bc.put("big", 1, make([]byte, 2<<10), "php")
	if _, ok := bc.get("big", 1); ok {
		t.Fatal("an oversized value was cached")
	}
	checkAccounting(t, bc)
}
