package server

// CREATEID [LENGTH n] [BITS b] → $id
func cmdCreateID(c *conn, args [][]byte) error {
	kw, err := parseKeywords(args[1:], "LENGTH", "BITS")
	if err != nil {
		return err
	}
	opt, err := kw.idOptions()
	if err != nil {
		return err
	}
	id, err := c.s.eng.CreateID(c.ctx, opt)
	if err != nil {
		return err
	}
	c.w.WriteBulkString(id)
	return nil
}

// VALIDATE <id> → :1 | :0 (-INVALIDID for a malformed id)
func cmdValidate(c *conn, args [][]byte) error {
	ok, err := c.s.eng.ValidateID(c.ctx, string(args[1]))
	if err != nil {
		return err
	}
	if !ok {
		c.signal("unknown_id", string(args[1]), "no such session (strict mode)")
	}
	c.w.WriteInt(boolInt(ok))
	return nil
}

// REGENERATE <old id> [LENGTH n] [BITS b] [GRACE ms] → $new id
func cmdRegenerate(c *conn, args [][]byte) error {
	kw, err := parseKeywords(args[2:], "LENGTH", "BITS", "GRACE")
	if err != nil {
		return err
	}
	opt, err := kw.idOptions()
	if err != nil {
		return err
	}
	if opt.Grace, err = kw.millis("GRACE"); err != nil {
		return err
	}
	id, err := c.client.Regenerate(c.ctx, string(args[1]), opt)
	if err != nil {
		return err
	}
	c.renamePending(string(args[1]), id)
	c.w.WriteBulkString(id)
	return nil
}
