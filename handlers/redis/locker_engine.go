package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/phpsessd/phpsessd/engine"
)

// EngineLocker adapts Locker to engine.Locker.
type EngineLocker struct{ *Locker }

var _ engine.Locker = EngineLocker{}

// EngineLocker returns the store's lock manager as an engine.Locker. The
// daemon can pick it up without importing this package by asserting
// interface{ EngineLocker() engine.Locker } on the opened store.
func (s *Store) EngineLocker() engine.Locker { return EngineLocker{s.Locker()} }

// Acquire implements engine.Locker; a wait that ends because the context's
// deadline passed wraps engine.ErrLockTimeout.
func (l EngineLocker) Acquire(ctx context.Context, id, owner string, lease time.Duration) (engine.Lock, error) {
	lk, err := l.AcquireLock(ctx, id, owner, lease)
	if err != nil {
		if errors.Is(err, errLockWait) && errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("%w: %w", engine.ErrLockTimeout, err)
		}
		return nil, err
	}
	return lk, nil
}
