package files

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Defaults, matching PHP's files handler and php.ini.
const (
	DefaultMode = os.FileMode(0o600)
	DefaultTTL  = 1440 * time.Second // session.gc_maxlifetime
	// MaxDepth bounds depth; PHP accepts any, but deeper trees only cost.
	MaxDepth = 8
	// MaxIDLength keeps "sess_"+id within a 255-byte file name.
	MaxIDLength = 250
)

// Options configure a files store.
type Options struct {
	// Dir is the session directory (PHP's save_path without the N; and
	// MODE; prefixes). It is created if missing.
	Dir string
	// Depth is PHP's dirdepth N: sess files live in N levels of
	// one-character subdirectories named after the id's first characters.
	Depth int
	// Mode is the permission of session files; directories get the same
	// bits plus search (x) wherever read is granted. 0 means 0600.
	Mode os.FileMode
	// TTL is the lifetime of a session that carries no phpsessd expiry
	// (written by PHP itself): expires = mtime + TTL, like PHP's gc with
	// gc_maxlifetime = TTL. phpsessd writes set mtime = expires - TTL so
	// PHP's gc and phpsessd agree. 0 means 1440 s.
	TTL time.Duration
	// Fsync flushes data and directory entries to disk before a write
	// returns. Off by default, like PHP: rename still makes every write
	// atomic for readers, but a power loss may lose recent writes.
	Fsync bool
}

// ParseURL reads a files:// URL: the path is the directory (files:///abs
// or files:rel), the query holds depth, mode (octal), ttl (seconds) and
// fsync (0/1).
func ParseURL(u *url.URL) (Options, error) {
	var o Options
	switch {
	case u.Opaque != "":
		o.Dir = u.Opaque
	case u.Host != "" && u.Host != "localhost":
		return o, fmt.Errorf("files store: url host %q: use files:///absolute/dir", u.Host)
	default:
		o.Dir = u.Path
	}
	if o.Dir == "" {
		return o, fmt.Errorf("files store: url %q names no directory", u.String())
	}
	for k, vs := range u.Query() {
		v := vs[len(vs)-1]
		switch k {
		case "depth":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > MaxDepth {
				return o, fmt.Errorf("files store: depth %q: want 0..%d", v, MaxDepth)
			}
			o.Depth = n
		case "mode":
			m, err := parseMode(v)
			if err != nil {
				return o, err
			}
			o.Mode = m
		case "ttl":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 || n > 1<<31 {
				return o, fmt.Errorf("files store: ttl %q: want seconds > 0", v)
			}
			o.TTL = time.Duration(n) * time.Second
		case "fsync":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return o, fmt.Errorf("files store: fsync %q: want 0 or 1", v)
			}
			o.Fsync = b
		default:
			return o, fmt.Errorf("files store: unknown option %q", k)
		}
	}
	return o, nil
}

func parseMode(v string) (os.FileMode, error) {
	n, err := strconv.ParseUint(v, 8, 32)
	if err != nil || n == 0 || n > 0o777 {
		return 0, fmt.Errorf("files store: mode %q: want octal permission bits such as 0600", v)
	}
	if n&0o600 != 0o600 {
		return 0, fmt.Errorf("files store: mode %q: the owner needs read and write", v)
	}
	return os.FileMode(n), nil
}

// SavePathURL turns a PHP session.save_path ("/dir", "N;/dir" or
// "N;MODE;/dir") into the equivalent files:// URL, so a daemon can be
// pointed at the value from php.ini.
func SavePathURL(savePath string) (string, error) {
	parts := strings.Split(savePath, ";")
	dir := parts[len(parts)-1]
	q := url.Values{}
	switch len(parts) {
	case 1:
	case 2, 3:
		n, err := strconv.Atoi(parts[0])
		if err != nil || n < 0 || n > MaxDepth {
			return "", fmt.Errorf("files store: save_path %q: bad depth %q", savePath, parts[0])
		}
		if n > 0 {
			q.Set("depth", strconv.Itoa(n))
		}
		if len(parts) == 3 {
			if _, err := parseMode(parts[1]); err != nil {
				return "", fmt.Errorf("files store: save_path %q: %w", savePath, err)
			}
			q.Set("mode", parts[1])
		}
	default:
		return "", fmt.Errorf("files store: save_path %q: want /dir, N;/dir or N;MODE;/dir", savePath)
	}
	if dir == "" {
		return "", fmt.Errorf("files store: save_path %q names no directory", savePath)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("files store: save_path %q: %w", savePath, err)
	}
	u := url.URL{Scheme: "files", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}
	return u.String(), nil
}
