// Package redis is phpsessd's Redis and Valkey session store: standalone,
// TLS, Sentinel and Cluster deployments through one go-redis UniversalClient,
// opened by URL (redis://, rediss://, redis+sentinel://, redis+cluster://,
// redis+unix://). Session data lives at the key PHP's phpredis extension
// uses, as the raw PHP-encoded string with a native TTL, so phpredis and
// phpsessd can serve the same sessions during a rollout; the version and
// the engine's metadata live in a sibling hash in the same cluster slot,
// and every compare-and-swap runs as one Lua script, so several daemons
// sharing one Redis never lose an update. The package also provides a
// cross-daemon Locker (leased, FIFO hand-off, woken through per-waiter
// blocking lists rather than polling). README.md documents URLs, key
// layouts, the version scheme and the lock algorithm.
package redis
