package engine

import "context"

type waitHookKey struct{}

// WithWaitHook returns a context under which the engine calls f just
// before a request of it would block: waiting for a session lock another
// request holds, or for the write slot of a session another write is
// saving. An event loop that runs commands in place uses it to hand its
// other connections to a new thread before one of its commands waits.
// f runs on the calling goroutine, at most once per wait, and must not
// call back into the engine.
func WithWaitHook(ctx context.Context, f func()) context.Context {
	return context.WithValue(ctx, waitHookKey{}, f)
}

// beforeWait runs the wait hook of ctx, if it has one. Callers take it
// only on the path that is about to block, so the fast path never pays
// for the context lookup.
func beforeWait(ctx context.Context) {
	if f, ok := ctx.Value(waitHookKey{}).(func()); ok {
		f()
	}
}
