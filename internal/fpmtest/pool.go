// Package fpmtest runs a private php-fpm pool and talks FastCGI to it, so
// integration tests and the bench command drive real PHP the way a web
// server does: same SAPI, same session extension, same shutdown order.
//
// Everything here is independent of the testing package; tests wrap it in
// tests/php with t.Cleanup, and `phpsessd bench` uses it directly.
package fpmtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/yookoala/gofast"
)

// DefaultFPM is the binary Debian's php8.2-fpm package installs.
const DefaultFPM = "/usr/sbin/php-fpm8.2"

// FindFPM returns the php-fpm binary to use: path when set, then
// $PHP_FPM, then the Debian default and the usual names on $PATH.
func FindFPM(path string) (string, error) {
	if path == "" {
		path = os.Getenv("PHP_FPM")
	}
	if path != "" {
		if _, err := os.Stat(path); err != nil {
			return "", fmt.Errorf("php-fpm binary %s: %w", path, err)
		}
		return path, nil
	}
	if _, err := os.Stat(DefaultFPM); err == nil {
		return DefaultFPM, nil
	}
	for _, name := range []string{"php-fpm8.2", "php-fpm", "php8.2-fpm"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("php-fpm not found (install php8.2-fpm or set PHP_FPM)")
}

// PoolConfig describes a php-fpm pool. Zero values are sensible defaults.
type PoolConfig struct {
	// Binary is the php-fpm executable; "" uses FindFPM.
	Binary string
	// Dir holds the config, socket, logs, docroot and session files. It
	// must exist; the caller removes it.
	Dir string
	// Children is the number of static workers (default 16).
	Children int
	// StartTimeout bounds the wait for the listen socket (default 15 s).
	StartTimeout time.Duration
	// RequestTerminate is php-fpm's request_terminate_timeout (default 60 s),
	// the last line of defence against a stuck page in a test run.
	RequestTerminate time.Duration
}

// Pool is a running php-fpm master with its children.
type Pool struct {
	cfg     PoolConfig
	cmd     *exec.Cmd
	Socket  string
	Docroot string
	// SavePath is a private directory for PHP's files handler.
	SavePath string
	ErrorLog string

	waitOnce sync.Once
	waitErr  error
	exited   chan struct{}
}

// StartPool writes a pool config into cfg.Dir, starts php-fpm in the
// foreground and returns once its socket accepts connections.
func StartPool(cfg PoolConfig) (*Pool, error) {
	bin, err := FindFPM(cfg.Binary)
	if err != nil {
		return nil, err
	}
	if cfg.Dir == "" {
		return nil, errors.New("fpmtest: PoolConfig.Dir is required")
	}
	if cfg.Children <= 0 {
		cfg.Children = 16
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 15 * time.Second
	}
	if cfg.RequestTerminate <= 0 {
		cfg.RequestTerminate = 60 * time.Second
	}
	p := &Pool{
		cfg:      cfg,
		Socket:   filepath.Join(cfg.Dir, "fpm.sock"),
		Docroot:  filepath.Join(cfg.Dir, "docroot"),
		SavePath: filepath.Join(cfg.Dir, "sessions"),
		ErrorLog: filepath.Join(cfg.Dir, "fpm.log"),
		exited:   make(chan struct{}),
	}
	for _, d := range []string{p.Docroot, p.SavePath} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("fpmtest: %w", err)
		}
	}
	if err := WritePages(p.Docroot); err != nil {
		return nil, err
	}
	conf := filepath.Join(cfg.Dir, "fpm.conf")
	if err := os.WriteFile(conf, []byte(p.config()), 0o644); err != nil {
		return nil, fmt.Errorf("fpmtest: write pool config: %w", err)
	}
	cmd := exec.Command(bin, "-F", "-R", "-y", conf)
	cmd.Dir = cfg.Dir
	// Own process group: if the master ever has to be killed hard, its
	// children go with it instead of lingering after the test binary.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := os.OpenFile(filepath.Join(cfg.Dir, "fpm.out"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("fpmtest: %w", err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("fpmtest: start %s: %w", bin, err)
	}
	p.cmd = cmd
	go func() {
		p.waitErr = cmd.Wait()
		out.Close()
		close(p.exited)
	}()
	if err := p.waitReady(); err != nil {
		p.Stop()
		return nil, fmt.Errorf("%w\n%s", err, p.Logs())
	}
	return p, nil
}

func (p *Pool) config() string {
	var b strings.Builder
	fmt.Fprintf(&b, "[global]\npid = %s\nerror_log = %s\nlog_level = notice\ndaemonize = no\n",
		filepath.Join(p.cfg.Dir, "fpm.pid"), p.ErrorLog)
	// A test that kills children on purpose must not trip the emergency
	// restart of the whole master.
	b.WriteString("emergency_restart_threshold = 0\nprocess_control_timeout = 2s\n\n")
	fmt.Fprintf(&b, "[phpsessd-test]\nlisten = %s\nlisten.mode = 0666\nlisten.backlog = 1024\n", p.Socket)
	fmt.Fprintf(&b, "pm = static\npm.max_children = %d\npm.max_requests = 0\n", p.cfg.Children)
	fmt.Fprintf(&b, "request_terminate_timeout = %ds\n", int(p.cfg.RequestTerminate/time.Second))
	b.WriteString("catch_workers_output = yes\ndecorate_workers_output = no\n")
	// Warnings must reach the FastCGI stderr stream, where tests count
	// them: log, don't display, and leave error_log unset.
	b.WriteString("php_admin_value[log_errors] = On\nphp_admin_value[display_errors] = Off\n")
	b.WriteString("php_admin_value[error_reporting] = 32767\nphp_admin_flag[fastcgi.logging] = On\n")
	b.WriteString("php_admin_value[max_execution_time] = 0\n")
	return b.String()
}

func (p *Pool) waitReady() error {
	deadline := time.Now().Add(p.cfg.StartTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			return fmt.Errorf("fpmtest: php-fpm exited during start: %v", p.waitErr)
		default:
		}
		c, err := net.DialTimeout("unix", p.Socket, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("fpmtest: php-fpm socket %s not ready after %v", p.Socket, p.cfg.StartTimeout)
}

// PID is the master's process id.
func (p *Pool) PID() int { return p.cmd.Process.Pid }

// Children lists the pids of the master's worker processes.
func (p *Pool) Children() []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid(pid) == p.PID() {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	return pids
}

func ppid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// The command name may hold spaces and parens: parse after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return -1
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// Stop ends the pool: SIGQUIT for a graceful finish, SIGTERM, and finally
// SIGKILL to the process group. It is safe to call more than once.
func (p *Pool) Stop() error {
	if p == nil || p.cmd == nil || p.cmd.Process == nil {
		return nil
	}
	select {
	case <-p.exited:
		return nil
	default:
	}
	steps := []struct {
		sig  syscall.Signal
		wait time.Duration
	}{{syscall.SIGQUIT, 3 * time.Second}, {syscall.SIGTERM, 3 * time.Second}}
	for _, s := range steps {
		_ = p.cmd.Process.Signal(s.sig)
		select {
		case <-p.exited:
			return nil
		case <-time.After(s.wait):
		}
	}
	_ = syscall.Kill(-p.PID(), syscall.SIGKILL)
	select {
	case <-p.exited:
		return errors.New("fpmtest: php-fpm needed SIGKILL to stop")
	case <-time.After(5 * time.Second):
		return errors.New("fpmtest: php-fpm did not exit after SIGKILL")
	}
}

// Logs returns the master's error log and the captured worker output.
func (p *Pool) Logs() string {
	var b strings.Builder
	for _, f := range []string{p.ErrorLog, filepath.Join(p.cfg.Dir, "fpm.out")} {
		data, err := os.ReadFile(f)
		if err == nil && len(data) > 0 {
			fmt.Fprintf(&b, "--- %s\n%s", filepath.Base(f), tail(data, 16<<10))
		}
	}
	return b.String()
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// Request is one FastCGI request to a page of the docroot.
type Request struct {
	// Script is the page's file name in the docroot ("hits.php").
	Script string
	// Method defaults to GET.
	Method string
	// Query is appended to the request URI.
	Query string
	// SessionID, when set, is sent as the session cookie.
	SessionID string
	// Cookie, when set, replaces the Cookie header entirely.
	Cookie string
	// INI is sent as PHP_VALUE. Because php-fpm keeps PHP_VALUE settings
	// in the child for later requests, callers pass a complete Handler
	// setting rather than a delta (see Handler.INI).
	INI map[string]string
	// Params are extra FastCGI params (e.g. PHPSESSD_ADDRESS).
	Params map[string]string
	// Body is sent as stdin (POST).
	Body []byte
	// Timeout bounds the whole exchange (default 30 s).
	Timeout time.Duration
}

// Response is what php-fpm answered.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	// Stderr is everything PHP wrote to the FastCGI stderr stream: logged
	// warnings and notices end up here.
	Stderr string
	// Start and End bracket the exchange on the local clock.
	Start, End time.Time
}

// Duration is the request's wall time.
func (r *Response) Duration() time.Duration { return r.End.Sub(r.Start) }

// Warnings returns the PHP warnings, notices and errors seen on stderr,
// one entry each. php-fpm joins the messages of one request into a single
// stderr line ("PHP message: …; PHP message: …"), so lines are split again.
func (r *Response) Warnings() []string {
	var out []string
	for _, line := range strings.Split(r.Stderr, "\n") {
		for _, m := range strings.Split(line, "PHP message: ") {
			m = strings.TrimSuffix(strings.TrimSpace(m), ";")
			if strings.HasPrefix(m, "PHP Warning") || strings.HasPrefix(m, "PHP Fatal") ||
				strings.HasPrefix(m, "PHP Notice") || strings.HasPrefix(m, "PHP Deprecated") {
				out = append(out, m)
			}
		}
	}
	return out
}

// SessionCookie returns the session id the response set, or "".
func (r *Response) SessionCookie(name string) string {
	if name == "" {
		name = "PHPSESSID"
	}
	id := ""
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name != name {
			continue
		}
		// PHP may send the cookie twice in one response (regenerate);
		// the last one is what a browser keeps.
		id = c.Value
		if c.MaxAge < 0 || (!c.Expires.IsZero() && c.Expires.Before(time.Now())) {
			id = ""
		}
	}
	return id
}

// Do sends req to the pool and reads the whole response.
func (p *Pool) Do(ctx context.Context, req Request) (*Response, error) {
	return Do(ctx, p.Socket, p.Docroot, req)
}

// Do sends req to the FastCGI server on the unix socket and reads the
// whole response. Every call uses its own connection: gofast always asks
// php-fpm to keep the connection, so the client is closed here.
func Do(ctx context.Context, socket, docroot string, req Request) (*Response, error) {
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	factory := gofast.SimpleClientFactory(func() (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "unix", socket)
		if err != nil {
			return nil, err
		}
		// gofast.Do has no timeout of its own; the deadline on the
		// connection is what ends a stuck exchange.
		if err := c.SetDeadline(deadline); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	})
	client, err := factory()
	if err != nil {
		return nil, fmt.Errorf("fpmtest: connect %s: %w", socket, err)
	}
	defer client.Close()

	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	uri := "/" + req.Script
	if req.Query != "" {
		uri += "?" + req.Query
	}
	freq := gofast.NewRequest(nil)
	pr := freq.Params
	pr["GATEWAY_INTERFACE"] = "CGI/1.1"
	pr["SERVER_SOFTWARE"] = "phpsessd-fpmtest"
	pr["SERVER_PROTOCOL"] = "HTTP/1.1"
	pr["SERVER_NAME"] = "localhost"
	pr["SERVER_ADDR"] = "127.0.0.1"
	pr["SERVER_PORT"] = "80"
	pr["REMOTE_ADDR"] = "127.0.0.1"
	pr["REMOTE_PORT"] = "50000"
	pr["HTTP_HOST"] = "localhost"
	pr["HTTP_USER_AGENT"] = "phpsessd-fpmtest"
	pr["REQUEST_METHOD"] = method
	pr["REQUEST_URI"] = uri
	pr["QUERY_STRING"] = req.Query
	pr["SCRIPT_NAME"] = "/" + req.Script
	pr["SCRIPT_FILENAME"] = filepath.Join(docroot, req.Script)
	pr["DOCUMENT_ROOT"] = docroot
	pr["DOCUMENT_URI"] = "/" + req.Script
	pr["REQUEST_TIME_FLOAT"] = strconv.FormatFloat(float64(time.Now().UnixNano())/1e9, 'f', 6, 64)
	cookie := req.Cookie
	if cookie == "" && req.SessionID != "" {
		cookie = "PHPSESSID=" + req.SessionID
	}
	if cookie != "" {
		pr["HTTP_COOKIE"] = cookie
	}
	if len(req.INI) > 0 {
		pr["PHP_VALUE"] = encodeINI(req.INI)
	}
	for k, v := range req.Params {
		pr[k] = v
	}
	if req.Body != nil {
		pr["CONTENT_LENGTH"] = strconv.Itoa(len(req.Body))
		pr["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
		freq.Stdin = readCloser{bytes.NewReader(req.Body)}
	} else {
		pr["CONTENT_LENGTH"] = "0"
	}

	resp := &Response{Start: time.Now()}
	pipe, err := client.Do(freq)
	if err != nil {
		return nil, fmt.Errorf("fpmtest: fastcgi request %s: %w", uri, err)
	}
	rec := httptest.NewRecorder()
	var stderr bytes.Buffer
	werr := pipe.WriteTo(rec, &stderr)
	resp.End = time.Now()
	resp.Status = rec.Code
	resp.Header = rec.Header()
	resp.Body = rec.Body.Bytes()
	resp.Stderr = stderr.String()
	if werr != nil {
		return resp, fmt.Errorf("fpmtest: read response of %s: %w (stderr: %q)", uri, werr, resp.Stderr)
	}
	return resp, nil
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// encodeINI renders settings the way php-fpm parses PHP_VALUE: one
// key=value per line. Values are quoted so that paths, URLs with '?' and
// empty strings survive the ini scanner.
func encodeINI(ini map[string]string) string {
	keys := make([]string, 0, len(ini))
	for k := range ini {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=\"%s\"\n", k, strings.ReplaceAll(ini[k], `"`, ``))
	}
	return b.String()
}
