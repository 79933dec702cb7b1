package protocol

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"
)

// Client is a minimal phpsessd client: one connection, one command at a
// time. It is safe for concurrent use (calls are serialised), but callers
// that need throughput open several clients.
type Client struct {
	mu     sync.Mutex
	conn   net.Conn
	r      *Reader
	w      *Writer
	broken error // set after an I/O error: the stream position is unknown

	deadline    time.Time // the connection's current deadline
	interrupted bool      // a cancel moved the deadline behind our back
}

// ClientLimits are the limits a Client applies to replies: generous, since
// a reply carries whole sessions and the server enforces the real limits.
var ClientLimits = Limits{MaxFrame: 256 << 20, MaxArgs: 1 << 20}

// Dial connects to "unix:///path" or "tcp://host:port".
func Dial(ctx context.Context, addr string) (*Client, error) {
	a, err := ParseAddress(addr)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, a.Network, a.Addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", a, err)
	}
	return NewClient(conn), nil
}

// NewClient wraps an established connection.
func NewClient(conn net.Conn) *Client {
	return &Client{conn: conn, r: NewReader(conn, ClientLimits), w: NewWriter(conn)}
}

// Close closes the connection; the server then releases this connection's
// locks.
func (c *Client) Close() error { return c.conn.Close() }

// Conn exposes the connection, for tests that need to send raw bytes.
func (c *Client) Conn() net.Conn { return c.conn }

// Hello performs the handshake, authenticating when token is not empty, and
// returns the server's key/value reply.
func (c *Client) Hello(ctx context.Context, token, name string) (map[string]string, error) {
	args := []any{"HELLO", "1"}
	if token != "" {
		args = append(args, "AUTH", token)
	}
	if name != "" {
		args = append(args, "NAME", name)
	}
	rep, err := c.Do(ctx, args...)
	if err != nil {
		return nil, err
	}
	if rep.Kind != KindArray || len(rep.Array)%2 != 0 {
		return nil, fmt.Errorf("hello: unexpected reply %s", rep)
	}
	m := make(map[string]string, len(rep.Array)/2)
	for i := 0; i < len(rep.Array); i += 2 {
		m[rep.Array[i].Text()] = rep.Array[i+1].Text()
	}
	return m, nil
}

// Auth sends AUTH <token>.
func (c *Client) Auth(ctx context.Context, token string) error {
	_, err := c.Do(ctx, "AUTH", token)
	return err
}

// Do sends one command and reads its reply. Arguments may be string,
// []byte, int, int64 or uint64. An error reply comes back as a
// *ServerError (with the reply itself also returned); ctx bounds the whole
// round trip, and a round trip cut short leaves the client unusable
// because the reply may still arrive later.
func (c *Client) Do(ctx context.Context, args ...any) (Reply, error) {
	bargs := make([][]byte, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case string:
			bargs[i] = []byte(v)
		case []byte:
			bargs[i] = v
		case int:
			bargs[i] = strconv.AppendInt(nil, int64(v), 10)
		case int64:
			bargs[i] = strconv.AppendInt(nil, v, 10)
		case uint64:
			bargs[i] = strconv.AppendUint(nil, v, 10)
		default:
			return Reply{}, fmt.Errorf("do: argument %d has unsupported type %T", i, a)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return Reply{}, fmt.Errorf("client unusable after earlier error: %w", c.broken)
	}
	rep, err := c.roundTrip(ctx, bargs)
	if err != nil {
		c.broken = err
		return Reply{}, err
	}
	if rep.Kind == KindError {
		return rep, ParseServerError(string(rep.Str))
	}
	return rep, nil
}

func (c *Client) roundTrip(ctx context.Context, args [][]byte) (Reply, error) {
	if err := ctx.Err(); err != nil {
		return Reply{}, err
	}
	// Deadline syscalls and cancel hooks cost as much as a small round
	// trip, so they are only made when the context asks for them.
	dl, _ := ctx.Deadline()
	if !dl.Equal(c.deadline) || c.interrupted {
		if err := c.conn.SetDeadline(dl); err != nil {
			return Reply{}, fmt.Errorf("set deadline: %w", err)
		}
		c.deadline, c.interrupted = dl, false
	}
	if ctx.Done() != nil {
		// A cancel without a deadline still has to interrupt a blocked read.
		stop := context.AfterFunc(ctx, func() { c.conn.SetDeadline(time.Unix(1, 0)) })
		defer func() {
			if !stop() {
				c.interrupted = true
			}
		}()
	}
	if err := c.w.WriteRequest(args...); err != nil {
		return Reply{}, c.ctxErr(ctx, fmt.Errorf("write request: %w", err))
	}
	if err := c.w.Flush(); err != nil {
		return Reply{}, c.ctxErr(ctx, fmt.Errorf("write request: %w", err))
	}
	rep, err := c.r.ReadReply()
	if err != nil {
		return Reply{}, c.ctxErr(ctx, fmt.Errorf("read reply: %w", err))
	}
	return rep, nil
}

// ctxErr prefers the context's reason over the deadline error it caused.
func (c *Client) ctxErr(ctx context.Context, err error) error {
	cerr := ctx.Err()
	if cerr == nil && errors.Is(err, os.ErrDeadlineExceeded) {
		// The socket deadline can fire a moment before the context's timer.
		if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl.Add(-time.Millisecond)) {
			cerr = context.DeadlineExceeded
		}
	}
	if cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	return err
}
