package redis

import (
	"errors"
	"fmt"
	"strings"
)

// Layout names the key scheme of a store.
type Layout string

const (
	// LayoutPHPRedis keeps session data at <prefix><id>, exactly where
	// phpredis reads and writes it. Sibling keys embed the data key's full
	// name as their hash tag ("<prefix>{<prefix><id>}:m"), so in a cluster
	// they hash to the data key's slot although the data key has no tag.
	LayoutPHPRedis Layout = "phpredis"
	// LayoutHashTag keeps data at <prefix>{<id>} and siblings at
	// <prefix>{<id>}:<suffix>: shorter keys, but phpredis does not find the
	// data there, so it is for deployments phpredis never reads.
	LayoutHashTag Layout = "hashtag"
)

// phpredisLockSuffix is the suffix phpredis appends for its session lock
// (redis.session.locking_enabled); sharing the key makes a lock held by
// either side exclude the other during a rollout.
const phpredisLockSuffix = "_LOCK"

// keys names every key of one session; all of them hash to one cluster
// slot so each Lua script touches a single slot.
type keys struct {
	data, meta string
	lock       string
	// lockTag prefixes the per-lock queue and per-waiter keys; the scripts
	// append ":q", ":a:<token>" and ":w:<token>".
	lockTag string
}

type keyspace struct {
	prefix string
	layout Layout
}

func newKeyspace(prefix string, layout Layout) (keyspace, error) {
	ks := keyspace{prefix: prefix, layout: layout}
	open, close := strings.IndexByte(prefix, '{'), strings.IndexByte(prefix, '}')
	if open < 0 && close < 0 {
		return ks, nil
	}
	if layout == LayoutHashTag {
		return ks, errors.New("prefix must not contain '{' or '}' in the hashtag layout")
	}
	// A prefix with its own complete tag pins every session to that tag's
	// slot; that is the operator's choice and stays consistent, anything
	// else would split a session's keys across slots.
	if open < 0 || close < open+2 {
		return ks, fmt.Errorf("prefix %q: braces must form a non-empty {hash tag}", prefix)
	}
	return ks, nil
}

func (ks keyspace) prefixHasTag() bool { return strings.IndexByte(ks.prefix, '{') >= 0 }

// sibling names a key in the same slot as base and inside the prefix.
func (ks keyspace) sibling(base, suffix string) string {
	if ks.prefixHasTag() {
		return base + suffix
	}
	return ks.prefix + "{" + base + "}" + suffix
}

// maxIDLength bounds ids well above PHP's 256-character session.sid_length.
const maxIDLength = 256

// validID accepts PHP's session id alphabet only ([A-Za-z0-9,-], what
// php_session_valid_key allows), so an id can neither break the one-slot
// guarantee with braces nor be mistaken for a sibling key of the layout.
func (ks keyspace) validID(id string) error {
	if id == "" || len(id) > maxIDLength {
		return fmt.Errorf("session id of length %d: want 1..%d characters", len(id), maxIDLength)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == ',' || c == '-') {
			return fmt.Errorf("session id %q: character %q outside [A-Za-z0-9,-]", id, c)
		}
	}
	return nil
}

func (ks keyspace) forID(id string) keys {
	if ks.layout == LayoutHashTag {
		base := ks.prefix + "{" + id + "}"
		return keys{data: base, meta: base + ":m", lock: base + ":lock", lockTag: base + ":lock"}
	}
	data := ks.prefix + id
	lock := data + phpredisLockSuffix
	return keys{
		data:    data,
		meta:    ks.sibling(data, ":m"),
		lock:    lock,
		lockTag: ks.sibling(lock, ""),
	}
}

// scanPattern is the SCAN MATCH pattern covering every data key (and, in
// the phpredis layout, some sibling keys that idFromKey then rejects).
func (ks keyspace) scanPattern() string {
	p := globEscape(ks.prefix)
	if ks.layout == LayoutHashTag {
		return p + "{*}"
	}
	return p + "*"
}

// idFromKey returns the session id of a data key, or false for any other
// key the pattern matched.
func (ks keyspace) idFromKey(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, ks.prefix)
	if !ok {
		return "", false
	}
	if ks.layout == LayoutHashTag {
		if len(rest) < 3 || rest[0] != '{' || rest[len(rest)-1] != '}' {
			return "", false
		}
		rest = rest[1 : len(rest)-1]
	}
	if ks.validID(rest) != nil {
		return "", false
	}
	return rest, true
}

func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
