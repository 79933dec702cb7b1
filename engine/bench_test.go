package engine

import (
	"fmt"
	"math/rand"
	"sort"
	"testing"
	"time"
)

// benchSession is a realistic 8-ish KB session: user data, a cart, flash
// messages, counters.
func benchSession(extra string) string {
	items := make([]string, 40)
	for i := range items {
		items[i] = pmap("sku", ps(fmt.Sprintf("SKU-%05d", i)), "qty", pi(int64(i%5+1)), "title", ps("A product title that is fairly long "+fmt.Sprint(i)))
	}
	return sess(
		"user", pmap("id", pi(42), "name", ps("Alice Example"), "roles", plist(ps("customer"), ps("beta"))),
		"cart", pmap("items", plist(items...), "currency", ps("EUR")),
		"flash", plist(ps("Saved."), ps("Welcome back"+extra)),
		"hits", pi(1234),
		"csrf", ps("0123456789abcdef0123456789abcdef"),
	)
}

// BenchmarkMerge merges two concurrent edits of one session (one changes
// the user, the other appends a flash message and bumps a counter).
func BenchmarkMerge(b *testing.B) {
	e := newTestEngine(b, func(c *Config) { c.Counters = []string{"hits"} })
	base := []byte(benchSession(""))
	mine := []byte(sess("user", pmap("id", pi(42), "name", ps("Alice Renamed"), "roles", plist(ps("customer"), ps("beta")))) + benchSession("")[len(sess("user", pmap("id", pi(42), "name", ps("Alice Example"), "roles", plist(ps("customer"), ps("beta"))))):])
	theirs := []byte(benchSession("!"))
	bs := baseState{data: base, known: true}
	b.SetBytes(int64(len(base)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := e.merge("bench", "php", bs, mine, theirs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOptimisticCycle is one PHP request: READ then a changed WRITE
// on its own session (no contention), with the WRITE saving from its base
// as the memory store allows (exact) and loading first as other stores
// need (load-first).
func BenchmarkOptimisticCycle(b *testing.B) {
	for _, exact := range []bool{true, false} {
		name := "exact"
		if !exact {
			name = "load-first"
		}
		b.Run(name, func(b *testing.B) { benchOptimisticCycle(b, exact) })
	}
}

func benchOptimisticCycle(b *testing.B, exact bool) {
	e := newTestEngine(b, nil)
	e.exactVersions = exact
	c := e.NewClient("bench")
	defer c.Close()
	data := []byte(benchSession(""))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := c.Read(bg, ReadRequest{ID: "cycle", Format: "php"})
		if err != nil {
			b.Fatal(err)
		}
		data[len(data)-3] = byte('a' + i%26)
		if _, err := c.Write(bg, WriteRequest{ID: "cycle", Data: data, BaseVersion: r.Version, Format: "php"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLockedRequestHandOff measures, through the engine, the time from
// a locked request's WRITE returning to the next queued locked READ
// returning.
func BenchmarkLockedRequestHandOff(b *testing.B) {
	e := newTestEngine(b, nil)
	a, w := e.NewClient("a"), e.NewClient("w")
	defer a.Close()
	defer w.Close()
	data := []byte(sess("n", pi(1)))
	lats := make([]time.Duration, 0, b.N)
	r := rand.New(rand.NewSource(1))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rd, err := a.Read(bg, ReadRequest{ID: "h", Mode: ModeLocked, Format: "php"})
		if err != nil {
			b.Fatal(err)
		}
		got := make(chan time.Time, 1)
		go func() {
			if _, err := w.Read(bg, ReadRequest{ID: "h", Mode: ModeLocked, Format: "php"}); err != nil {
				b.Error(err)
			}
			got <- time.Now()
			w.Release(bg, "h")
		}()
		for {
			if h, _ := e.LockInfo("h"); h.Waiters == 1 {
				break
			}
			time.Sleep(time.Microsecond)
		}
		data[len(data)-2] = byte('0' + r.Intn(10))
		if _, err := a.Write(bg, WriteRequest{ID: "h", Data: data, BaseVersion: rd.Version, Format: "php"}); err != nil {
			b.Fatal(err)
		}
		released := time.Now()
		lats = append(lats, (<-got).Sub(released))
	}
	b.StopTimer()
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	if len(lats) > 0 {
		b.ReportMetric(float64(lats[len(lats)/2].Nanoseconds()), "p50-ns")
		b.ReportMetric(float64(lats[len(lats)*99/100].Nanoseconds()), "p99-ns")
	}
}
