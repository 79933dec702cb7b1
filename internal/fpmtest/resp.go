package fpmtest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/phpsessd/phpsessd/protocol"
)

// RESPError is an error reply ("-CODE message").
type RESPError struct{ Msg string }

func (e *RESPError) Error() string { return e.Msg }

// Code is the first word of the error reply.
func (e *RESPError) Code() string {
	code, _, _ := strings.Cut(e.Msg, " ")
	return code
}

// RESPConn is a minimal RESP2 client for readiness checks of the daemon
// and of redis-server (which protocol.Client, speaking phpsessd's
// dialect, is not meant for).
type RESPConn struct {
	c net.Conn
	r *bufio.Reader
}

// DialRESP connects to "unix:///path", "tcp://host:port" or "host:port".
func DialRESP(ctx context.Context, address string) (*RESPConn, error) {
	network, addr := SplitAddress(address)
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("fpmtest: dial %s: %w", address, err)
	}
	return &RESPConn{c: c, r: bufio.NewReader(c)}, nil
}

// SplitAddress turns a daemon address into net.Dial arguments.
func SplitAddress(address string) (network, addr string) {
	switch {
	case strings.HasPrefix(address, "unix://"):
		return "unix", strings.TrimPrefix(address, "unix://")
	case strings.HasPrefix(address, "tcp://"):
		return "tcp", strings.TrimPrefix(address, "tcp://")
	case strings.HasPrefix(address, "/"):
		return "unix", address
	}
	return "tcp", address
}

// Close closes the connection.
func (c *RESPConn) Close() error { return c.c.Close() }

// Do sends one command and reads its reply: string, int64, nil, []any or
// *RESPError (returned as the error).
func (c *RESPConn) Do(timeout time.Duration, args ...string) (any, error) {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	if err := c.c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, fmt.Errorf("fpmtest: set deadline: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(c.c, b.String()); err != nil {
		return nil, fmt.Errorf("fpmtest: send %s: %w", args[0], err)
	}
	v, err := c.read(0)
	if err != nil {
		return nil, err
	}
	if e, ok := v.(*RESPError); ok {
		return nil, e
	}
	return v, nil
}

func (c *RESPConn) read(depth int) (any, error) {
	if depth > 8 {
		return nil, errors.New("fpmtest: reply nested too deep")
	}
	line, err := c.r.ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("fpmtest: read reply: %w", err)
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("fpmtest: empty reply line")
	}
	body := line[1:]
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return &RESPError{Msg: body}, nil
	case ':':
		n, err := strconv.ParseInt(body, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("fpmtest: bad integer reply %q", line)
		}
		return n, nil
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n > 64<<20 {
			return nil, fmt.Errorf("fpmtest: bad bulk length %q", line)
		}
		if n < 0 {
			return nil, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(c.r, buf); err != nil {
			return nil, fmt.Errorf("fpmtest: read bulk: %w", err)
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n > 1<<16 {
			return nil, fmt.Errorf("fpmtest: bad array length %q", line)
		}
		if n < 0 {
			return nil, nil
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = c.read(depth + 1); err != nil {
				return nil, err
			}
			if e, ok := out[i].(*RESPError); ok {
				out[i] = e
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("fpmtest: unknown reply type %q", line)
}

// SessionInfo is the daemon's INFO reply (see protocol/PROTOCOL.md).
type SessionInfo struct {
	Exists  bool            `json:"exists"`
	Version uint64          `json:"version"`
	Size    int             `json:"size"`
	Format  string          `json:"format"`
	AliasOf string          `json:"alias_of"`
	Data    json.RawMessage `json:"data"`
	Raw     map[string]any  `json:"-"`
}

// Info asks the daemon at address for INFO <id>, through the project's
// own protocol client so the test also exercises it.
func Info(ctx context.Context, address, token, id string) (*SessionInfo, error) {
	c, err := protocol.Dial(ctx, address)
	if err != nil {
		return nil, fmt.Errorf("fpmtest: %w", err)
	}
	defer c.Close()
	if token != "" {
		if _, err := c.Hello(ctx, token, "fpmtest"); err != nil {
			return nil, fmt.Errorf("fpmtest: HELLO: %w", err)
		}
	}
	rep, err := c.Do(ctx, "INFO", id)
	if err != nil {
		return nil, fmt.Errorf("fpmtest: INFO %s: %w", id, err)
	}
	s := rep.Text()
	info := &SessionInfo{}
	if err := json.Unmarshal([]byte(s), info); err != nil {
		return nil, fmt.Errorf("fpmtest: INFO %s: %w (reply %q)", id, err, s)
	}
	_ = json.Unmarshal([]byte(s), &info.Raw)
	return info, nil
}
