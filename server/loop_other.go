//go:build !linux

package server

// Event loops exist on Linux only; elsewhere every connection gets a
// goroutine and Config.Loops is ignored.

type loop struct{}

type loopState struct{ l *loop }

func newLoops(*Server, int) ([]*loop, error) { return nil, nil }

func (*loop) start()              {}
func (*loop) stop()               {}
func (*loop) closeFDs()           {}
func (*loop) wake()               {}
func (*loop) adopt(*conn)         {}
func (*loop) prepare(*conn) error { return nil }

func (c *conn) detach() {}
