package cache

import "github.com/phpsessd/phpsessd/handlers"

// ExactVersion implements handlers.ExactVersioner for the inner store's
// versions: every Save goes to the inner store's compare-and-swap, so the
// cache adds nothing a version could miss.
func (c *Cache) ExactVersion(v uint64) bool {
	ev, ok := c.inner.(handlers.ExactVersioner)
	return ok && ev.ExactVersion(v)
}
