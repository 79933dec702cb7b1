package main

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/internal/fpmtest"
	"github.com/phpsessd/phpsessd/internal/testserver"
)

// benchRedisDaemon builds the phpsessd binary the bench runs as its
// daemons (the test binary cannot serve), or skips without redis-server.
func benchRedisDaemon(t *testing.T) string {
	t.Helper()
	testserver.Need(t, "redis-server")
	root, err := fpmtest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin, err := fpmtest.BuildDaemon(ctx, root, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func runBenchRedis(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := &cmdEnv{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code = benchRedisMain(ctx, env, args)
	return code, out.String(), errOut.String()
}

func TestBenchRedisJSONRows(t *testing.T) {
	bin := benchRedisDaemon(t)
	code, out, errOut := runBenchRedis(t, "--daemon-bin", bin, "--duration", "300ms", "--clients", "4",
		"--daemons", "2,1", "--requests", "100000", "--json")
	if code != exitOK {
		t.Fatalf("exit %d\nstderr:\n%s", code, errOut)
	}
	var rep benchRedisReport
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("output is not the report: %v\n%s", err, out)
	}
	if rep.Clients != 4 || rep.Redis == "" || !strings.HasPrefix(rep.Redis, "127.0.0.1:") {
		t.Errorf("header: clients %d, redis %q", rep.Clients, rep.Redis)
	}
	if rep.Baseline.PairsPS <= 0 || rep.Baseline.Requests <= 0 || rep.Baseline.Tool == "" {
		t.Errorf("redis baseline processed nothing: %+v", rep.Baseline)
	}
	if len(rep.Daemons) != 2 {
		t.Fatalf("want rows for 1 and 2 daemons, got %+v", rep.Daemons)
	}
	for i, want := range []int{1, 2} {
		r := rep.Daemons[i]
		if r.Daemons != want {
			t.Errorf("row %d: %d daemons, want %d (rows sorted ascending)", i, r.Daemons, want)
		}
		if r.Pairs <= 0 || r.PairsPS <= 0 || r.Seconds <= 0 || r.VsOne <= 0 || r.VsRedis <= 0 || r.RedisCmds < 1 {
			t.Errorf("row %d daemons processed nothing or lacks ratios: %+v", r.Daemons, r)
		}
	}
	if rep.Daemons[0].VsOne != 1 || rep.VsRedis != rep.Daemons[0].VsRedis {
		t.Errorf("ratios not relative to the 1-daemon row: %+v, vs redis %v", rep.Daemons[0], rep.VsRedis)
	}
}

func TestBenchRedisTextAndGoBaselineRespectsRequests(t *testing.T) {
	bin := benchRedisDaemon(t)
	const maxPairs = 50
	code, out, errOut := runBenchRedis(t, "--daemon-bin", bin, "--duration", "5s", "--clients", "3",
		"--daemons", "1", "--requests", "50", "--redis-benchmark", "none")
	if code != exitOK {
		t.Fatalf("exit %d\nstderr:\n%s", code, errOut)
	}
	for _, want := range []string{"go-redis GET+SET loop", "phpsessd READ+WRITE, 1 daemon", "daemons", "pairs/s", "ratio to redis"} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
	// The 1-daemon row: "1  <pairs>  <pairs/s> ...", capped by --requests
	// long before the 5 s are up.
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 6 && f[0] == "1" {
			if f[1] != "50" {
				t.Errorf("1-daemon row did %s pairs, want exactly --requests=%d: %q", f[1], maxPairs, line)
			}
			return
		}
	}
	t.Errorf("no 1-daemon row in:\n%s", out)
}

func TestBenchRedisStopsOnCancel(t *testing.T) {
	bin := benchRedisDaemon(t)
	var out, errOut bytes.Buffer
	env := &cmdEnv{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }}
	// Cancelled during the first (10 s) row, as ctrl-C would.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	began := time.Now()
	code := benchRedisMain(ctx, env, []string{"--daemon-bin", bin, "--duration", "10s", "--clients", "2", "--daemons", "1,2"})
	if code != exitFail || !strings.Contains(errOut.String(), "interrupted") {
		t.Errorf("exit %d, stderr %q; want 1 and 'interrupted'", code, errOut.String())
	}
	if d := time.Since(began); d > 9*time.Second {
		t.Errorf("took %v to stop after the cancel", d)
	}
}

func TestBenchRedisRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--clients", "0"},
		{"--duration", "0s"},
		{"--requests", "0"},
		{"--rounds", "0"},
		{"--daemons", "1,x"},
		{"--daemons", "0"},
		{"--daemons", "17"},
		{"--daemons", ""},
		{"extra"},
	} {
		code, _, errOut := runBenchRedis(t, args...)
		if code != exitUsage || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q; want 2 and one line", args, code, errOut)
		}
	}
}

func TestParseDaemonCounts(t *testing.T) {
	got, err := parseDaemonCounts(" 4,1, 2,2 ")
	if err != nil || !reflect.DeepEqual(got, []int{1, 2, 4}) {
		t.Errorf("got %v, %v; want [1 2 4]", got, err)
	}
}

func TestParseRedisBenchmarkCSV(t *testing.T) {
	for name, in := range map[string]string{
		"old": "\"GET\",\"55607.12\"\n\"SET\",\"58366.00\"\n",
		"new": "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\"\n\"SET\",\"58366.00\",\"0.3\",\"0.1\"\n\"GET\",\"55607.12\",\"0.3\",\"0.1\"\n",
	} {
		got, err := parseRedisBenchmarkCSV([]byte(in))
		if err != nil || got["GET"] != 55607.12 || got["SET"] != 58366 {
			t.Errorf("%s: got %v, %v", name, got, err)
		}
	}
	if _, err := parseRedisBenchmarkCSV([]byte("garbage")); err == nil {
		t.Error("garbage parsed")
	}
}
