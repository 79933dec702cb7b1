package sealed

import "github.com/phpsessd/phpsessd/handlers"

// ExactVersion implements handlers.ExactVersioner for the inner store's
// versions, which are the ones this store hands out: an unchanged inner
// record is an unchanged sealed one, whatever sealing did to its bytes.
func (s *Store) ExactVersion(v uint64) bool {
	ev, ok := s.inner.(handlers.ExactVersioner)
	return ok && ev.ExactVersion(v)
}
