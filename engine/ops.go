package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/phpsessd/phpsessd/handlers"
	"github.com/phpsessd/phpsessd/phpserialize"
)

// Op applies a lockless operation and folds it into the client's base so the
// request's own final write does not apply it twice.
//
// Folding applies the same operation to the base the connection read. The
// PHP side is expected to mirror the operation on $_SESSION (add the delta,
// append the string, push the value); its final WRITE then shows no change
// for that key relative to the folded base, and the stored value, which
// may include other requests' operations, stays.
func (c *Client) Op(ctx context.Context, r OpRequest) (OpResult, error) {
	if err := c.enter(); err != nil {
		return OpResult{}, err
	}
	e := c.e
	if err := e.checkID(r.ID); err != nil {
		return OpResult{}, err
	}
	if r.Key == "" {
		return OpResult{}, fmt.Errorf("%s session %s: %w: empty key", r.Kind, r.ID, ErrBadRequest)
	}
	switch r.Kind {
	case OpIncr, OpAppend, OpUnset:
	case OpPush, OpSet:
		if err := phpserialize.Valid(r.Value); err != nil {
			return OpResult{}, fmt.Errorf("%s session %s key %s: %w: value is not one serialized PHP value: %v", r.Kind, r.ID, r.Key, ErrBadRequest, err)
		}
	default:
		return OpResult{}, fmt.Errorf("session %s: %w: unknown operation %q", r.ID, ErrBadRequest, r.Kind)
	}

	release, err := e.lockShard(ctx, r.ID)
	if err != nil {
		return OpResult{}, err
	}
	defer release.unlock()
	b := c.base(r.ID)
	for attempt := 0; attempt < maxCASRetries; attempt++ {
		res, err := e.resolve(ctx, r.ID)
		if err != nil {
			return OpResult{}, fmt.Errorf("%s session %s: %w", r.Kind, r.ID, err)
		}
		format := effectiveFormat(res.meta.Format, r.Format)
		if b != nil && !res.found {
			format = effectiveFormat(r.Format, b.format)
		}
		if !mergeable(format) {
			return OpResult{}, fmt.Errorf("%s session %s: %w: serializer %q is opaque to the daemon", r.Kind, r.ID, ErrBadRequest, format)
		}
		out, result, changed, err := applyOp(res.rec.Data, format, r)
		if err != nil {
			return OpResult{}, fmt.Errorf("%s session %s key %s: %w", r.Kind, r.ID, r.Key, err)
		}
		if !changed {
			return OpResult{Value: result.Value, Int: result.Int, Version: res.rec.Version}, nil
		}
		if len(out) > e.cfg.MaxDataSize {
			return OpResult{}, fmt.Errorf("%s session %s: %d bytes, limit %d: %w", r.Kind, r.ID, len(out), e.cfg.MaxDataSize, ErrTooLarge)
		}
		ttl := r.TTL
		if ttl <= 0 && b != nil {
			ttl = b.ttl
		}
		v, err := e.store.Save(ctx, res.id, handlers.Record{
			Data: out, Expires: time.Now().Add(e.ttl(ttl)), Meta: encodeMeta(keepMeta(res.meta, format)),
		}, res.rec.Version)
		if errors.Is(err, handlers.ErrVersionMismatch) {
			continue
		}
		if err != nil {
			return OpResult{}, fmt.Errorf("%s session %s: save: %w", r.Kind, r.ID, err)
		}
		result.Version = v
		if b != nil {
			c.fold(r, b, res, out, v, format)
		}
		return result, nil
	}
	return OpResult{}, fmt.Errorf("%s session %s: store kept changing, gave up after %d compare-and-swap attempts: %w",
		r.Kind, r.ID, maxCASRetries, handlers.ErrVersionMismatch)
}

// fold applies r to the connection's base. When nobody else wrote since
// the base was read, the base simply becomes the stored result, with its
// version; otherwise the folded base is a value no version ever held.
func (c *Client) fold(r OpRequest, b *clientBase, res resolved, stored []byte, v uint64, format string) {
	nb := *b
	if b.exact && b.version == res.rec.Version {
		nb.data, nb.version, nb.exact = bytes.Clone(stored), v, true
		nb.meta, nb.metaOK = keepMeta(res.meta, format), true
		c.e.bases.put(res.id, v, nb.data, format)
	} else if folded, _, _, err := applyOp(b.data, effectiveFormat(b.format, format), r); err == nil {
		nb.data, nb.exact = folded, false
	} else {
		// The base held a different type at that key: the stored value is
		// the best guess of what the request now expects there.
		nb.exact = false
		if kv, ok := topValue(stored, format, r.Key); ok {
			if d, err := replaceTop(b.data, effectiveFormat(b.format, format), r.Key, kv); err == nil {
				nb.data = d
			}
		}
	}
	c.mu.Lock()
	if !c.closed && c.bases[r.ID] == b {
		c.bases[r.ID] = &nb
	}
	c.mu.Unlock()
}

// applyOp runs r on session data and returns the new data, the result and
// whether anything changed.
func applyOp(data []byte, format string, r OpRequest) ([]byte, OpResult, bool, error) {
	entries, err := phpserialize.SplitSession(data, format)
	if err != nil {
		return nil, OpResult{}, false, fmt.Errorf("%w: stored session undecodable: %v", ErrBadRequest, err)
	}
	key := sessionKey(format, r.Key)
	idx := -1
	for i, en := range entries {
		if en.Key == key {
			idx = i // last wins, like PHP
		}
	}
	var cur []byte
	if idx >= 0 {
		cur = entries[idx].Raw
	}
	if r.Kind == OpPush || r.Kind == OpSet || r.Kind == OpUnset {
		// These change how many value slots the session has, which would
		// retarget R:/r: references after the key.
		for _, en := range entries {
			if phpserialize.HasReferences(en.Raw) {
				return nil, OpResult{}, false, fmt.Errorf("%w: session holds PHP references; %s would break them", ErrBadRequest, r.Kind)
			}
		}
	}
	var nv []byte
	var res OpResult
	switch r.Kind {
	case OpIncr:
		var n int64
		if cur != nil {
			var ok bool
			if n, ok = phpserialize.ParseInt(cur); !ok {
				return nil, OpResult{}, false, fmt.Errorf("%w: INCR on %s, not an integer", ErrBadRequest, typeName(cur))
			}
		}
		s := n + r.Delta
		if (r.Delta > 0 && s < n) || (r.Delta < 0 && s > n) {
			return nil, OpResult{}, false, fmt.Errorf("%w: INCR overflows the integer range", ErrBadRequest)
		}
		nv = phpserialize.AppendInt(nil, s)
		res.Int = s
	case OpAppend:
		var s []byte
		if cur != nil {
			var ok bool
			if s, ok = phpserialize.ParseString(cur); !ok {
				return nil, OpResult{}, false, fmt.Errorf("%w: APPEND on %s, not a string", ErrBadRequest, typeName(cur))
			}
		}
		ns := make([]byte, 0, len(s)+len(r.Value))
		ns = append(append(ns, s...), r.Value...)
		nv = phpserialize.AppendString(nil, string(ns))
		res.Int = int64(len(ns))
	case OpPush:
		var list []phpserialize.RawEntry
		if cur != nil {
			var err error
			if list, err = phpserialize.SplitArray(cur); err != nil || !isList(list) {
				return nil, OpResult{}, false, fmt.Errorf("%w: PUSH on %s, not a list", ErrBadRequest, typeName(cur))
			}
		}
		list = append(list, phpserialize.RawEntry{Key: phpserialize.IntKey(int64(len(list))), Raw: r.Value})
		nv = phpserialize.AppendArray(nil, list)
		res.Int = int64(len(list))
	case OpSet:
		nv = r.Value
	case OpUnset:
		if idx < 0 {
			return data, OpResult{}, false, nil
		}
		res.Int = 1
	}
	res.Value = nv
	out := make([]phpserialize.RawEntry, 0, len(entries)+1)
	for i, en := range entries {
		if en.Key == key {
			if i == idx && nv != nil {
				out = append(out, phpserialize.RawEntry{Key: key, Raw: nv})
			}
			continue
		}
		out = append(out, en)
	}
	if idx < 0 {
		out = append(out, phpserialize.RawEntry{Key: key, Raw: nv})
	}
	enc, err := phpserialize.AppendSession(make([]byte, 0, len(data)+len(nv)), format, out)
	if err != nil {
		return nil, OpResult{}, false, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	return enc, res, true, nil
}

// sessionKey is how a top-level key named on the wire appears in the
// session: php_serialize turns numeric strings into ints like PHP does,
// the php and php_binary formats keep names as strings.
func sessionKey(format, k string) phpserialize.Key {
	if format == "php_serialize" {
		return phpserialize.ArrayKey(k)
	}
	return phpserialize.StringKey(k)
}

func topValue(data []byte, format, k string) ([]byte, bool) {
	entries, err := phpserialize.SplitSession(data, format)
	if err != nil {
		return nil, false
	}
	key := sessionKey(format, k)
	var v []byte
	for _, en := range entries {
		if en.Key == key {
			v = en.Raw
		}
	}
	return v, v != nil
}

func replaceTop(data []byte, format, k string, v []byte) ([]byte, error) {
	out, _, _, err := applyOp(data, format, OpRequest{Kind: OpSet, Key: k, Value: v})
	return out, err
}

func typeName(raw []byte) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case 'i':
		return "int"
	case 'd':
		return "float"
	case 's', 'S':
		return "string"
	case 'b':
		return "bool"
	case 'N':
		return "null"
	case 'a':
		return "array"
	case 'O', 'C':
		return "object"
	case 'E':
		return "enum"
	}
	return "value"
}
