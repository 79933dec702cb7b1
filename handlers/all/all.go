// Package all registers every session store backend with package handlers,
// so the daemon (or a tool) can open any store URL after a single blank
// import of this package instead of tracking the list of backends itself.
package all

import (
	// Each backend registers its URL scheme from init.
	_ "github.com/phpsessd/phpsessd/handlers/files"
	_ "github.com/phpsessd/phpsessd/handlers/memory"
	_ "github.com/phpsessd/phpsessd/handlers/redis"
)
