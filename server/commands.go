package server

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/phpsessd/phpsessd/engine"
	"github.com/phpsessd/phpsessd/handlers"
)

// command is one entry of the dispatch table. Argument counts include the
// command name; maxArgs -1 means unbounded (keywords are checked by the
// command itself).
type command struct {
	name    string
	usage   string
	minArgs int
	maxArgs int
	preAuth bool // allowed before authentication
	// opens marks commands that start a request on a session (READ,
	// LOCK); they are refused once shutdown begins, except a LOCK that
	// upgrades a request this connection already has under way.
	opens bool
	// offLoop marks commands that walk many sessions: on an event loop
	// they run off it, so the loop's other connections do not wait.
	offLoop bool
	run     func(c *conn, args [][]byte) error
	calls   atomic.Uint64
}

// commandTable lists every command of PROTOCOL.md, grouped as the files
// that implement them.
func commandTable() map[string]*command {
	list := []*command{
		// cmd_admin.go: handshake, liveness, introspection
		{name: "HELLO", usage: "HELLO <protover> [AUTH <token>] [NAME <client-name>]", minArgs: 2, maxArgs: 6, preAuth: true, run: cmdHello},
		{name: "AUTH", usage: "AUTH <token>", minArgs: 2, maxArgs: 2, preAuth: true, run: cmdAuth},
		{name: "PING", usage: "PING [message]", minArgs: 1, maxArgs: 2, preAuth: true, run: cmdPing},
		{name: "QUIT", usage: "QUIT", minArgs: 1, maxArgs: 1, preAuth: true, run: cmdQuit},
		{name: "INFO", usage: "INFO <id>", minArgs: 2, maxArgs: 2, run: cmdInfo},
		{name: "STATS", usage: "STATS", minArgs: 1, maxArgs: 1, run: cmdStats},

		// cmd_session.go: PHP's save handler callbacks
		{name: "READ", usage: "READ <id> [MODE m] [FORMAT f] [TTL s] [METHOD m] [PATH p] [WAIT ms] [UA ua] [IP addr]", minArgs: 2, maxArgs: 18, opens: true, run: cmdRead},
		{name: "WRITE", usage: "WRITE <id> <data> [BASE v] [FORMAT f] [TTL s]", minArgs: 3, maxArgs: 9, run: cmdWrite},
		{name: "CLOSE", usage: "CLOSE <id>", minArgs: 2, maxArgs: 2, run: cmdClose},
		{name: "DESTROY", usage: "DESTROY <id>", minArgs: 2, maxArgs: 2, run: cmdDestroy},
		{name: "GC", usage: "GC <maxlifetime>", minArgs: 2, maxArgs: 2, offLoop: true, run: cmdGC},
		{name: "TOUCH", usage: "TOUCH <id> [TTL s]", minArgs: 2, maxArgs: 4, run: cmdTouch},
		{name: "LOCK", usage: "LOCK <id> [DATA d] [FORMAT f] [TTL s] [WAIT ms]", minArgs: 2, maxArgs: 10, opens: true, run: cmdLock},

		// cmd_ids.go: session id policy
		{name: "CREATEID", usage: "CREATEID [LENGTH n] [BITS 4|5|6]", minArgs: 1, maxArgs: 5, run: cmdCreateID},
		{name: "VALIDATE", usage: "VALIDATE <id>", minArgs: 2, maxArgs: 2, run: cmdValidate},
		{name: "REGENERATE", usage: "REGENERATE <old id> [LENGTH n] [BITS b] [GRACE ms]", minArgs: 2, maxArgs: 8, run: cmdRegenerate},

		// cmd_ops.go: lockless key operations
		{name: "INCR", usage: "INCR <id> <key> [BY n] [FORMAT f] [TTL s]", minArgs: 3, maxArgs: 9, run: cmdIncr},
		{name: "APPEND", usage: "APPEND <id> <key> <string> [FORMAT f] [TTL s]", minArgs: 4, maxArgs: 8, run: cmdAppend},
		{name: "PUSH", usage: "PUSH <id> <key> <serialized value> [FORMAT f] [TTL s]", minArgs: 4, maxArgs: 8, run: cmdPush},
		{name: "SET", usage: "SET <id> <key> <serialized value> [FORMAT f] [TTL s]", minArgs: 4, maxArgs: 8, run: cmdSet},
		{name: "UNSET", usage: "UNSET <id> <key> [FORMAT f] [TTL s]", minArgs: 3, maxArgs: 7, run: cmdUnset},

		// cmd_refs.go: session references and the admin listing
		{name: "REF", usage: "REF ADD <id> <ref> [EXCLUSIVE] | REF DEL <id> <ref> | REF LIST <ref> | REF KILL <ref>", minArgs: 3, maxArgs: 5, offLoop: true, run: cmdRef},
		{name: "LIST", usage: "LIST [LIMIT n] [CURSOR c]", minArgs: 1, maxArgs: 5, offLoop: true, run: cmdList},
	}
	t := make(map[string]*command, len(list))
	for _, c := range list {
		t[c.name] = c
	}
	return t
}

// lookup finds a command case-insensitively; the exact-case probe does not
// allocate, which covers every well-behaved client.
func (s *Server) lookup(name []byte) *command {
	if c, ok := s.table[string(name)]; ok {
		return c
	}
	if len(name) > 16 {
		return nil
	}
	return s.table[string(bytes.ToUpper(name))]
}

// replyError is an error the command itself chose the code for.
type replyError struct {
	code, msg string
}

func (e *replyError) Error() string { return e.code + " " + e.msg }

func errArg(msg string) error { return &replyError{code: "ERR", msg: msg} }

// mapError turns an engine or store error into a protocol error code and
// message, as PROTOCOL.md's error table defines them.
func (s *Server) mapError(err error) (code, msg string) {
	var re *replyError
	var ce *engine.ConflictError
	switch {
	case errors.As(err, &re):
		return re.code, re.msg
	case errors.As(err, &ce):
		return "CONFLICT", ce.ID + " " + ce.Path
	case errors.Is(err, engine.ErrLockTimeout):
		return "LOCKTIMEOUT", err.Error()
	case errors.Is(err, engine.ErrInvalidID):
		return "INVALIDID", err.Error()
	case errors.Is(err, engine.ErrUnknownID):
		return "UNKNOWNID", err.Error()
	case errors.Is(err, engine.ErrFingerprint):
		return "FINGERPRINT", err.Error()
	case errors.Is(err, engine.ErrTooLarge):
		return "TOOBIG", err.Error()
	case errors.Is(err, engine.ErrConflict):
		return "CONFLICT", err.Error()
	case errors.Is(err, engine.ErrClosed):
		return "SHUTDOWN", err.Error()
	case errors.Is(err, handlers.ErrUnavailable):
		return "BACKEND", err.Error()
	case errors.Is(err, engine.ErrBadRequest):
		return "ERR", err.Error()
	case s.shutting.Load() && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)):
		return "SHUTDOWN", "phpsessd is shutting down"
	default:
		return "ERR", err.Error()
	}
}

// kwargs holds the keyword arguments of one request. A fixed array keeps
// parsing free of maps; no command has more than a handful of keywords.
type kwargs struct {
	n     int
	names [8]string
	vals  [8][]byte
}

// parseKeywords parses "KEY value" pairs; allowed are the upper-case names
// the command accepts. Unknown, duplicate and valueless keywords are
// argument errors.
func parseKeywords(args [][]byte, allowed ...string) (kwargs, error) {
	var kw kwargs
	for i := 0; i < len(args); i += 2 {
		name := ""
		for _, a := range allowed {
			if bytes.EqualFold(args[i], []byte(a)) {
				name = a
				break
			}
		}
		if name == "" {
			return kw, errArg("unknown keyword '" + printable(args[i]) + "'; allowed: " + strings.Join(allowed, " "))
		}
		if i+1 >= len(args) {
			return kw, errArg("keyword " + name + " needs a value")
		}
		if _, dup := kw.get(name); dup {
			return kw, errArg("keyword " + name + " given twice")
		}
		if kw.n == len(kw.names) {
			return kw, errArg("too many keywords")
		}
		kw.names[kw.n], kw.vals[kw.n] = name, args[i+1]
		kw.n++
	}
	return kw, nil
}

func (kw *kwargs) get(name string) ([]byte, bool) {
	for i := 0; i < kw.n; i++ {
		if kw.names[i] == name {
			return kw.vals[i], true
		}
	}
	return nil, false
}

func (kw *kwargs) str(name string) string {
	v, _ := kw.get(name)
	return string(v)
}

// format returns FORMAT's value. PHP's serializer names are returned as
// constants: every READ and WRITE carries one, and converting the bytes
// would cost an allocation per command.
func (kw *kwargs) format() string {
	v, _ := kw.get("FORMAT")
	switch string(v) {
	case "":
		return ""
	case "php":
		return "php"
	case "php_serialize":
		return "php_serialize"
	case "php_binary":
		return "php_binary"
	}
	return string(v)
}

// uint parses a non-negative decimal keyword value; absent means 0.
func (kw *kwargs) uint(name string) (uint64, error) {
	v, ok := kw.get(name)
	if !ok {
		return 0, nil
	}
	return parseUint(name, v)
}

func parseUint(name string, v []byte) (uint64, error) {
	n, err := strconv.ParseUint(string(v), 10, 63)
	if err != nil {
		return 0, errArg(name + " must be a non-negative integer, got '" + printable(v) + "'")
	}
	return n, nil
}

func parseInt(name string, v []byte) (int64, error) {
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, errArg(name + " must be an integer, got '" + printable(v) + "'")
	}
	return n, nil
}

// seconds reads a TTL-style keyword in seconds.
func (kw *kwargs) seconds(name string) (time.Duration, error) {
	n, err := kw.uint(name)
	if err != nil {
		return 0, err
	}
	if n > uint64((1<<63-1)/time.Second) {
		return 0, errArg(name + " is out of range")
	}
	return time.Duration(n) * time.Second, nil
}

// millis reads a WAIT-style keyword in milliseconds.
func (kw *kwargs) millis(name string) (time.Duration, error) {
	n, err := kw.uint(name)
	if err != nil {
		return 0, err
	}
	if n > uint64((1<<63-1)/time.Millisecond) {
		return 0, errArg(name + " is out of range")
	}
	return time.Duration(n) * time.Millisecond, nil
}

// idOptions reads LENGTH and BITS, checking PHP's own ranges.
func (kw *kwargs) idOptions() (engine.IDOptions, error) {
	var opt engine.IDOptions
	if v, ok := kw.get("LENGTH"); ok {
		n, err := parseUint("LENGTH", v)
		if err != nil {
			return opt, err
		}
		if n < 22 || n > 256 {
			return opt, errArg("LENGTH must be between 22 and 256")
		}
		opt.Length = int(n)
	}
	if v, ok := kw.get("BITS"); ok {
		n, err := parseUint("BITS", v)
		if err != nil {
			return opt, err
		}
		if n < 4 || n > 6 {
			return opt, errArg("BITS must be 4, 5 or 6")
		}
		opt.BitsPerChar = int(n)
	}
	return opt, nil
}

func parseMode(v []byte) (engine.Mode, error) {
	switch strings.ToLower(string(v)) {
	case "optimistic":
		return engine.ModeOptimistic, nil
	case "readonly":
		return engine.ModeReadonly, nil
	case "locked":
		return engine.ModeLocked, nil
	default:
		return "", errArg("MODE must be optimistic, readonly or locked, got '" + printable(v) + "'")
	}
}
