package engine

import (
	"context"
	"errors"
	"time"
)

// The method set below is the contract the server is written against. The
// bodies are filled in by the engine implementation.

var errTODO = errors.New("engine: not implemented yet")

// Engine is one session engine over one store.
type Engine struct{ cfg Config }

// New validates cfg, fills defaults and starts the expiry sweeper.
func New(cfg Config) (*Engine, error) { return &Engine{cfg: cfg}, nil }

// Close stops the sweeper, releases every lock and closes the store.
func (e *Engine) Close() error { return errTODO }

// NewClient returns the per-connection state: the bases handed out and the
// locks held. owner names the connection in logs and lock info.
func (e *Engine) NewClient(owner string) *Client { return &Client{e: e, owner: owner} }

// CreateID makes a new crypto-random id that is not in use.
func (e *Engine) CreateID(ctx context.Context, opt IDOptions) (string, error) { return "", errTODO }

// ValidateID reports whether id is well-formed and names a live session or
// a live regenerate alias. A malformed id returns an error wrapping ErrInvalidID.
func (e *Engine) ValidateID(ctx context.Context, id string) (bool, error) { return false, errTODO }

// GC is PHP's gc callback: sweeping is the engine's own job, so this only
// reports how many sessions the sweeper removed since the last call.
func (e *Engine) GC(ctx context.Context, maxLifetimeSeconds int64) (int64, error) { return 0, errTODO }

// Info describes a session for admins.
func (e *Engine) Info(ctx context.Context, id string) (Info, error) { return Info{}, errTODO }

// Stats returns the counters.
func (e *Engine) Stats() Stats { return Stats{} }

// Client is one connection's view of the engine. Not safe for concurrent
// use: a connection issues one command at a time.
type Client struct {
	e     *Engine
	owner string
}

// Close releases every lock the client holds and forgets its bases.
func (c *Client) Close() error { return errTODO }

// Read is PHP's read: it returns the data, its version and the granted mode,
// waiting in the FIFO queue first when the mode is locked.
func (c *Client) Read(ctx context.Context, r ReadRequest) (ReadResult, error) {
	return ReadResult{}, errTODO
}

// Write is PHP's write: lazy touch, three-way merge and compare-and-swap;
// it releases the client's lock on the id if held.
func (c *Client) Write(ctx context.Context, w WriteRequest) (WriteResult, error) {
	return WriteResult{}, errTODO
}

// Release is PHP's close for one id: releases the lock and forgets the base.
func (c *Client) Release(ctx context.Context, id string) error { return errTODO }

// Destroy deletes the session (following a regenerate alias), in any mode.
func (c *Client) Destroy(ctx context.Context, id string) (bool, error) { return false, errTODO }

// Touch is PHP's updateTimestamp: moves the expiry only.
func (c *Client) Touch(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	return false, errTODO
}

// Lock upgrades the client's request on id to locked (see LockRequest).
func (c *Client) Lock(ctx context.Context, r LockRequest) (ReadResult, error) {
	return ReadResult{}, errTODO
}

// Op applies a lockless operation and folds it into the client's base so the
// request's own final write does not apply it twice.
func (c *Client) Op(ctx context.Context, r OpRequest) (OpResult, error) { return OpResult{}, errTODO }

// Regenerate moves the session old to a new id, keeps old as an alias of it
// for the grace period, and returns the new id.
func (c *Client) Regenerate(ctx context.Context, old string, opt IDOptions) (string, error) {
	return "", errTODO
}
