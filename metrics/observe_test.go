package metrics

import (
	"math"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

func family(t *testing.T, m *Metrics, name string) *dto.MetricFamily {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			return f
		}
	}
	t.Fatalf("no metric family %s", name)
	return nil
}

func labelsOf(mt *dto.Metric) map[string]string {
	l := map[string]string{}
	for _, p := range mt.GetLabel() {
		l[p.GetName()] = p.GetValue()
	}
	return l
}

// TestConnObserversAddUp observes from many connections at once, each with
// its own hook, and checks that a scrape shows every observation exactly
// once, in the right cumulative buckets, with modes counted only for
// successful commands.
func TestConnObserversAddUp(t *testing.T) {
	m, err := New(Options{ScanEvery: -1, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	const conns, perConn = 40, 500
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		obs := m.ConnObserver()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < perConn; k++ {
				// Per connection: 250 READs of 100 µs (optimistic),
				// 125 READs of 1 ms (locked), 125 failed WRITEs of 10 µs.
				switch k % 4 {
				case 0, 1:
					obs("READ", "optimistic", 100*time.Microsecond, "")
				case 2:
					obs("READ", "locked", time.Millisecond, "")
				case 3:
					obs("WRITE", "optimistic", 10*time.Microsecond, "BACKEND")
				}
			}
		}()
	}
	m.ObserveCommand("PING", "", 50*time.Microsecond, "")
	wg.Wait()

	hist := map[string]*dto.Histogram{}
	for _, mt := range family(t, m, "phpsessd_command_duration_seconds").GetMetric() {
		hist[labelsOf(mt)["command"]] = mt.GetHistogram()
	}
	reads, writes, pings := hist["READ"], hist["WRITE"], hist["PING"]
	if reads == nil || writes == nil || pings == nil {
		t.Fatalf("commands exported: %v", hist)
	}
	if got, want := reads.GetSampleCount(), uint64(conns*perConn*3/4); got != want {
		t.Fatalf("READ count %d, want %d", got, want)
	}
	wantSum := float64(conns) * (250*100e-6 + 125*1e-3)
	if got := reads.GetSampleSum(); math.Abs(got-wantSum) > 1e-9*wantSum+1e-12 {
		t.Fatalf("READ sum %g, want %g", got, wantSum)
	}
	if got, want := writes.GetSampleCount(), uint64(conns*perConn/4); got != want {
		t.Fatalf("WRITE count %d, want %d: failed commands are timed too", got, want)
	}
	if pings.GetSampleCount() != 1 {
		t.Fatalf("PING count %d", pings.GetSampleCount())
	}
	// Bounds are 50 µs × 4^k; buckets are cumulative and inclusive.
	wantBuckets := map[float64]uint64{
		50e-6:   0,                   // nothing at or below 50 µs
		200e-6:  uint64(conns * 250), // the 100 µs READs
		800e-6:  uint64(conns * 250), // 1 ms is past 800 µs
		3.2e-3:  uint64(conns * 375), // every READ
		52.4288: uint64(conns * 375), // the last bound
	}
	for _, b := range reads.GetBucket() {
		bound := b.GetUpperBound()
		for wb, n := range wantBuckets {
			if math.Abs(bound-wb) < 1e-12*math.Max(1, wb) && b.GetCumulativeCount() != n {
				t.Fatalf("READ bucket le=%g: %d, want %d", bound, b.GetCumulativeCount(), n)
			}
		}
	}
	if len(reads.GetBucket()) != 11 {
		t.Fatalf("%d buckets, want 11", len(reads.GetBucket()))
	}
	for _, b := range pings.GetBucket() {
		// 50 µs falls into the first bucket: bounds are inclusive.
		if b.GetCumulativeCount() != 1 {
			t.Fatalf("PING bucket le=%g: %d, want 1", b.GetUpperBound(), b.GetCumulativeCount())
		}
	}

	modes := map[[2]string]float64{}
	for _, mt := range family(t, m, "phpsessd_session_requests_total").GetMetric() {
		l := labelsOf(mt)
		modes[[2]string{l["command"], l["mode"]}] = mt.GetCounter().GetValue()
	}
	want := map[[2]string]float64{
		{"READ", "optimistic"}: conns * 250,
		{"READ", "locked"}:     conns * 125,
	}
	if len(modes) != len(want) {
		t.Fatalf("mode series %v, want %v (a failed WRITE is not a granted mode)", modes, want)
	}
	for k, v := range want {
		if modes[k] != v {
			t.Fatalf("%v: %g, want %g", k, modes[k], v)
		}
	}
}

func BenchmarkConnObserver(b *testing.B) {
	m, err := New(Options{ScanEvery: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		obs := m.ConnObserver()
		for pb.Next() {
			obs("READ", "optimistic", 120*time.Microsecond, "")
		}
	})
}
