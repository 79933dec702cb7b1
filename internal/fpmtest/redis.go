package fpmtest

import (
	"fmt"

	"github.com/phpsessd/phpsessd/internal/testserver"
)

// Redis is a private redis-server on a free loopback port, for comparing
// with phpredis' session handler.
type Redis = testserver.Redis

// StartRedis runs redis-server (bin, or the one on $PATH when empty)
// without persistence, bound to 127.0.0.1, with dir as its working
// directory. The caller stops it.
func StartRedis(bin, dir string) (*Redis, error) {
	r := &Redis{Bin: bin, Dir: dir}
	if err := r.Start(); err != nil {
		return nil, fmt.Errorf("fpmtest: %w", err)
	}
	return r, nil
}
