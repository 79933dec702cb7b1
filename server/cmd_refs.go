package server

import (
	"bytes"
	"strconv"

	"github.com/phpsessd/phpsessd/engine"
)

// REF ADD <id> <ref> [EXCLUSIVE] → *2 :<1 added | 0 already there> :<sessions ended>
// REF DEL <id> <ref>             → :1 | :0
// REF LIST <ref>                 → *N $<id>…
// REF KILL <ref>                 → :<sessions destroyed>
func cmdRef(c *conn, args [][]byte) error {
	sub := string(bytes.ToUpper(args[1]))
	want := map[string]int{"ADD": 4, "DEL": 4, "LIST": 3, "KILL": 3}
	n, ok := want[sub]
	if !ok {
		return errArg("unknown REF subcommand '" + printable(args[1]) + "'; known: ADD DEL LIST KILL")
	}
	exclusive := false
	if sub == "ADD" && len(args) == 5 {
		if !bytes.EqualFold(args[4], []byte("EXCLUSIVE")) {
			return errArg("unknown REF ADD flag '" + printable(args[4]) + "'; allowed: EXCLUSIVE")
		}
		exclusive = true
	} else if len(args) != n {
		return errArg("wrong number of arguments for REF " + sub)
	}
	switch sub {
	case "ADD":
		res, err := c.client.AddRef(c.ctx, string(args[2]), string(args[3]), exclusive)
		if err != nil {
			return err
		}
		c.w.WriteArray(2)
		c.w.WriteInt(boolInt(res.Added))
		c.w.WriteInt(int64(res.Killed))
	case "DEL":
		ok, err := c.client.RemoveRef(c.ctx, string(args[2]), string(args[3]))
		if err != nil {
			return err
		}
		c.w.WriteInt(boolInt(ok))
	case "LIST":
		ids, err := c.s.eng.ListRef(c.ctx, string(args[2]))
		if err != nil {
			return err
		}
		c.w.WriteArray(len(ids))
		for _, id := range ids {
			c.w.WriteBulkString(id)
		}
	case "KILL":
		n, err := c.s.eng.KillRef(c.ctx, string(args[2]))
		if err != nil {
			return err
		}
		c.w.WriteInt(int64(n))
	}
	return nil
}

// LIST [LIMIT n] [CURSOR c] → *2 $<next cursor, empty when done> *N $<id>…
func cmdList(c *conn, args [][]byte) error {
	kw, err := parseKeywords(args[1:], "LIMIT", "CURSOR")
	if err != nil {
		return err
	}
	limit, err := kw.uint("LIMIT")
	if err != nil {
		return err
	}
	if limit > engine.MaxListLimit {
		return errArg("LIMIT must be at most " + strconv.Itoa(engine.MaxListLimit))
	}
	page, err := c.s.eng.ListSessions(c.ctx, kw.str("CURSOR"), int(limit))
	if err != nil {
		return err
	}
	c.w.WriteArray(2)
	c.w.WriteBulkString(page.Cursor)
	c.w.WriteArray(len(page.IDs))
	for _, id := range page.IDs {
		c.w.WriteBulkString(id)
	}
	return nil
}
