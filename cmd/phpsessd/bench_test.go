package main

import (
	"strings"
	"testing"
	"time"
)

func TestBenchTargetsAreRatiosOfOneRun(t *testing.T) {
	rep := &benchReport{
		Parallel: []parallelRow{
			{Handler: "files", N: 10, WallMS: 2010, OneMS: 201, Kept: 10},
			{Handler: "phpsessd optimistic", N: 10, WallMS: 205, OneMS: 201, Kept: 10},
		},
		Throughput: []throughputRow{
			{Handler: "files", DistinctRPS: 1000},
			{Handler: "phpsessd optimistic", DistinctRPS: 1050},
		},
	}
	got := benchTargets(rep)
	if len(got) != 2 {
		t.Fatalf("targets = %+v", got)
	}
	if !got[0].Met {
		t.Errorf("205 ms vs 201 ms with 10/10 kept must meet the parallel target: %+v", got[0])
	}
	if got[1].Met {
		t.Errorf("1.05 × files must miss the 1.1 × throughput target: %+v", got[1])
	}
	rep.Parallel[1].Kept = 9
	if benchTargets(rep)[0].Met {
		t.Error("a lost write must miss the parallel target whatever the time")
	}
}

func TestBenchPrintsBothTables(t *testing.T) {
	rep := &benchReport{
		PHP: "8.2.0", CPUs: 2, Children: 16, Address: "unix:///x",
		Parallel:   []parallelRow{{Handler: "files", N: 10, WallMS: 2010, OneMS: 201, Kept: 10}},
		Throughput: []throughputRow{{Handler: "files", DistinctRPS: 1000, SharedRPS: 900, SharedLost: 5, SharedTotal: 10}},
		opts:       benchOptions{parallel: 10, sleep: 200 * time.Millisecond, duration: time.Second, concurrency: 16, shared: 8},
	}
	rep.Targets = benchTargets(rep)
	var b strings.Builder
	printBench(&b, rep)
	out := b.String()
	for _, want := range []string{"10 parallel requests", "10/10", "16 sessions c=16", "1 session c=8", "5 (50 %)", "Targets"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestBenchRejectsBadBounds(t *testing.T) {
	for _, args := range [][]string{
		{"--duration", "0s"},
		{"--concurrency", "0"},
		{"--requests", "0"},
		{"--handlers", "files,memcached"},
		{"extra"},
	} {
		if code, _, _ := runCLI(t, append([]string{"bench"}, args...)...); code != exitUsage {
			t.Errorf("bench %v: exit %d, want %d", args, code, exitUsage)
		}
	}
}
