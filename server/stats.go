package server

import (
	"sync"
	"sync/atomic"

	"github.com/phpsessd/phpsessd/engine"
)

// stats are the server's own counters; per-command call counts live on the
// command table entries so counting a call is one atomic add.
type stats struct {
	connsTotal   atomic.Uint64
	connsOpen    atomic.Int64
	unknown      atomic.Uint64
	authFailures atomic.Uint64

	mu     sync.Mutex
	errors map[string]uint64
}

func (s *stats) countError(code string) {
	s.mu.Lock()
	if s.errors == nil {
		s.errors = make(map[string]uint64)
	}
	s.errors[code]++
	s.mu.Unlock()
}

// ServerStats is the server part of STATS.
type ServerStats struct {
	Listen          []string          `json:"listen"`
	Connections     int64             `json:"connections"`
	ConnectionsSeen uint64            `json:"connections_total"`
	Commands        map[string]uint64 `json:"commands"`
	UnknownCommands uint64            `json:"unknown_commands"`
	Errors          map[string]uint64 `json:"errors"`
	AuthFailures    uint64            `json:"auth_failures"`
	ShuttingDown    bool              `json:"shutting_down"`
}

// AllStats is what STATS returns.
type AllStats struct {
	Engine engine.Stats `json:"engine"`
	Server ServerStats  `json:"server"`
}

// Stats snapshots the engine and server counters.
func (s *Server) Stats() AllStats {
	ss := ServerStats{
		Listen:          s.Addrs(),
		Connections:     s.stats.connsOpen.Load(),
		ConnectionsSeen: s.stats.connsTotal.Load(),
		Commands:        make(map[string]uint64, len(s.table)),
		UnknownCommands: s.stats.unknown.Load(),
		Errors:          map[string]uint64{},
		AuthFailures:    s.stats.authFailures.Load(),
		ShuttingDown:    s.shutting.Load(),
	}
	for name, c := range s.table {
		if n := c.calls.Load(); n > 0 {
			ss.Commands[name] = n
		}
	}
	s.stats.mu.Lock()
	for k, v := range s.stats.errors {
		ss.Errors[k] = v
	}
	s.stats.mu.Unlock()
	return AllStats{Engine: s.eng.Stats(), Server: ss}
}
