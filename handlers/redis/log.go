package redis

import (
	"context"
	"fmt"
	"log/slog"

	goredis "github.com/redis/go-redis/v9"
)

// SetLogger routes go-redis's own diagnostics (dial failures, pool
// events), which otherwise go to the standard library logger on stderr,
// to l at Warn level. go-redis keeps one logger per process, so this is a
// process-wide setting for the daemon's main to make once; nil restores a
// silent logger.
func SetLogger(l *slog.Logger) {
	goredis.SetLogger(slogPrintf{l})
}

type slogPrintf struct{ l *slog.Logger }

func (p slogPrintf) Printf(ctx context.Context, format string, v ...any) {
	if p.l == nil {
		return
	}
	p.l.WarnContext(ctx, fmt.Sprintf(format, v...), "component", "go-redis")
}
