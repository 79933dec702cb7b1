package server

import (
	"github.com/phpsessd/phpsessd/engine"
)

// opRequest builds the common part of a lockless operation: id, key and
// the FORMAT and TTL keywords after the positional arguments.
func opRequest(kind engine.OpKind, args [][]byte, kwFrom int, extra ...string) (engine.OpRequest, kwargs, error) {
	kw, err := parseKeywords(args[kwFrom:], append([]string{"FORMAT", "TTL"}, extra...)...)
	if err != nil {
		return engine.OpRequest{}, kw, err
	}
	req := engine.OpRequest{ID: string(args[1]), Kind: kind, Key: string(args[2]), Format: kw.format()}
	if req.TTL, err = kw.seconds("TTL"); err != nil {
		return req, kw, err
	}
	return req, kw, nil
}

// INCR <id> <key> [BY n] [FORMAT f] [TTL s] → :new value
func cmdIncr(c *conn, args [][]byte) error {
	req, kw, err := opRequest(engine.OpIncr, args, 3, "BY")
	if err != nil {
		return err
	}
	req.Delta = 1
	if v, ok := kw.get("BY"); ok {
		if req.Delta, err = parseInt("BY", v); err != nil {
			return err
		}
	}
	res, err := c.client.Op(c.ctx, req)
	if err != nil {
		return err
	}
	c.w.WriteInt(res.Int)
	return nil
}

// APPEND <id> <key> <string> [FORMAT f] [TTL s] → :new length
func cmdAppend(c *conn, args [][]byte) error {
	return valueOp(c, engine.OpAppend, args, false)
}

// PUSH <id> <key> <serialized value> [FORMAT f] [TTL s] → :new count
func cmdPush(c *conn, args [][]byte) error {
	return valueOp(c, engine.OpPush, args, false)
}

// SET <id> <key> <serialized value> [FORMAT f] [TTL s] → +OK
func cmdSet(c *conn, args [][]byte) error {
	return valueOp(c, engine.OpSet, args, true)
}

func valueOp(c *conn, kind engine.OpKind, args [][]byte, replyOK bool) error {
	req, _, err := opRequest(kind, args, 4)
	if err != nil {
		return err
	}
	req.Value = args[3]
	res, err := c.client.Op(c.ctx, req)
	if err != nil {
		return err
	}
	if replyOK {
		c.w.WriteSimple("OK")
	} else {
		c.w.WriteInt(res.Int)
	}
	return nil
}

// UNSET <id> <key> [FORMAT f] [TTL s] → :1 | :0
func cmdUnset(c *conn, args [][]byte) error {
	req, _, err := opRequest(engine.OpUnset, args, 3)
	if err != nil {
		return err
	}
	res, err := c.client.Op(c.ctx, req)
	if err != nil {
		return err
	}
	c.w.WriteInt(res.Int)
	return nil
}
