package fpmtest

import (
	"maps"
	"strconv"
)

// Handler is one way of storing sessions, expressed as the complete set of
// ini keys and FastCGI params a request needs. php-fpm keeps every
// PHP_VALUE key in the child for its later requests, so each Handler sets
// every key any handler of this package reads, not just the ones it
// changes: otherwise a files request after a phpsessd request would still
// run the shim.
type Handler struct {
	Name   string
	INI    map[string]string
	Params map[string]string
}

// baseINI is the common ground of every handler.
func baseINI() map[string]string {
	return map[string]string{
		"session.save_handler":           "files",
		"session.save_path":              "",
		"session.serialize_handler":      "php",
		"session.use_strict_mode":        "0",
		"session.use_cookies":            "1",
		"session.use_only_cookies":       "1",
		"session.use_trans_sid":          "0",
		"session.name":                   "PHPSESSID",
		"session.gc_maxlifetime":         "1440",
		"session.gc_probability":         "0",
		"session.gc_divisor":             "100",
		"session.lazy_write":             "1",
		"session.cache_limiter":          "nocache",
		"session.sid_length":             "26",
		"session.sid_bits_per_character": "5",
		"auto_prepend_file":              "",
	}
}

// Files is PHP's default handler writing sess_<id> files to dir.
func Files(dir string) Handler {
	ini := baseINI()
	ini["session.save_path"] = dir
	return Handler{Name: "files", INI: ini, Params: map[string]string{}}
}

// Phpsessd wires the pure-PHP shim through auto_prepend_file. address is
// the daemon's address as the shim expects it ("unix:///path/d.sock");
// mode is "" (daemon rules), optimistic, readonly or locked.
func Phpsessd(bootstrap, address, mode string) Handler {
	ini := baseINI()
	ini["auto_prepend_file"] = bootstrap
	params := map[string]string{"PHPSESSD_ADDRESS": address}
	if mode != "" {
		params["PHPSESSD_MODE"] = mode
	}
	name := "phpsessd"
	if mode != "" {
		name += " " + mode
	}
	return Handler{Name: name, INI: ini, Params: params}
}

// PHPRedis is phpredis' session handler against addr ("127.0.0.1:6380").
// locking turns on phpredis' session locks; waitForever makes a waiter
// retry until it gets the lock instead of giving up after the default
// retries (and then failing the write).
func PHPRedis(addr string, locking, waitForever bool) Handler {
	ini := baseINI()
	ini["session.save_handler"] = "redis"
	ini["session.save_path"] = "tcp://" + addr
	ini["redis.session.locking_enabled"] = boolINI(locking)
	ini["redis.session.lock_expire"] = "60"
	// phpredis 5.3 defaults: 10 retries 2 ms apart, then the request runs
	// without the lock and its write fails.
	ini["redis.session.lock_wait_time"] = "2000"
	ini["redis.session.lock_retries"] = "10"
	if waitForever {
		ini["redis.session.lock_retries"] = "-1"
	}
	name := "phpredis"
	switch {
	case !locking:
		name += " no lock"
	case waitForever:
		name += " lock, wait forever"
	default:
		name += " lock"
	}
	return Handler{Name: name, INI: ini, Params: map[string]string{}}
}

func boolINI(b bool) string { return strconv.Itoa(map[bool]int{false: 0, true: 1}[b]) }

// With returns a copy of h with extra ini keys and params layered on top.
func (h Handler) With(ini, params map[string]string) Handler {
	out := Handler{Name: h.Name, INI: maps.Clone(h.INI), Params: maps.Clone(h.Params)}
	maps.Copy(out.INI, ini)
	maps.Copy(out.Params, params)
	return out
}

// Req builds a request for script with this handler's settings.
func (h Handler) Req(script, query, sessionID string) Request {
	return Request{Script: script, Query: query, SessionID: sessionID, INI: h.INI, Params: h.Params}
}
