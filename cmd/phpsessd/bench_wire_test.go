package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/internal/testserver"
)

func runBenchWire(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := &cmdEnv{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code = benchWireMain(ctx, env, args)
	return code, out.String(), errOut.String()
}

func TestBenchWireJSONRows(t *testing.T) {
	bin := benchRedisDaemon(t)
	testserver.Need(t, "redis-benchmark")
	code, out, errOut := runBenchWire(t, "--daemon-bin", bin, "--duration", "600ms", "--clients", "4",
		"--requests", "200000", "--daemon-procs", "1", "--json")
	if code != exitOK {
		t.Fatalf("exit %d\nstderr:\n%s", code, errOut)
	}
	var rep benchWireReport
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("output is not the report: %v\n%s", err, out)
	}
	if rep.DaemonProcs != 1 {
		t.Errorf("daemon_procs %d, want the 1 asked for", rep.DaemonProcs)
	}
	want := []string{"redis GET+SET", "phpsessd PING+PING", "phpsessd READ+WRITE"}
	if len(rep.Rows) != len(want) {
		t.Fatalf("rows %+v, want %v", rep.Rows, want)
	}
	_, procOK := os.Stat("/proc/self/stat")
	for i, r := range rep.Rows {
		if r.Server+" "+r.Name != want[i] {
			t.Errorf("row %d is %s %s, want %s", i, r.Server, r.Name, want[i])
		}
		if r.Pairs <= 0 || r.PairsPS <= 0 || r.Seconds <= 0 || r.VsRedis <= 0 {
			t.Errorf("row %s %s processed nothing or lacks its ratio: %+v", r.Server, r.Name, r)
		}
		// Every pair is at least two system calls on each side: a
		// measured CPU time of zero would mean the wrong process was read.
		if procOK == nil && r.CPUMicros <= 0 {
			t.Errorf("row %s %s: no server CPU time read from /proc", r.Server, r.Name)
		}
		if procOK == nil && r.ClientCPUMicros <= 0 {
			t.Errorf("row %s %s: no client CPU time read from /proc", r.Server, r.Name)
		}
	}
	if rep.Rows[0].VsRedis != 1 || rep.VsRedis != rep.Rows[2].VsRedis {
		t.Errorf("ratios not relative to the redis row: %+v, headline %v", rep.Rows, rep.VsRedis)
	}
	if len(rep.CRows) != 5 {
		t.Fatalf("redis-benchmark rows %+v, want GET, SET, READ, WRITE, READ/WRITE", rep.CRows)
	}
	for _, r := range rep.CRows {
		if r.RequestsPS <= 0 || r.VsRedis <= 0 {
			t.Errorf("redis-benchmark row %s %s: %+v", r.Server, r.Name, r)
		}
	}
}

func TestBenchWireTextRespectsRequests(t *testing.T) {
	bin := benchRedisDaemon(t)
	code, out, errOut := runBenchWire(t, "--daemon-bin", bin, "--duration", "5s", "--clients", "2",
		"--requests", "40", "--redis-benchmark", "none")
	if code != exitOK {
		t.Fatalf("exit %d\nstderr:\n%s", code, errOut)
	}
	for _, want := range []string{"redis GET+SET", "phpsessd PING+PING", "phpsessd READ+WRITE", "server CPU µs/pair", "client CPU µs/pair", "target: READ+WRITE"} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "redis-benchmark") {
		t.Errorf("--redis-benchmark none still printed its rows:\n%s", out)
	}
	// --requests caps every row long before the 5 s are up (3 rounds of
	// 5/3 s each would take 15 s).
	if strings.Contains(out, "elapsed") {
		for _, line := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(line, "elapsed "); ok {
				d, err := time.ParseDuration(v)
				if err != nil || d > 12*time.Second {
					t.Errorf("elapsed %q: --requests did not end the rows early", v)
				}
			}
		}
	}
}

func TestBenchWireRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--clients", "0"},
		{"--duration", "0s"},
		{"--requests", "0"},
		{"--rounds", "21"},
		{"--daemon-procs", "-1"},
		{"extra"},
	} {
		code, _, errOut := runBenchWire(t, args...)
		if code != exitUsage || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q; want 2 and one line", args, code, errOut)
		}
	}
}

func TestProcCPUTicks(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc on this system")
	}
	// Burn some CPU so the count cannot legitimately be zero.
	for deadline := time.Now().Add(50 * time.Millisecond); time.Now().Before(deadline); {
	}
	if got := procCPUTicks(os.Getpid()); got <= 0 {
		t.Errorf("procCPUTicks(self) = %d after 50 ms of work", got)
	}
	if got := procCPUTicks(1 << 30); got != -1 {
		t.Errorf("procCPUTicks(no such pid) = %d, want -1", got)
	}
}
