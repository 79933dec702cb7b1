package sealed

import "github.com/phpsessd/phpsessd/engine"

// EngineLocker returns the inner store's cross-daemon locker, or nil when
// it has none. Sealing changes what is stored, not who may hold a session,
// so the wrapper must not hide the locker that keeps daemons sharing the
// inner store (Redis) out of each other's locked requests; every store
// decorator forwards it the same way.
func (s *Store) EngineLocker() engine.Locker {
	if lp, ok := s.inner.(interface{ EngineLocker() engine.Locker }); ok {
		return lp.EngineLocker()
	}
	return nil
}
