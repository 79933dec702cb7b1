package fpmtest

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Result is one request's outcome in a batch.
type Result struct {
	Resp *Response
	Err  error
}

// Parallel sends all reqs at once, each on its own connection, and returns
// their results in order plus the wall time from the first send to the
// last answer.
func (p *Pool) Parallel(ctx context.Context, reqs []Request) ([]Result, time.Duration) {
	out := make([]Result, len(reqs))
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range reqs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-gate
			out[i].Resp, out[i].Err = p.Do(ctx, reqs[i])
		}(i)
	}
	start := time.Now()
	close(gate)
	wg.Wait()
	return out, time.Since(start)
}

// Login creates a session with h by requesting set.php without a cookie
// and returns the id PHP handed out.
func (p *Pool) Login(ctx context.Context, h Handler, query string) (string, error) {
	resp, err := p.Do(ctx, h.Req("set.php", query, ""))
	if err != nil {
		return "", err
	}
	var body struct {
		Started bool   `json:"started"`
		ID      string `json:"id"`
	}
	if err := json.Unmarshal(resp.Body, &body); err != nil || !body.Started {
		return "", fmt.Errorf("fpmtest: login with %s failed: %q %v (stderr %q)", h.Name, resp.Body, err, resp.Stderr)
	}
	if id := resp.SessionCookie(""); id != "" {
		return id, nil
	}
	return body.ID, nil
}

// Session is what show.php reports.
type Session struct {
	Started bool
	ID      string
	// Data is $_SESSION; nil when the session is empty.
	Data map[string]any
}

// UnmarshalJSON accepts PHP's encoding of an empty array, "[]", as an
// empty session.
func (s *Session) UnmarshalJSON(b []byte) error {
	var raw struct {
		Started bool            `json:"started"`
		ID      string          `json:"id"`
		Data    json.RawMessage `json:"session"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	s.Started, s.ID, s.Data = raw.Started, raw.ID, nil
	d := strings.TrimSpace(string(raw.Data))
	if d == "" || d == "null" || d == "[]" {
		return nil
	}
	if err := json.Unmarshal(raw.Data, &s.Data); err != nil {
		return fmt.Errorf("fpmtest: $_SESSION as JSON: %w", err)
	}
	return nil
}

// Show reads a session through PHP (read_and_close: it never writes).
func (p *Pool) Show(ctx context.Context, h Handler, id string) (*Session, *Response, error) {
	resp, err := p.Do(ctx, h.Req("show.php", "", id))
	if err != nil {
		return nil, resp, err
	}
	s := &Session{}
	if err := json.Unmarshal(resp.Body, s); err != nil {
		return nil, resp, fmt.Errorf("fpmtest: show.php: %w (body %q, stderr %q)", err, resp.Body, resp.Stderr)
	}
	return s, resp, nil
}

// Hits counts the entries of $_SESSION['hits'].
func (s *Session) Hits() int {
	if s == nil || s.Data == nil {
		return 0
	}
	switch h := s.Data["hits"].(type) {
	case []any:
		return len(h)
	case map[string]any:
		return len(h)
	}
	return 0
}

// ParallelResult summarises ten requests of one session.
type ParallelResult struct {
	Handler string
	Wall    time.Duration
	One     time.Duration
	Kept    int
	N       int
	// Warnings counts requests that logged at least one PHP warning.
	Warnings int
	Failed   int
}

// ParallelHits logs in with login, sends n hits.php requests of that
// session with h at once (each sleeping sleep after session_start) and
// counts the appends that survived. One is the time of a single such
// request, measured just before. login differs from h only where h cannot
// create a session (readonly).
func (p *Pool) ParallelHits(ctx context.Context, login, h Handler, n int, sleep time.Duration) (*ParallelResult, string, []Result, error) {
	id, err := p.Login(ctx, login, "")
	if err != nil {
		return nil, "", nil, err
	}
	ms := strconv.Itoa(int(sleep / time.Millisecond))
	// One lone request on a second session of the same handler, so the
	// measured session starts the batch with an empty hit list.
	one, err := p.Login(ctx, login, "")
	if err != nil {
		return nil, "", nil, err
	}
	single, err := p.Do(ctx, h.Req("hits.php", "sleep="+ms+"&tok=solo", one))
	if err != nil {
		return nil, "", nil, err
	}
	reqs := make([]Request, n)
	for i := range reqs {
		reqs[i] = h.Req("hits.php", fmt.Sprintf("sleep=%s&tok=t%d", ms, i), id)
	}
	res, wall := p.Parallel(ctx, reqs)
	pr := &ParallelResult{Handler: h.Name, Wall: wall, One: single.Duration(), N: n}
	for _, r := range res {
		if r.Err != nil || r.Resp.Status != 200 {
			pr.Failed++
		}
		if r.Resp != nil && len(r.Resp.Warnings()) > 0 {
			pr.Warnings++
		}
	}
	s, _, err := p.Show(ctx, login, id)
	if err != nil {
		return pr, id, res, err
	}
	pr.Kept = s.Hits()
	return pr, id, res, nil
}

// ThroughputResult is one load run of counter.php.
type ThroughputResult struct {
	Handler  string
	Workers  int
	Shared   bool
	Requests int64
	Errors   int64
	// Warnings counts requests that logged at least one PHP warning.
	Warnings int64
	Elapsed  time.Duration
	// Lost is increments that completed with HTTP 200 but are missing
	// from the final counters.
	Lost int64
}

// RPS is requests per second.
func (t *ThroughputResult) RPS() float64 {
	if t.Elapsed <= 0 {
		return 0
	}
	return float64(t.Requests) / t.Elapsed.Seconds()
}

// Throughput runs counter.php with workers goroutines for at most
// duration and at most maxRequests requests in total. shared puts every
// worker on one session; otherwise each has its own. It then reads the
// counters back and reports increments lost.
func (p *Pool) Throughput(ctx context.Context, h Handler, workers int, shared bool, duration time.Duration, maxRequests int64) (*ThroughputResult, error) {
	ids := make([]string, workers)
	for i := range ids {
		if shared && i > 0 {
			ids[i] = ids[0]
			continue
		}
		id, err := p.Login(ctx, h, "i_n=0")
		if err != nil {
			return nil, err
		}
		ids[i] = id
	}
	res := &ThroughputResult{Handler: h.Name, Workers: workers, Shared: shared}
	var issued, okCount atomic.Int64
	perSession := make([]atomic.Int64, workers)
	var wg sync.WaitGroup
	stop := time.Now().Add(duration)
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for time.Now().Before(stop) && ctx.Err() == nil {
				if issued.Add(1) > maxRequests {
					return
				}
				r, err := p.Do(ctx, Request{Script: "counter.php", SessionID: ids[w], INI: h.INI, Params: h.Params, Timeout: 10 * time.Second})
				if err != nil || r.Status != 200 || strings.TrimSpace(string(r.Body)) == "fail" {
					atomic.AddInt64(&res.Errors, 1)
				}
				if r != nil && len(r.Warnings()) > 0 {
					atomic.AddInt64(&res.Warnings, 1)
				}
				if err == nil && r.Status == 200 {
					okCount.Add(1)
					perSession[w].Add(1)
				}
			}
		}(w)
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.Requests = okCount.Load()
	// Read the counters back and compare with the increments that
	// returned 200 (a request that saw a warning still counts: PHP
	// answered 200, which is exactly how lost writes go unnoticed).
	want := map[string]int64{}
	for w, id := range ids {
		want[id] += perSession[w].Load()
	}
	for id, n := range want {
		s, _, err := p.Show(ctx, h, id)
		if err != nil {
			return res, err
		}
		got := int64(0)
		if v, ok := s.Data["n"].(float64); ok {
			got = int64(v)
		}
		if n > got {
			res.Lost += n - got
		}
	}
	return res, nil
}
