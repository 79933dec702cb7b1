package engine

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/phpsessd/phpsessd/handlers"
)

// Session references ("user:42") let an application find and end every
// session of one user without scanning the store. Each session lists its
// references in its meta; each reference has one index record in the same
// store, under an id clients can never use (reservedIDPrefix), listing the
// sessions that carry it. Both are changed only through the store's
// compare-and-swap, so daemons sharing a store agree.
//
// The session's meta is the truth; the index is a superset kept for
// lookup. Adding writes the index first and the session second, removing
// the other way round, so a crash in between only leaves an index entry
// too many, which LIST and KILL drop when they find the session does not
// carry the reference (lazy pruning).

const (
	// reservedIDPrefix starts ids the engine keeps for itself. checkID
	// refuses it from clients and CreateID never hands it out. It only
	// uses the id alphabet so that every store (files included) accepts it.
	reservedIDPrefix = "--phpsessd-"
	refIndexPrefix   = reservedIDPrefix + "ref-"

	// MaxRefLength bounds one reference in bytes.
	MaxRefLength = 200
	// MaxRefSessions bounds the sessions one reference lists: the index is
	// one record, rewritten on every change.
	MaxRefSessions = 10000
	// MaxRefsPerSession bounds the references of one session.
	MaxRefsPerSession = 32

	refCacheSize = 65536
)

// refEncoding turns a reference's hash into an id: base64 over the id
// alphabet, so any reference (':' and all) maps to a valid store id.
var refEncoding = base64.NewEncoding(idAlphabet).WithPadding(base64.NoPadding)

var errRefFull = errors.New("reference lists too many sessions")

// IsReservedID reports whether id is in the engine's own namespace, which
// the listing commands skip.
func IsReservedID(id string) bool { return strings.HasPrefix(id, reservedIDPrefix) }

func refIndexID(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return refIndexPrefix + refEncoding.EncodeToString(sum[:])
}

// refIndex is an index record's data.
type refIndex struct {
	Ref string `msgpack:"r"`
	// IDs maps a session id to the expiry it had when last indexed (unix
	// seconds, 0: never). The record expires a slack after the latest one.
	IDs map[string]int64 `msgpack:"s"`
}

// refState is the engine's per-process reference bookkeeping.
type refState struct {
	once sync.Once
	// indexed remembers, per reference and session, the expiry this daemon
	// last recorded in the index, so keeping the index alive costs a store
	// round trip about once per TTL and session instead of on every request.
	indexed *lru.Cache[string, int64]
}

func (e *Engine) refCache() *lru.Cache[string, int64] {
	e.refs.once.Do(func() {
		// lru.New only fails for a non-positive size.
		e.refs.indexed, _ = lru.New[string, int64](refCacheSize)
	})
	return e.refs.indexed
}

func checkRef(ref string) error {
	if ref == "" || len(ref) > MaxRefLength {
		return fmt.Errorf("%w: reference must be 1..%d bytes", ErrBadRequest, MaxRefLength)
	}
	for i := 0; i < len(ref); i++ {
		if ref[i] <= ' ' || ref[i] > '~' {
			return fmt.Errorf("%w: reference byte 0x%02x at %d is not printable ASCII", ErrBadRequest, ref[i], i)
		}
	}
	return nil
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// refSlack is how long an index record outlives its latest session's
// recorded expiry; sessions extend their expiry on every request without
// rewriting the index, so the index must keep a lead.
func (e *Engine) refSlack() time.Duration { return e.cfg.DefaultTTL }

func (e *Engine) loadIndex(ctx context.Context, ref string) (refIndex, uint64, error) {
	rec, err := e.store.Load(ctx, refIndexID(ref))
	if errors.Is(err, handlers.ErrNotFound) {
		return refIndex{Ref: ref, IDs: map[string]int64{}}, 0, nil
	}
	if err != nil {
		return refIndex{}, 0, fmt.Errorf("load index of reference %q: %w", ref, err)
	}
	ix := refIndex{}
	if len(rec.Data) > 0 {
		if err := msgpack.Unmarshal(rec.Data, &ix); err != nil {
			// An unreadable index is rebuilt from what adds come next;
			// sessions that carried the reference are then only found by
			// their own requests refreshing it (refreshRefs).
			e.log.Warn("unreadable reference index, starting it over", "ref", ref, "err", err)
			ix = refIndex{}
		}
	}
	if ix.Ref != "" && ix.Ref != ref {
		return refIndex{}, 0, fmt.Errorf("index record of reference %q names %q", ref, ix.Ref)
	}
	ix.Ref = ref
	if ix.IDs == nil {
		ix.IDs = map[string]int64{}
	}
	return ix, rec.Version, nil
}

// updateIndex runs fn on the reference's index under compare-and-swap.
// fn reports whether it changed anything; it may run several times.
func (e *Engine) updateIndex(ctx context.Context, ref string, fn func(ix *refIndex) (bool, error)) error {
	for attempt := 0; attempt < maxCASRetries; attempt++ {
		ix, ver, err := e.loadIndex(ctx, ref)
		if err != nil {
			return err
		}
		changed, err := fn(&ix)
		if err != nil || !changed {
			return err
		}
		b, err := msgpack.Marshal(&ix)
		if err != nil {
			return fmt.Errorf("encode index of reference %q: %w", ref, err)
		}
		_, err = e.store.Save(ctx, refIndexID(ref), handlers.Record{Data: b, Expires: e.indexExpiry(ix)}, ver)
		if errors.Is(err, handlers.ErrVersionMismatch) {
			continue
		}
		if err != nil {
			return fmt.Errorf("save index of reference %q: %w", ref, err)
		}
		return nil
	}
	return fmt.Errorf("index of reference %q kept changing: %w", ref, handlers.ErrVersionMismatch)
}

// indexExpiry keeps the index alive at least as long as the longest-lived
// session it lists. An empty index is not deleted (an unconditional delete
// could lose an add racing it on another daemon) but left to expire soon.
func (e *Engine) indexExpiry(ix refIndex) time.Time {
	if len(ix.IDs) == 0 {
		return time.Now().Add(time.Minute)
	}
	var latest int64
	for _, exp := range ix.IDs {
		if exp == 0 {
			return time.Time{}
		}
		latest = max(latest, exp)
	}
	return time.Unix(latest, 0).Add(e.refSlack())
}

// covers reports whether an index entry recorded as rec keeps a session
// expiring at want listed.
func (e *Engine) covers(rec, want int64) bool {
	if rec == 0 {
		return true
	}
	if want == 0 {
		return false
	}
	return want <= rec+int64(e.refSlack()/time.Second)
}

// indexAdd lists id under ref with the given expiry.
func (e *Engine) indexAdd(ctx context.Context, ref, id string, expires time.Time) error {
	want := unixOrZero(expires)
	err := e.updateIndex(ctx, ref, func(ix *refIndex) (bool, error) {
		cur, ok := ix.IDs[id]
		if ok && cur == want {
			return false, nil
		}
		if !ok && len(ix.IDs) >= MaxRefSessions {
			return false, fmt.Errorf("%w: reference %q lists %d sessions: %w", ErrBadRequest, ref, len(ix.IDs), errRefFull)
		}
		ix.IDs[id] = want
		return true, nil
	})
	if err == nil {
		e.refCache().Add(ref+"\x00"+id, want)
	}
	return err
}

func (e *Engine) indexRemove(ctx context.Context, ref string, ids ...string) error {
	for _, id := range ids {
		e.refCache().Remove(ref + "\x00" + id)
	}
	return e.updateIndex(ctx, ref, func(ix *refIndex) (bool, error) {
		changed := false
		for _, id := range ids {
			if _, ok := ix.IDs[id]; ok {
				delete(ix.IDs, id)
				changed = true
			}
		}
		return changed, nil
	})
}

// refreshRefs keeps the index records of a session's references alive as
// the session's own expiry moves (writes, lazy touches) and puts the
// session back if an index lost it. It runs on the request path after the
// session itself was served, so failures are logged, not returned.
func (e *Engine) refreshRefs(ctx context.Context, id string, refs []string, expires time.Time) {
	want := unixOrZero(expires)
	for _, ref := range refs {
		if rec, ok := e.refCache().Get(ref + "\x00" + id); ok && e.covers(rec, want) {
			continue
		}
		var recorded int64
		err := e.updateIndex(ctx, ref, func(ix *refIndex) (bool, error) {
			cur, ok := ix.IDs[id]
			until := e.indexExpiry(*ix)
			if ok && e.covers(cur, want) && (until.IsZero() || !until.Before(expires)) {
				recorded = cur
				return false, nil
			}
			if !ok && len(ix.IDs) >= MaxRefSessions {
				return false, errRefFull
			}
			ix.IDs[id], recorded = want, want
			return true, nil
		})
		if err != nil {
			e.log.Warn("could not refresh reference index", "ref", ref, "session", shortID(id), "err", err)
			continue
		}
		e.refCache().Add(ref+"\x00"+id, recorded)
	}
}

// AddRefResult is what AddRef did.
type AddRefResult struct {
	Added  bool // false: the session already carried the reference
	Killed int  // sessions ended by the exclusive policy
}

// AddRef attaches ref to the session id (following a regenerate alias). A
// session that was never stored is created empty, so that a login can tag
// its session before PHP's first write. With exclusive, or when ref
// matches Config.SingleSessionRefs, every other session carrying ref is
// destroyed: the newest login wins.
func (c *Client) AddRef(ctx context.Context, id, ref string, exclusive bool) (AddRefResult, error) {
	if err := c.enter(); err != nil {
		return AddRefResult{}, err
	}
	e := c.e
	if err := e.checkID(id); err != nil {
		return AddRefResult{}, err
	}
	if err := checkRef(ref); err != nil {
		return AddRefResult{}, err
	}
	target, added, err := c.changeRefs(ctx, id, ref, true)
	if errors.Is(err, errRefFull) {
		// Dead sessions may fill the index; drop them and try once more.
		if _, lerr := e.ListRef(ctx, ref); lerr != nil {
			return AddRefResult{}, fmt.Errorf("add reference %q to session %s: %w", ref, id, lerr)
		}
		target, added, err = c.changeRefs(ctx, id, ref, true)
	}
	if err != nil {
		return AddRefResult{}, fmt.Errorf("add reference %q to session %s: %w", ref, id, err)
	}
	out := AddRefResult{Added: added}
	if exclusive || e.singleSessionRef(ref) {
		live, err := e.ListRef(ctx, ref)
		if err != nil {
			return out, fmt.Errorf("add reference %q to session %s: end older sessions: %w", ref, id, err)
		}
		var others []string
		for _, sid := range live {
			if sid != target {
				others = append(others, sid)
			}
		}
		n, err := e.destroyIndexed(ctx, ref, others)
		out.Killed = n
		if err != nil {
			return out, fmt.Errorf("add reference %q to session %s: end older sessions: %w", ref, id, err)
		}
		if n > 0 {
			e.log.Info("single session per reference: older sessions ended", "ref", ref, "session", shortID(target), "ended", n)
		}
	}
	return out, nil
}

// RemoveRef detaches ref from the session id; false if it did not carry it.
func (c *Client) RemoveRef(ctx context.Context, id, ref string) (bool, error) {
	if err := c.enter(); err != nil {
		return false, err
	}
	e := c.e
	if err := e.checkID(id); err != nil {
		return false, err
	}
	if err := checkRef(ref); err != nil {
		return false, err
	}
	_, removed, err := c.changeRefs(ctx, id, ref, false)
	if err != nil {
		return false, fmt.Errorf("remove reference %q from session %s: %w", ref, id, err)
	}
	return removed, nil
}

// changeRefs adds or removes ref in the session's meta, with the index
// change ordered so that the index always lists at least the sessions
// that carry the reference. It returns the id the session lives under.
func (c *Client) changeRefs(ctx context.Context, id, ref string, add bool) (string, bool, error) {
	e := c.e
	unlock, err := e.lockShard(ctx, id)
	if err != nil {
		return "", false, err
	}
	defer unlock.unlock()
	for attempt := 0; attempt < maxCASRetries; attempt++ {
		res, err := e.resolve(ctx, id)
		if err != nil {
			return "", false, err
		}
		has := slices.Contains(res.meta.Refs, ref)
		if !add && !res.found {
			return res.id, false, e.indexRemove(ctx, ref, res.id)
		}
		m := res.meta
		expires := res.rec.Expires
		b := c.base(id)
		if !res.found {
			ttl := time.Duration(0)
			if b != nil {
				ttl = b.ttl
				m = b.created
				m.Format = b.format
			}
			expires = time.Now().Add(e.ttl(ttl))
		}
		if add {
			if err := e.indexAdd(ctx, ref, res.id, expires); err != nil {
				return "", false, err
			}
			if has {
				return res.id, false, nil
			}
			if len(m.Refs) >= MaxRefsPerSession {
				return "", false, fmt.Errorf("%w: session already has %d references", ErrBadRequest, len(m.Refs))
			}
			m.Refs = append(slices.Clone(m.Refs), ref)
		} else {
			if !has {
				return res.id, false, e.indexRemove(ctx, ref, res.id)
			}
			m.Refs = slices.DeleteFunc(slices.Clone(m.Refs), func(r string) bool { return r == ref })
		}
		v, err := e.store.Save(ctx, res.id, handlers.Record{Data: res.rec.Data, Expires: expires, Meta: encodeMeta(m)}, res.rec.Version)
		if errors.Is(err, handlers.ErrVersionMismatch) {
			continue
		}
		if err != nil {
			return "", false, fmt.Errorf("save session %s: %w", res.id, err)
		}
		c.bumpBase(id, res, v)
		if !add {
			if err := e.indexRemove(ctx, ref, res.id); err != nil {
				// The session no longer carries the reference; the stale
				// entry is pruned by the next LIST or KILL.
				e.log.Warn("could not remove session from reference index", "ref", ref, "session", shortID(res.id), "err", err)
			}
		}
		return res.id, true, nil
	}
	return "", false, fmt.Errorf("session %s kept changing: %w", id, handlers.ErrVersionMismatch)
}

// bumpBase moves the connection's base to the version a meta-only save
// produced (same data), so the request's final write is not needlessly
// merged against its own session.
func (c *Client) bumpBase(id string, res resolved, v uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if b := c.bases[id]; b != nil && b.target == res.id && b.exact && b.version == res.rec.Version {
		nb := *b
		nb.version = v
		nb.metaOK = false // the meta changed; a write loads it
		c.bases[id] = &nb
		c.e.bases.put(res.id, v, nb.data, nb.format)
	}
}

func (e *Engine) singleSessionRef(ref string) bool {
	for _, p := range e.cfg.SingleSessionRefs {
		if globAny(p, ref) {
			return true
		}
	}
	return false
}

// ListRef returns the live sessions that carry ref, sorted, and drops the
// index entries of sessions that expired, were destroyed or no longer
// carry it.
func (e *Engine) ListRef(ctx context.Context, ref string) ([]string, error) {
	if err := e.enter(); err != nil {
		return nil, err
	}
	if err := checkRef(ref); err != nil {
		return nil, err
	}
	ix, _, err := e.loadIndex(ctx, ref)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(ix.IDs))
	for id := range ix.IDs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	live := ids[:0:0]
	var dead []string
	for _, id := range ids {
		rec, err := e.store.Load(ctx, id)
		if errors.Is(err, handlers.ErrNotFound) {
			dead = append(dead, id)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list reference %q: load session %s: %w", ref, id, err)
		}
		m, _ := decodeMeta(rec.Meta)
		if m.Alias != "" || !slices.Contains(m.Refs, ref) {
			dead = append(dead, id)
			continue
		}
		live = append(live, id)
	}
	if len(dead) > 0 {
		if err := e.indexRemove(ctx, ref, dead...); err != nil {
			e.log.Warn("could not prune reference index", "ref", ref, "err", err)
		}
	}
	return live, nil
}

// KillRef destroys every session that carries ref ("log out everywhere")
// and returns how many it destroyed.
//
// A request of such a session that is running at that moment and writes
// afterwards is merged against the now missing session: only keys that
// request itself changed come back (unchanged ones, a login marker
// typically, stay gone), and the session it re-creates carries no
// references.
func (e *Engine) KillRef(ctx context.Context, ref string) (int, error) {
	live, err := e.ListRef(ctx, ref)
	if err != nil {
		return 0, err
	}
	n, err := e.destroyIndexed(ctx, ref, live)
	if err != nil {
		return n, err
	}
	if n > 0 {
		e.log.Info("sessions of reference destroyed", "ref", ref, "count", n)
	}
	return n, nil
}

// destroyIndexed deletes sessions found through ref's index and removes
// them from the indexes of every reference they carried.
func (e *Engine) destroyIndexed(ctx context.Context, ref string, ids []string) (int, error) {
	n := 0
	for _, id := range ids {
		var refs []string
		if rec, err := e.store.Load(ctx, id); err == nil {
			m, _ := decodeMeta(rec.Meta)
			refs = m.Refs
		}
		ok, err := e.store.Delete(ctx, id)
		if err != nil {
			return n, fmt.Errorf("destroy session %s: %w", id, err)
		}
		if ok {
			n++
		}
		for _, r := range refs {
			if r == ref {
				continue
			}
			if err := e.indexRemove(ctx, r, id); err != nil {
				e.log.Warn("could not prune reference index", "ref", r, "err", err)
			}
		}
	}
	if len(ids) > 0 {
		if err := e.indexRemove(ctx, ref, ids...); err != nil {
			e.log.Warn("could not prune reference index", "ref", ref, "err", err)
		}
	}
	return n, nil
}

// Refs returns the references of session id (following an alias).
func (e *Engine) Refs(ctx context.Context, id string) ([]string, error) {
	if err := e.enter(); err != nil {
		return nil, err
	}
	if err := e.checkID(id); err != nil {
		return nil, err
	}
	res, err := e.resolve(ctx, id)
	if err != nil {
		return nil, err
	}
	return slices.Clone(res.meta.Refs), nil
}

// ListPage is one page of ListSessions.
type ListPage struct {
	IDs []string `json:"ids"`
	// Cursor resumes the listing after the last id of this page; empty
	// when the listing is complete.
	Cursor string `json:"cursor,omitempty"`
}

// MaxListLimit bounds one page of ListSessions.
const MaxListLimit = 1000

// ListSessions pages through the live session ids (regenerate aliases
// included) in id order, skipping the engine's own records. It needs a
// full Store.Scan per page, since stores offer no ordered iteration; it is
// an admin tool, not a request-path call.
func (e *Engine) ListSessions(ctx context.Context, after string, limit int) (ListPage, error) {
	if err := e.enter(); err != nil {
		return ListPage{}, err
	}
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, MaxListLimit)
	// Keep the limit+1 smallest ids above the cursor: one more than the
	// page tells whether another page follows.
	var keep []string
	err := e.store.Scan(ctx, func(id string, _ time.Time) error {
		if IsReservedID(id) || id <= after {
			return nil
		}
		i, found := slices.BinarySearch(keep, id)
		if found {
			return nil
		}
		if len(keep) == limit+1 && i == len(keep) {
			return nil
		}
		keep = slices.Insert(keep, i, id)
		if len(keep) > limit+1 {
			keep = keep[:limit+1]
		}
		return nil
	})
	if err != nil {
		return ListPage{}, fmt.Errorf("list sessions: %w", err)
	}
	page := ListPage{IDs: keep}
	if len(keep) > limit {
		page.IDs = keep[:limit]
		page.Cursor = keep[limit-1]
	}
	if page.IDs == nil {
		page.IDs = []string{}
	}
	return page, nil
}
