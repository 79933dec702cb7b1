package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/phpsessd/phpsessd/engine"
	"github.com/phpsessd/phpsessd/server"
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, nil)
}

// Metric descriptions. Names are part of the interface: the Grafana
// dashboard in docs/grafana-phpsessd.json and alert rules use them.
var (
	dReads        = desc("reads_total", "Session reads served (READ).")
	dWrites       = desc("writes_total", "Session writes handled by the engine (WRITE), whatever their outcome.")
	dMerges       = desc("merges_total", "Writes merged three-way with a concurrent change.")
	dLazyWrites   = desc("lazy_writes_total", "Writes of unchanged data: only the expiry was touched.")
	dDropped      = desc("dropped_writes_total", "Readonly requests whose changed data was dropped.")
	dConflicts    = desc("merge_conflicts_total", "Keys changed on both sides of a merge, by the rule that resolved them (fail: the write was refused).", "rule")
	dLockWaits    = desc("lock_waits_total", "Lock acquisitions that had to queue behind a holder.")
	dLockTimeouts = desc("lock_timeouts_total", "Lock waits that ended at their deadline.")
	dLockHandOffs = desc("lock_handoffs_total", "Locks handed directly from a releasing holder to the next waiter.")
	dLocksHeld    = desc("locks_held", "Session locks held now.")
	dClients      = desc("engine_clients", "Engine clients (connections) open now.")
	dInvalidIDs   = desc("invalid_ids_total", "Malformed session ids refused before any store access.")
	dUnknownIDs   = desc("unknown_ids_total", "Well-formed session ids that named no session (strict mode refuses them).")
	dRegenerates  = desc("regenerates_total", "Session id regenerations.")
	dSwept        = desc("swept_sessions_total", "Expired sessions removed by the sweeper.")

	dCommands     = desc("commands_total", "Protocol commands received, by command.", "command")
	dUnknownCmds  = desc("unknown_commands_total", "Requests naming no known command.")
	dErrors       = desc("errors_total", "Error replies by protocol code; BACKEND counts store failures.", "code")
	dStoreErrors  = desc("store_errors_total", "Commands that failed because the store failed (the BACKEND error code).")
	dAuthFailures = desc("auth_failures_total", "Rejected tokens.")
	dConnsOpen    = desc("connections", "Client connections open now.")
	dConnsTotal   = desc("connections_total", "Client connections accepted.")
	dShutting     = desc("shutting_down", "1 while a graceful shutdown runs.")

	dSecEvents = desc("security_events_total", "Security signals by kind (invalid_id, unknown_id, auth_failure, fingerprint_mismatch).", "kind")
	dSecHook   = desc("security_hook_events_total", "Security hook deliveries by result: delivered, failed, dropped (queue full or shutdown).", "result")

	dSessions   = desc("sessions", "Live sessions in the store at the last count (counted at most once per scan interval).")
	dBytes      = desc("stored_bytes", "Bytes the store held at the last count, in the store's own accounting; only for stores that can size themselves.")
	dScanAge    = desc("sessions_scan_age_seconds", "Seconds since the session count was last started.")
	dScanErrors = desc("sessions_scan_errors_total", "Session counts that failed.")
)

// statsCollector turns the existing counters into metrics at scrape time.
type statsCollector struct{ m *Metrics }

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		dReads, dWrites, dMerges, dLazyWrites, dDropped, dConflicts, dLockWaits, dLockTimeouts, dLockHandOffs, dLocksHeld, dClients,
		dInvalidIDs, dUnknownIDs, dRegenerates, dSwept,
		dCommands, dUnknownCmds, dErrors, dStoreErrors, dAuthFailures, dConnsOpen, dConnsTotal, dShutting,
		dSessions, dBytes, dScanAge, dScanErrors, dSecEvents, dSecHook,
	} {
		ch <- d
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	var es engine.Stats
	haveEngine := false
	if m.opts.Server != nil {
		all := m.opts.Server()
		es, haveEngine = all.Engine, true
		collectServer(ch, all.Server)
	} else if m.opts.Engine != nil {
		es, haveEngine = m.opts.Engine(), true
	}
	if haveEngine {
		collectEngine(ch, es)
	}
	if sig := m.opts.Signals; sig != nil {
		for kind, n := range sig.Counts() {
			counter(ch, dSecEvents, n, string(kind))
		}
		hs := sig.HookStats()
		counter(ch, dSecHook, hs.Delivered, "delivered")
		counter(ch, dSecHook, hs.Failed, "failed")
		counter(ch, dSecHook, hs.Dropped, "dropped")
	}
	if m.opts.Store != nil && m.opts.ScanEvery >= 0 {
		m.maybeScan()
		if n := m.sessions.Load(); n >= 0 {
			ch <- prometheus.MustNewConstMetric(dSessions, prometheus.GaugeValue, float64(n))
		}
		if b := m.bytes.Load(); b >= 0 {
			ch <- prometheus.MustNewConstMetric(dBytes, prometheus.GaugeValue, float64(b))
		}
		m.scanMu.Lock()
		last := m.lastScan
		m.scanMu.Unlock()
		if !last.IsZero() {
			ch <- prometheus.MustNewConstMetric(dScanAge, prometheus.GaugeValue, time.Since(last).Seconds())
		}
		ch <- prometheus.MustNewConstMetric(dScanErrors, prometheus.CounterValue, float64(m.scanErrors.Load()))
	}
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v uint64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v int64) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
}

func collectEngine(ch chan<- prometheus.Metric, s engine.Stats) {
	counter(ch, dReads, s.Reads)
	counter(ch, dWrites, s.Writes)
	counter(ch, dMerges, s.Merges)
	counter(ch, dLazyWrites, s.Unchanged)
	counter(ch, dDropped, s.Dropped)
	counter(ch, dConflicts, s.ConflictsMine, string(engine.RuleMine))
	counter(ch, dConflicts, s.ConflictsTheirs, string(engine.RuleTheirs))
	counter(ch, dConflicts, s.ConflictsFail, string(engine.RuleFail))
	counter(ch, dLockWaits, s.LockWaits)
	counter(ch, dLockTimeouts, s.LockTimeouts)
	counter(ch, dLockHandOffs, s.LockHandOffs)
	gauge(ch, dLocksHeld, s.LocksHeld)
	gauge(ch, dClients, s.Clients)
	counter(ch, dInvalidIDs, s.InvalidIDs)
	counter(ch, dUnknownIDs, s.UnknownIDs)
	counter(ch, dRegenerates, s.Regenerates)
	counter(ch, dSwept, s.Swept)
}

func collectServer(ch chan<- prometheus.Metric, s server.ServerStats) {
	for name, n := range s.Commands {
		counter(ch, dCommands, n, name)
	}
	counter(ch, dUnknownCmds, s.UnknownCommands)
	for code, n := range s.Errors {
		counter(ch, dErrors, n, code)
	}
	counter(ch, dStoreErrors, s.Errors["BACKEND"])
	counter(ch, dAuthFailures, s.AuthFailures)
	gauge(ch, dConnsOpen, s.Connections)
	counter(ch, dConnsTotal, s.ConnectionsSeen)
	shutting := int64(0)
	if s.ShuttingDown {
		shutting = 1
	}
	gauge(ch, dShutting, shutting)
}
