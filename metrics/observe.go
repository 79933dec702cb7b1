package metrics

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// observeShards is how many independently locked tallies the per-command
// counts are spread over. Every command of every connection is counted,
// so one shared histogram would have each CPU take the same cache lines
// from the others on every request; a connection keeps to one shard and
// a scrape adds them up.
const observeShards = 16

// commandCounts is one command's tally in one shard. Buckets are per
// bucket here (not cumulative); the fold at scrape time accumulates.
type commandCounts struct {
	buckets []uint64 // len(bounds)+1, the last one past every bound
	count   uint64
	sum     float64
	modes   map[string]uint64
}

type observeShard struct {
	mu   sync.Mutex
	cmds map[string]*commandCounts
	_    [48]byte // shards are locked from different CPUs
}

// commandCollector exports command_duration_seconds and
// session_requests_total from the shards.
type commandCollector struct {
	bounds  []float64
	shards  [observeShards]observeShard
	next    atomic.Uint32
	latency *prometheus.Desc
	byMode  *prometheus.Desc
}

func newCommandCollector(bounds []float64) *commandCollector {
	c := &commandCollector{
		bounds: bounds,
		latency: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", "command_duration_seconds"),
			"Time from a command's dispatch to its reply, by command (includes lock waits).",
			[]string{"command"}, nil),
		byMode: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", "session_requests_total"),
			"READ and LOCK commands answered, by command and the mode granted.",
			[]string{"command", "mode"}, nil),
	}
	for i := range c.shards {
		c.shards[i].cmds = map[string]*commandCounts{}
	}
	return c
}

func (c *commandCollector) nextShard() *observeShard {
	return &c.shards[c.next.Add(1)%observeShards]
}

func (c *commandCollector) observe(sh *observeShard, cmd, mode string, took time.Duration, code string) {
	v := took.Seconds()
	// Prometheus buckets are upper bounds inclusive: v goes into the
	// first bucket whose bound is >= v.
	b := sort.SearchFloat64s(c.bounds, v)
	sh.mu.Lock()
	cc := sh.cmds[cmd]
	if cc == nil {
		cc = &commandCounts{buckets: make([]uint64, len(c.bounds)+1)}
		sh.cmds[cmd] = cc
	}
	cc.buckets[b]++
	cc.count++
	cc.sum += v
	if mode != "" && code == "" {
		if cc.modes == nil {
			cc.modes = map[string]uint64{}
		}
		cc.modes[mode]++
	}
	sh.mu.Unlock()
}

func (c *commandCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.latency
	ch <- c.byMode
}

func (c *commandCollector) Collect(ch chan<- prometheus.Metric) {
	total := map[string]*commandCounts{}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for cmd, cc := range sh.cmds {
			t := total[cmd]
			if t == nil {
				t = &commandCounts{buckets: make([]uint64, len(c.bounds)+1), modes: map[string]uint64{}}
				total[cmd] = t
			}
			for b, n := range cc.buckets {
				t.buckets[b] += n
			}
			t.count += cc.count
			t.sum += cc.sum
			for mode, n := range cc.modes {
				t.modes[mode] += n
			}
		}
		sh.mu.Unlock()
	}
	for cmd, t := range total {
		cumulative := make(map[float64]uint64, len(c.bounds))
		var acc uint64
		for b, bound := range c.bounds {
			acc += t.buckets[b]
			cumulative[bound] = acc
		}
		ch <- prometheus.MustNewConstHistogram(c.latency, t.count, t.sum, cumulative, cmd)
		for mode, n := range t.modes {
			ch <- prometheus.MustNewConstMetric(c.byMode, prometheus.CounterValue, float64(n), cmd, mode)
		}
	}
}
