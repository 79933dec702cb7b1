package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/phpsessd/phpsessd/handlers"
)

// Client is one connection's view of the engine. A connection issues one
// command at a time; Close alone may be called concurrently (the server
// calls it when the connection drops) and then cancels a pending lock wait.
type Client struct {
	e     *Engine
	owner string

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	bases  map[string]*clientBase // by the id the request used
	locks  map[string]Lock        // by the id the data lives under
}

// clientBase is what a READ (or the last WRITE) handed this connection.
type clientBase struct {
	target  string // id the data lives under (differs during a regenerate grace)
	version uint64
	// exact: data is exactly what the store held at version. False after a
	// lockless op was folded into data while others had written too.
	exact  bool
	data   []byte
	format string
	mode   Mode
	ttl    time.Duration
	// created is the meta a session gets when this request stores it
	// first (fingerprint binding); zero for existing sessions.
	created sessionMeta
	// meta is the stored meta at version when metaOK, kept for a write
	// that skips the load (Engine.exactVersions). Paths that move version
	// without knowing the meta saved with it leave metaOK false.
	meta   sessionMeta
	metaOK bool
}

// stored is what the store held when b was handed out, as resolve would
// find it again if nobody wrote since.
func (b *clientBase) stored() resolved {
	return resolved{
		id:    b.target,
		rec:   handlers.Record{Data: b.data, Version: b.version},
		meta:  b.meta,
		found: b.version != 0,
	}
}

// NewClient returns the per-connection state: the bases handed out and the
// locks held. owner names the connection in logs and lock info.
func (e *Engine) NewClient(owner string) *Client {
	ctx, cancel := context.WithCancel(context.Background())
	e.st.clients.Add(1)
	return &Client{
		e: e, owner: owner, ctx: ctx, cancel: cancel,
		bases: make(map[string]*clientBase), locks: make(map[string]Lock),
	}
}

// Close releases every lock the client holds and forgets its bases.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	locks := c.locks
	c.locks = nil
	c.bases = nil
	c.mu.Unlock()
	c.cancel()
	c.e.st.clients.Add(-1)
	var errs []error
	for id, lk := range locks {
		if err := lk.Release(); err != nil {
			errs = append(errs, fmt.Errorf("release lock on %s: %w", id, err))
		}
		c.e.st.locksHeld.Add(-1)
	}
	return errors.Join(errs...)
}

func (c *Client) base(id string) *clientBase {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bases[id]
}

func (c *Client) setBase(id string, b *clientBase) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.bases[id] = b
	}
}

func (c *Client) holds(target string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.locks[target] != nil
}

// releaseLocks drops the locks this client holds for the given ids.
func (c *Client) releaseLocks(ids ...string) {
	c.mu.Lock()
	var rel []Lock
	for _, id := range ids {
		if lk := c.locks[id]; lk != nil {
			rel = append(rel, lk)
			delete(c.locks, id)
		}
	}
	c.mu.Unlock()
	for _, lk := range rel {
		if err := lk.Release(); err != nil {
			c.e.log.Warn("lock release failed", "owner", c.owner, "err", err)
		}
		c.e.st.locksHeld.Add(-1)
	}
}

func (c *Client) enter() error {
	if err := c.e.enter(); err != nil {
		return err
	}
	if c.ctx.Err() != nil {
		return fmt.Errorf("client %s: %w", c.owner, ErrClosed)
	}
	return nil
}

// acquire takes the lock on target for this client, waiting at most wait.
func (c *Client) acquire(ctx context.Context, target string, wait time.Duration) error {
	if c.holds(target) {
		return nil
	}
	e := c.e
	if wait <= 0 {
		wait = e.cfg.LockWait
	}
	shown := wait
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
		shown = time.Until(dl).Round(time.Millisecond)
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	stop := context.AfterFunc(c.ctx, cancel)
	defer stop()
	lk, err := e.locker.Acquire(wctx, target, c.owner, e.cfg.LockLease)
	if err != nil {
		switch {
		case c.ctx.Err() != nil:
			return fmt.Errorf("lock session %s: client %s: %w", target, c.owner, ErrClosed)
		case errors.Is(err, ErrLockTimeout):
			e.st.lockTimeouts.Add(1)
			e.log.Info("lock wait timeout", "session", shortID(target), "owner", c.owner, "wait", shown)
			return fmt.Errorf("%w after %s on session %s", ErrLockTimeout, shown, target)
		case errors.Is(err, errLockerClosed):
			return fmt.Errorf("lock session %s: %w", target, ErrClosed)
		}
		return fmt.Errorf("lock session %s: %w", target, err)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		_ = lk.Release()
		return fmt.Errorf("lock session %s: client %s: %w", target, c.owner, ErrClosed)
	}
	c.locks[target] = lk
	c.mu.Unlock()
	e.st.locksHeld.Add(1)
	return nil
}

// lockAndResolve locks the session id names (following an alias to its
// target) and loads it under the lock. The lock is taken on the requested
// id first so the common case costs one load; if id turns out to be an
// alias the lock moves to the target.
func (c *Client) lockAndResolve(ctx context.Context, id string, wait time.Duration) (resolved, error) {
	want := id
	for attempt := 0; attempt < maxAliasHops; attempt++ {
		if err := c.acquire(ctx, want, wait); err != nil {
			return resolved{}, err
		}
		res, err := c.e.resolve(ctx, id)
		if err != nil {
			c.releaseLocks(want)
			return resolved{}, err
		}
		if res.id == want {
			return res, nil
		}
		c.releaseLocks(want)
		want = res.id
	}
	return resolved{}, fmt.Errorf("lock session %s: alias target kept moving", id)
}

func mergeable(format string) bool {
	switch format {
	case "", "php", "php_binary", "php_serialize":
		return true
	}
	return false
}

func effectiveFormat(fs ...string) string {
	for _, f := range fs {
		if f != "" {
			return f
		}
	}
	return "php"
}

// Read is PHP's read: it returns the data, its version and the granted mode,
// waiting in the FIFO queue first when the mode is locked.
func (c *Client) Read(ctx context.Context, r ReadRequest) (ReadResult, error) {
	if err := c.enter(); err != nil {
		return ReadResult{}, err
	}
	e := c.e
	if err := e.checkID(r.ID); err != nil {
		return ReadResult{}, err
	}
	mode := r.Mode
	if mode == ModeAuto {
		mode = pickMode(e.cfg.ModeRules, r.Method, r.Path)
	}
	switch mode {
	case ModeOptimistic, ModeReadonly, ModeLocked:
	default:
		return ReadResult{}, fmt.Errorf("read session %s: %w: unknown mode %q", r.ID, ErrBadRequest, mode)
	}
	if mode == ModeOptimistic && !mergeable(r.Format) {
		// Bytes the engine cannot decode cannot be merged: keep them safe
		// the way PHP's files handler does.
		mode = ModeLocked
	}
	var res resolved
	var err error
	if mode == ModeLocked {
		// Lock errors already name the session and read as the protocol
		// wants them ("lock wait timeout after 3s on session …").
		if res, err = c.lockAndResolve(ctx, r.ID, r.LockWait); err != nil {
			return ReadResult{}, err
		}
	} else {
		if prev := c.base(r.ID); prev != nil && prev.mode == ModeLocked && c.holds(prev.target) {
			// A second session_start in a request that still holds the lock.
			mode = ModeLocked
		}
		if res, err = e.resolve(ctx, r.ID); err != nil {
			return ReadResult{}, fmt.Errorf("read session %s: %w", r.ID, err)
		}
	}
	if !mergeable(res.meta.Format) && mode == ModeOptimistic && r.Format == "" {
		mode = ModeLocked
		if res, err = c.lockAndResolve(ctx, r.ID, r.LockWait); err != nil {
			return ReadResult{}, err
		}
	}
	moved, movedTo, err := c.enforceFingerprint(ctx, r, res)
	if err != nil {
		if mode == ModeLocked {
			c.releaseLocks(res.id, r.ID)
		}
		return ReadResult{}, err
	}
	if movedTo != "" {
		// The request goes on under the new id; its base is kept there.
		res, r.ID = moved, movedTo
	}
	e.st.reads.Add(1)
	var created sessionMeta
	if !res.found {
		e.st.unknownIDs.Add(1)
		created = e.newFingerprint(r)
	} else if len(res.meta.Refs) > 0 {
		e.refreshRefs(ctx, res.id, res.meta.Refs, time.Now().Add(e.ttl(r.TTL)))
	}
	format := effectiveFormat(r.Format, res.meta.Format)
	c.setBase(r.ID, &clientBase{
		target: res.id, version: res.rec.Version, exact: true,
		data: res.rec.Data, format: format, mode: mode, ttl: r.TTL, created: created,
		meta: res.meta, metaOK: true,
	})
	e.bases.put(res.id, res.rec.Version, res.rec.Data, format)
	return ReadResult{Data: res.rec.Data, Version: res.rec.Version, Mode: mode, MovedTo: movedTo}, nil
}

// Write is PHP's write: lazy touch, three-way merge and compare-and-swap;
// it releases the client's lock on the id if held.
func (c *Client) Write(ctx context.Context, w WriteRequest) (WriteResult, error) {
	if err := c.enter(); err != nil {
		return WriteResult{}, err
	}
	e := c.e
	if err := e.checkID(w.ID); err != nil {
		return WriteResult{}, err
	}
	b := c.base(w.ID)
	if b != nil {
		defer c.releaseLocks(b.target, w.ID)
	} else {
		defer c.releaseLocks(w.ID)
	}
	if len(w.Data) > e.cfg.MaxDataSize {
		return WriteResult{}, fmt.Errorf("write session %s: %d bytes, limit %d: %w", w.ID, len(w.Data), e.cfg.MaxDataSize, ErrTooLarge)
	}
	e.st.writes.Add(1)

	mode := ModeOptimistic
	var ttl time.Duration
	var bs baseState
	if b != nil {
		// The base this connection handed out wins over BASE: after a
		// regenerate or a folded op the client cannot know the version its
		// base corresponds to; BASE is for connections without one.
		mode, ttl = b.mode, b.ttl
		bs = baseState{data: b.data, version: b.version, known: true, exact: b.exact, format: b.format}
	}
	if w.TTL > 0 {
		ttl = w.TTL
	}
	ttl = e.ttl(ttl)

	if mode == ModeReadonly && bs.known {
		if !bytes.Equal(w.Data, bs.data) {
			e.st.dropped.Add(1)
			e.log.Warn("readonly request changed its session; write dropped",
				"session", shortID(w.ID), "owner", c.owner, "bytes", len(w.Data))
			return WriteResult{Status: StatusDropped, Version: bs.version}, nil
		}
	}
	if bs.known && bytes.Equal(w.Data, bs.data) {
		return c.lazyTouch(ctx, w.ID, b, ttl)
	}

	unlockShard, err := e.lockShard(ctx, w.ID)
	if err != nil {
		return WriteResult{}, err
	}
	released := false
	release := func() {
		if !released {
			released = true
			unlockShard.unlock()
		}
	}
	defer release()

	for attempt := 0; attempt < maxCASRetries; attempt++ {
		var res resolved
		if attempt == 0 && b != nil && b.exact && b.metaOK && e.exactVersion(b.version) {
			// Most writes find the session as their READ left it; the
			// compare-and-swap below proves it, and a mismatch comes back
			// here for the load.
			res = b.stored()
		} else if res, err = e.resolve(ctx, w.ID); err != nil {
			return WriteResult{}, fmt.Errorf("write session %s: %w", w.ID, err)
		}
		if attempt == 0 && !bs.known && w.BaseVersion != 0 {
			if bs = e.findBase(w, res); bs.known && bytes.Equal(w.Data, bs.data) {
				release()
				return c.lazyTouch(ctx, w.ID, &clientBase{target: res.id, version: res.rec.Version}, ttl)
			}
		}
		format := effectiveFormat(w.Format, bs.format, res.meta.Format)
		var out []byte
		status := StatusWritten
		conflicts := 0
		theirsVersion := res.rec.Version
		switch {
		case bs.known && bs.exact && bs.version == theirsVersion:
			out = w.Data
		case !res.found && !bs.known:
			out = w.Data
		default:
			status = StatusMerged
			out, conflicts, err = e.merge(w.ID, format, bs, w.Data, res.rec.Data)
			if err != nil {
				return WriteResult{Conflicts: conflicts}, err
			}
		}
		if len(out) > e.cfg.MaxDataSize {
			return WriteResult{}, fmt.Errorf("write session %s: merged %d bytes, limit %d: %w", w.ID, len(out), e.cfg.MaxDataSize, ErrTooLarge)
		}
		meta := res.meta
		if !res.found && b != nil {
			meta = b.created
		}
		meta = keepMeta(meta, format)
		rec := handlers.Record{
			Data:    out,
			Expires: time.Now().Add(ttl),
			Meta:    encodeMeta(meta),
		}
		v, err := e.store.Save(ctx, res.id, rec, theirsVersion)
		if errors.Is(err, handlers.ErrVersionMismatch) {
			continue
		}
		if err != nil {
			return WriteResult{}, fmt.Errorf("write session %s: save: %w", w.ID, err)
		}
		if status == StatusMerged {
			e.st.merges.Add(1)
		}
		if len(meta.Refs) > 0 {
			e.refreshRefs(ctx, res.id, meta.Refs, rec.Expires)
		}
		// The stored bytes become this connection's base, so a second
		// session_start in the same request merges from here. out may
		// alias the caller's buffer, which the server reuses.
		kept := bytes.Clone(out)
		nb := &clientBase{target: res.id, version: v, exact: true, data: kept, format: format, mode: mode, ttl: ttl, meta: meta, metaOK: true}
		if b != nil {
			nb.ttl = b.ttl
		}
		c.setBase(w.ID, nb)
		e.bases.put(res.id, v, kept, format)
		return WriteResult{Status: status, Version: v, Conflicts: conflicts}, nil
	}
	return WriteResult{}, fmt.Errorf("write session %s: store kept changing, gave up after %d compare-and-swap attempts: %w",
		w.ID, maxCASRetries, handlers.ErrVersionMismatch)
}

// baseState is the base a write merges against.
type baseState struct {
	data    []byte
	version uint64
	known   bool // false: the base is unknown and merges treat it as empty
	exact   bool
	format  string
}

// findBase looks for the base of a write that arrived without one on this
// connection (a reconnected client): the stored value itself when nobody
// wrote since, else the daemon-wide cache.
func (e *Engine) findBase(w WriteRequest, res resolved) baseState {
	if res.found && res.rec.Version == w.BaseVersion {
		return baseState{data: res.rec.Data, version: w.BaseVersion, known: true, exact: true, format: res.meta.Format}
	}
	for _, id := range []string{res.id, w.ID} {
		if be, ok := e.bases.get(id, w.BaseVersion); ok {
			return baseState{data: be.data, version: w.BaseVersion, known: true, exact: true, format: be.format}
		}
	}
	e.log.Debug("write without a known base; merging against an empty base",
		"session", shortID(w.ID), "base_version", w.BaseVersion)
	return baseState{}
}

// lazyTouch handles a write whose data equals its base: only the expiry
// moves, the data and version stay.
func (c *Client) lazyTouch(ctx context.Context, id string, b *clientBase, ttl time.Duration) (WriteResult, error) {
	e := c.e
	e.st.unchanged.Add(1)
	target, version := id, uint64(0)
	if b != nil {
		target, version = b.target, b.version
	}
	if version == 0 {
		// Nothing was stored and nothing is to be stored.
		return WriteResult{Status: StatusUnchanged}, nil
	}
	err := e.store.Touch(ctx, target, time.Now().Add(ttl))
	if errors.Is(err, handlers.ErrNotFound) {
		// Destroyed or expired meanwhile: an unchanged write must not bring
		// it back.
		return WriteResult{Status: StatusUnchanged}, nil
	}
	if err != nil {
		return WriteResult{}, fmt.Errorf("write session %s: touch: %w", id, err)
	}
	return WriteResult{Status: StatusUnchanged, Version: version}, nil
}

// Release is PHP's close for one id: releases the lock and forgets the base.
func (c *Client) Release(ctx context.Context, id string) error {
	if err := c.e.checkID(id); err != nil {
		return err
	}
	c.mu.Lock()
	b := c.bases[id]
	if !c.closed {
		delete(c.bases, id)
	}
	c.mu.Unlock()
	if b != nil {
		c.releaseLocks(b.target, id)
	} else {
		c.releaseLocks(id)
	}
	return nil
}

// Destroy deletes the session (following a regenerate alias), in any mode.
func (c *Client) Destroy(ctx context.Context, id string) (bool, error) {
	if err := c.enter(); err != nil {
		return false, err
	}
	e := c.e
	if err := e.checkID(id); err != nil {
		return false, err
	}
	res, err := e.resolve(ctx, id)
	if err != nil {
		return false, fmt.Errorf("destroy session %s: %w", id, err)
	}
	existed := false
	for _, sid := range append(res.aliases, res.id) {
		ok, err := e.store.Delete(ctx, sid)
		if err != nil {
			return false, fmt.Errorf("destroy session %s: delete %s: %w", id, sid, err)
		}
		if sid == res.id {
			existed = ok
		}
	}
	c.mu.Lock()
	if !c.closed {
		if b := c.bases[id]; b != nil {
			// Keep the lock (PHP's close follows) but make a later write
			// start from nothing.
			b.data, b.version, b.exact = nil, 0, true
		}
	}
	c.mu.Unlock()
	return existed, nil
}

// Touch is PHP's updateTimestamp: moves the expiry only.
func (c *Client) Touch(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	if err := c.enter(); err != nil {
		return false, err
	}
	e := c.e
	if err := e.checkID(id); err != nil {
		return false, err
	}
	res, err := e.resolve(ctx, id)
	if err != nil {
		return false, fmt.Errorf("touch session %s: %w", id, err)
	}
	if !res.found {
		return false, nil
	}
	err = e.store.Touch(ctx, res.id, time.Now().Add(e.ttl(ttl)))
	if errors.Is(err, handlers.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("touch session %s: %w", id, err)
	}
	return true, nil
}

// Lock upgrades the client's request on id to locked (see LockRequest).
//
// Under the lock, the request's current data is merged against the base it
// read onto the fresh stored value and the result is returned; nothing is
// stored yet. The connection's base becomes the stored value just loaded,
// so the final WRITE (still under the lock) carries the request's earlier
// changes as its own and stores them once.
func (c *Client) Lock(ctx context.Context, r LockRequest) (ReadResult, error) {
	if err := c.enter(); err != nil {
		return ReadResult{}, err
	}
	e := c.e
	if err := e.checkID(r.ID); err != nil {
		return ReadResult{}, err
	}
	if len(r.Data) > e.cfg.MaxDataSize {
		return ReadResult{}, fmt.Errorf("lock session %s: %d bytes, limit %d: %w", r.ID, len(r.Data), e.cfg.MaxDataSize, ErrTooLarge)
	}
	res, err := c.lockAndResolve(ctx, r.ID, r.LockWait)
	if err != nil {
		return ReadResult{}, err
	}
	b := c.base(r.ID)
	var bs baseState
	ttl := r.TTL
	if b != nil {
		bs = baseState{data: b.data, version: b.version, known: true, exact: b.exact, format: b.format}
		if ttl <= 0 {
			ttl = b.ttl
		}
	}
	format := effectiveFormat(r.Format, bs.format, res.meta.Format)
	out := res.rec.Data
	switch {
	case r.Data == nil:
	case bs.known && bytes.Equal(r.Data, bs.data):
	case bs.known && bs.exact && bs.version == res.rec.Version:
		out = bytes.Clone(r.Data)
	default:
		out, _, err = e.merge(r.ID, format, bs, r.Data, res.rec.Data)
		if err != nil {
			c.releaseLocks(res.id)
			return ReadResult{}, err
		}
		out = bytes.Clone(out)
	}
	c.setBase(r.ID, &clientBase{
		target: res.id, version: res.rec.Version, exact: true,
		data: res.rec.Data, format: format, mode: ModeLocked, ttl: ttl,
		meta: res.meta, metaOK: true,
	})
	e.bases.put(res.id, res.rec.Version, res.rec.Data, format)
	return ReadResult{Data: out, Version: res.rec.Version, Mode: ModeLocked}, nil
}
