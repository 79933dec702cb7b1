package protocol

import (
	"fmt"
	"net"
	"strings"
)

// Address is a parsed listen or dial address.
type Address struct {
	Network string // "unix" or "tcp"
	Addr    string // socket path or host:port
}

// String renders the address back in URL form.
func (a Address) String() string {
	if a.Network == "unix" {
		return "unix://" + a.Addr
	}
	return "tcp://" + a.Addr
}

// ParseAddress parses "unix:///path/to.sock" or "tcp://host:port". A bare
// absolute path is taken as a unix socket and a bare host:port as TCP, so
// "phpsessd.address = /run/phpsessd/phpsessd.sock" works as people write it.
func ParseAddress(s string) (Address, error) {
	s = strings.TrimSpace(s)
	switch {
	case strings.HasPrefix(s, "unix://"):
		p := strings.TrimPrefix(s, "unix://")
		if p == "" {
			return Address{}, fmt.Errorf("address %q: empty socket path", s)
		}
		return Address{Network: "unix", Addr: p}, nil
	case strings.HasPrefix(s, "tcp://"):
		hp := strings.TrimSuffix(strings.TrimPrefix(s, "tcp://"), "/")
		if _, _, err := net.SplitHostPort(hp); err != nil {
			return Address{}, fmt.Errorf("address %q: %w", s, err)
		}
		return Address{Network: "tcp", Addr: hp}, nil
	case strings.HasPrefix(s, "/"):
		return Address{Network: "unix", Addr: s}, nil
	case strings.Contains(s, "://"):
		return Address{}, fmt.Errorf("address %q: unsupported scheme (use unix:// or tcp://)", s)
	default:
		if _, _, err := net.SplitHostPort(s); err != nil {
			return Address{}, fmt.Errorf("address %q: want unix:///path or tcp://host:port", s)
		}
		return Address{Network: "tcp", Addr: s}, nil
	}
}
