package server

import (
	"errors"

	"github.com/phpsessd/phpsessd/engine"
)

// READ <id> [MODE m] [FORMAT f] [TTL s] [METHOD m] [PATH p] [WAIT ms] [UA ua] [IP addr] [MOVE 1]
// → *3 $data :version +mode, or *4 … $newid when the session was moved
// to a new id (fingerprint action regenerate, only with MOVE 1)
func cmdRead(c *conn, args [][]byte) error {
	kw, err := parseKeywords(args[2:], "MODE", "FORMAT", "TTL", "METHOD", "PATH", "WAIT", "UA", "IP", "MOVE")
	if err != nil {
		return err
	}
	req := engine.ReadRequest{
		ID:     c.sessionID(args[1]),
		Format: kw.format(),
		Method: kw.str("METHOD"),
		Path:   kw.str("PATH"),
		IP:     kw.str("IP"),
	}
	if ua, ok := kw.get("UA"); ok {
		req.UA, req.HasUA = string(ua), true
	}
	if v, ok := kw.get("MODE"); ok {
		if req.Mode, err = parseMode(v); err != nil {
			return err
		}
	}
	if v, ok := kw.get("MOVE"); ok {
		switch string(v) {
		case "1":
			req.Movable = true
		case "0":
		default:
			return errArg("MOVE must be 1 or 0, got '" + printable(v) + "'")
		}
	}
	if req.TTL, err = kw.seconds("TTL"); err != nil {
		return err
	}
	if req.LockWait, err = kw.millis("WAIT"); err != nil {
		return err
	}
	res, err := c.client.Read(c.ctx, req)
	if err != nil {
		var fe *engine.FingerprintError
		if errors.As(err, &fe) {
			c.signal("fingerprint_mismatch", req.ID, fe.Reason)
		}
		return err
	}
	if res.MovedTo != "" {
		c.signal("fingerprint_mismatch", req.ID, engine.FingerprintMovedReason)
		// The request goes on under the new id; the old one no longer
		// exists to be released.
		c.donePending([]byte(req.ID))
		c.addPending(res.MovedTo)
	} else {
		c.addPending(req.ID)
	}
	c.writeSession(res)
	return nil
}

// writeSession writes the reply READ and LOCK share: *3 $data :version
// +mode, with the new id as a fourth element after a move (the engine only
// moves for a READ that sent MOVE 1, so other clients never see it).
func (c *conn) writeSession(res engine.ReadResult) {
	if res.MovedTo != "" {
		c.w.WriteArray(4)
	} else {
		c.w.WriteArray(3)
	}
	c.w.WriteBulk(res.Data)
	c.w.WriteUint(res.Version)
	c.granted = string(res.Mode)
	c.w.WriteSimple(string(res.Mode))
	if res.MovedTo != "" {
		c.w.WriteBulk([]byte(res.MovedTo))
	}
}

// WRITE <id> <data> [BASE v] [FORMAT f] [TTL s] → *2 +status :version
func cmdWrite(c *conn, args [][]byte) error {
	// Whatever its outcome, a WRITE ends the request's work on the session.
	defer c.donePending(args[1])
	kw, err := parseKeywords(args[3:], "BASE", "FORMAT", "TTL")
	if err != nil {
		return err
	}
	req := engine.WriteRequest{ID: c.sessionID(args[1]), Data: args[2], Format: kw.format()}
	if req.BaseVersion, err = kw.uint("BASE"); err != nil {
		return err
	}
	if req.TTL, err = kw.seconds("TTL"); err != nil {
		return err
	}
	res, err := c.client.Write(c.ctx, req)
	if err != nil {
		return err
	}
	c.w.WriteArray(2)
	c.w.WriteSimple(string(res.Status))
	c.w.WriteUint(res.Version)
	return nil
}

// CLOSE <id> → +OK
func cmdClose(c *conn, args [][]byte) error {
	c.donePending(args[1])
	if err := c.client.Release(c.ctx, c.sessionID(args[1])); err != nil {
		return err
	}
	c.w.WriteSimple("OK")
	return nil
}

// DESTROY <id> → :1 | :0
func cmdDestroy(c *conn, args [][]byte) error {
	existed, err := c.client.Destroy(c.ctx, string(args[1]))
	if err != nil {
		return err
	}
	c.w.WriteInt(boolInt(existed))
	return nil
}

// GC <maxlifetime> → :swept
func cmdGC(c *conn, args [][]byte) error {
	maxLife, err := parseUint("maxlifetime", args[1])
	if err != nil {
		return err
	}
	n, err := c.s.eng.GC(c.ctx, int64(maxLife))
	if err != nil {
		return err
	}
	c.w.WriteInt(n)
	return nil
}

// TOUCH <id> [TTL s] → :1 | :0
func cmdTouch(c *conn, args [][]byte) error {
	kw, err := parseKeywords(args[2:], "TTL")
	if err != nil {
		return err
	}
	ttl, err := kw.seconds("TTL")
	if err != nil {
		return err
	}
	ok, err := c.client.Touch(c.ctx, string(args[1]), ttl)
	if err != nil {
		return err
	}
	c.w.WriteInt(boolInt(ok))
	return nil
}

// LOCK <id> [DATA d] [FORMAT f] [TTL s] [WAIT ms] → *3 $data :version +locked
func cmdLock(c *conn, args [][]byte) error {
	kw, err := parseKeywords(args[2:], "DATA", "FORMAT", "TTL", "WAIT")
	if err != nil {
		return err
	}
	req := engine.LockRequest{ID: c.sessionID(args[1]), Format: kw.format()}
	req.Data, _ = kw.get("DATA")
	if req.TTL, err = kw.seconds("TTL"); err != nil {
		return err
	}
	if req.LockWait, err = kw.millis("WAIT"); err != nil {
		return err
	}
	res, err := c.client.Lock(c.ctx, req)
	if err != nil {
		return err
	}
	c.addPending(req.ID)
	c.writeSession(res)
	return nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
