package cache

import "github.com/phpsessd/phpsessd/engine"

// EngineLocker returns the inner store's cross-daemon locker, or nil when
// it has none. A read cache does not change who may hold a session, so
// the wrapper must not hide the locker that keeps daemons sharing the
// inner store out of each other's locked requests; every store decorator
// forwards it the same way.
func (c *Cache) EngineLocker() engine.Locker {
	if lp, ok := c.inner.(interface{ EngineLocker() engine.Locker }); ok {
		return lp.EngineLocker()
	}
	return nil
}
