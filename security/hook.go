package security

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// deliverer posts one encoded event.
type deliverer interface {
	deliver(ctx context.Context, payload []byte) error
	String() string
}

// ValidateHook checks a hook specification the way New does, so a daemon
// can reject --security-hook while parsing flags. Accepted:
//
//	http://127.0.0.1:8080/phpsessd     POST to a loopback URL
//	https://localhost/hook             (localhost, 127.0.0.0/8 or ::1 only)
//	/usr/local/bin/phpsessd-ban --jail web   run a command, event on stdin
//
// Any other host is refused: events name attackers' addresses and session
// id hashes and must not leave the machine over an unconfigured channel.
// A command must be an absolute path to an executable file; arguments are
// split on spaces and passed without a shell.
func ValidateHook(spec string) error {
	_, err := parseHook(spec)
	return err
}

func parseHook(spec string) (deliverer, error) {
	spec = strings.TrimSpace(spec)
	switch {
	case spec == "":
		return nil, errors.New("security hook: empty")
	case strings.HasPrefix(spec, "http://") || strings.HasPrefix(spec, "https://"):
		return parseHTTPHook(spec)
	case strings.Contains(spec, "://"):
		return nil, fmt.Errorf("security hook %q: only http:// and https:// URLs (on loopback) or an absolute command path", spec)
	default:
		return parseCommandHook(spec)
	}
}

func parseHTTPHook(spec string) (*httpHook, error) {
	u, err := url.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("security hook: %w", err)
	}
	if u.User != nil {
		return nil, fmt.Errorf("security hook %s: credentials in the URL are not supported", u.Redacted())
	}
	if !loopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("security hook %s: host %q is not a loopback address (127.0.0.0/8, ::1, localhost)", u.Redacted(), u.Hostname())
	}
	h := &httpHook{url: u.String()}
	dialer := &net.Dialer{Timeout: 2 * time.Second}
	h.client = &http.Client{
		Transport: &http.Transport{
			Proxy: nil, // an HTTP_PROXY from the environment must not carry events off the host
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := dialer.DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				// "localhost" is resolved by the system: check where it went.
				if ta, ok := c.RemoteAddr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
					c.Close()
					return nil, fmt.Errorf("security hook: %s resolved to non-loopback %s", addr, c.RemoteAddr())
				}
				return c, nil
			},
			MaxIdleConns:          2,
			IdleConnTimeout:       30 * time.Second,
			ResponseHeaderTimeout: 10 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return h, nil
}

func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

type httpHook struct {
	url    string
	client *http.Client
}

func (h *httpHook) String() string { return h.url }

func (h *httpHook) deliver(ctx context.Context, payload []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("post %s: %w", h.url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "phpsessd-security-hook/1")
	resp, err := h.client.Do(req)
	if err != nil {
		return fmt.Errorf("post %s: %w", h.url, err)
	}
	defer resp.Body.Close()
	// Drain a little so the connection can be reused; never read a
	// hostile endless body.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("post %s: HTTP %s", h.url, resp.Status)
	}
	return nil
}

func parseCommandHook(spec string) (*cmdHook, error) {
	fields := strings.Fields(spec)
	path := fields[0]
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("security hook %q: command must be an absolute path", path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("security hook: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return nil, fmt.Errorf("security hook %s: not an executable file", path)
	}
	return &cmdHook{path: path, args: fields[1:]}, nil
}

type cmdHook struct {
	path string
	args []string
}

func (h *cmdHook) String() string { return strings.Join(append([]string{h.path}, h.args...), " ") }

// deliver runs the command with the event on stdin. The environment is
// reduced to PATH and LANG so daemon secrets (tokens, $PHPSESSD_KEYS)
// never reach the hook; its output is kept (bounded) for the error only.
func (h *cmdHook) deliver(ctx context.Context, payload []byte) error {
	cmd := exec.CommandContext(ctx, h.path, h.args...)
	cmd.Stdin = bytes.NewReader(payload)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
	cmd.Dir = "/"
	out := &capped{max: 1 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	// A hook that forks a child keeping our pipes open must not hold the
	// worker past the kill.
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("run %s: %w (%v)", h.path, ctx.Err(), err)
		}
		return fmt.Errorf("run %s: %w; output: %q", h.path, err, out.String())
	}
	return nil
}

// capped keeps the first max bytes written to it and discards the rest.
type capped struct {
	buf bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (c *capped) String() string { return c.buf.String() }
