package engine

import (
	"context"
	"time"
)

// startSweeper runs Store.Sweep every SweepInterval until Close. PHP's own
// gc is probabilistic and runs inside requests; here expiry is one
// background job, so GC from PHP costs nothing.
func (e *Engine) startSweeper() {
	ctx, cancel := context.WithCancel(context.Background())
	e.stopSweep = cancel
	e.sweepDone = make(chan struct{})
	go func() {
		defer close(e.sweepDone)
		t := time.NewTicker(e.cfg.SweepInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				e.sweep(ctx, now)
			}
		}
	}()
}

func (e *Engine) sweep(ctx context.Context, now time.Time) {
	sctx, cancel := context.WithTimeout(ctx, e.cfg.SweepInterval)
	defer cancel()
	n, err := e.store.Sweep(sctx, now)
	if err != nil {
		if ctx.Err() == nil {
			e.log.Warn("expiry sweep failed", "err", err)
		}
		return
	}
	if n > 0 {
		e.st.swept.Add(uint64(n))
		e.sweptSinceGC.Add(int64(n))
		e.log.Debug("expired sessions swept", "count", n)
	}
}

func (e *Engine) stopSweeper() {
	if e.stopSweep != nil {
		e.stopSweep()
		<-e.sweepDone
	}
}

// GC is PHP's gc callback: sweeping is the engine's own job, so this only
// reports how many sessions the sweeper removed since the last call.
// maxLifetimeSeconds is ignored: every session carries its own expiry.
func (e *Engine) GC(ctx context.Context, maxLifetimeSeconds int64) (int64, error) {
	if err := e.enter(); err != nil {
		return 0, err
	}
	return e.sweptSinceGC.Swap(0), nil
}

// SweepNow runs one expiry sweep at once (tests, admin tools) and returns
// how many sessions it removed.
func (e *Engine) SweepNow(ctx context.Context) (int, error) {
	if err := e.enter(); err != nil {
		return 0, err
	}
	n, err := e.store.Sweep(ctx, time.Now())
	if err != nil {
		return 0, err
	}
	e.st.swept.Add(uint64(n))
	e.sweptSinceGC.Add(int64(n))
	return n, nil
}
