package server

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
)

// HELLO <protover> [AUTH <token>] [NAME <client-name>]
// → *8 $server $phpsessd $version $<semver> $proto :1 $id :<conn id>
func cmdHello(c *conn, args [][]byte) error {
	if !bytes.Equal(args[1], []byte("1")) {
		return errArg("unsupported protocol version '" + printable(args[1]) + "', this server speaks 1")
	}
	kw, err := parseKeywords(args[2:], "AUTH", "NAME")
	if err != nil {
		return err
	}
	if tok, ok := kw.get("AUTH"); ok {
		if err := c.authenticate(tok); err != nil {
			return err
		}
	}
	if !c.authed {
		return &replyError{code: "NOAUTH", msg: "this listener requires HELLO 1 AUTH <token>"}
	}
	if name, ok := kw.get("NAME"); ok {
		c.name = printable(name)
	}
	c.w.WriteArray(8)
	c.w.WriteBulkString("server")
	c.w.WriteBulkString("phpsessd")
	c.w.WriteBulkString("version")
	c.w.WriteBulkString(c.s.cfg.Version)
	c.w.WriteBulkString("proto")
	c.w.WriteInt(1)
	c.w.WriteBulkString("id")
	c.w.WriteUint(c.id)
	return nil
}

// AUTH <token> → +OK | -WRONGPASS
func cmdAuth(c *conn, args [][]byte) error {
	if err := c.authenticate(args[1]); err != nil {
		return err
	}
	c.w.WriteSimple("OK")
	return nil
}

// authenticate checks a token. Both sides are hashed first so the
// comparison takes the same time whatever the length of the guess;
// subtle.ConstantTimeCompare alone returns early on a length mismatch.
// Without a configured token every token is accepted: there is nothing to
// protect, and a client configured with one keeps working.
func (c *conn) authenticate(tok []byte) error {
	if c.s.cfg.Token == "" {
		c.authed = true
		return nil
	}
	want := sha256.Sum256([]byte(c.s.cfg.Token))
	got := sha256.Sum256(tok)
	if subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
		c.s.stats.authFailures.Add(1)
		c.s.log.Warn("authentication failed", c.logAttrs()...)
		c.signal("auth_failure", "", "invalid token")
		return &replyError{code: "WRONGPASS", msg: "invalid token"}
	}
	c.authed = true
	return nil
}

// PING [message] → +PONG | $message
func cmdPing(c *conn, args [][]byte) error {
	if len(args) == 2 {
		c.w.WriteBulk(args[1])
	} else {
		c.w.WriteSimple("PONG")
	}
	return nil
}

// QUIT → +OK, then close
func cmdQuit(c *conn, _ [][]byte) error {
	c.w.WriteSimple("OK")
	c.quit = true
	return nil
}

// INFO <id> → $json
func cmdInfo(c *conn, args [][]byte) error {
	info, err := c.s.eng.Info(c.ctx, string(args[1]))
	if err != nil {
		return err
	}
	b, err := json.Marshal(info)
	if err != nil {
		return fmt.Errorf("encode info: %w", err)
	}
	c.w.WriteBulk(b)
	return nil
}

// STATS → $json {"engine": {...}, "server": {...}}
func cmdStats(c *conn, _ [][]byte) error {
	b, err := json.Marshal(c.s.Stats())
	if err != nil {
		return fmt.Errorf("encode stats: %w", err)
	}
	c.w.WriteBulk(b)
	return nil
}
