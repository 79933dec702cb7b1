package engine

import (
	"bytes"
	"math"
	"strconv"
	"strings"

	"github.com/phpsessd/phpsessd/phpserialize"
)

// merge combines mine (what the request writes) with theirs (what is
// stored now) against the base the request read. It returns mine unchanged
// whenever it cannot merge safely (unknown serializer, corrupt data, PHP
// references), so a write is never lost silently; the only error is a
// conflict under the fail rule, and then nothing must be stored.
func (e *Engine) merge(id, format string, bs baseState, mine, theirs []byte) ([]byte, int, error) {
	if !mergeable(format) {
		e.log.Debug("opaque serializer: the write replaces the stored session", "session", shortID(id), "format", format)
		return mine, 0, nil
	}
	format = effectiveFormat(format)
	if bs.known && bytes.Equal(mine, bs.data) {
		return theirs, 0, nil
	}
	if bs.known && bytes.Equal(theirs, bs.data) {
		return mine, 0, nil
	}
	var baseE []phpserialize.RawEntry
	var err error
	if bs.known {
		if baseE, err = phpserialize.SplitSession(bs.data, format); err != nil {
			e.log.Warn("base session undecodable; not merged, this write wins", "session", shortID(id), "format", format, "err", err)
			return mine, 0, nil
		}
	}
	mineE, err := phpserialize.SplitSession(mine, format)
	if err != nil {
		e.log.Warn("written session undecodable; not merged, this write wins", "session", shortID(id), "format", format, "err", err)
		return mine, 0, nil
	}
	theirsE, err := phpserialize.SplitSession(theirs, format)
	if err != nil {
		e.log.Warn("stored session undecodable; not merged, this write wins", "session", shortID(id), "format", format, "err", err)
		return mine, 0, nil
	}
	for i, side := range [][]phpserialize.RawEntry{baseE, mineE, theirsE} {
		if !mayHaveRefs([][]byte{bs.data, mine, theirs}[i]) {
			continue
		}
		for _, en := range side {
			if phpserialize.HasReferences(en.Raw) {
				// R:/r: point at value slots numbered across the whole
				// session; moving or renumbering anything would retarget
				// them. Last writer wins, as with PHP's own handlers.
				e.log.Info("session holds PHP references; not merged key by key, this write wins",
					"session", shortID(id), "key", en.Key.String())
				return mine, 0, nil
			}
		}
	}
	m := merger{e: e, id: id}
	out := m.entries(nil, baseE, bs.known, mineE, theirsE)
	e.st.conflictsMine.Add(uint64(m.mine))
	e.st.conflictsTheirs.Add(uint64(m.theirs))
	e.st.conflictsFail.Add(uint64(m.failures))
	if m.failed != nil {
		return nil, m.conflicts, m.failed
	}
	res, err := phpserialize.AppendSession(make([]byte, 0, len(mine)+len(theirs)/4), format, out)
	if err != nil {
		e.log.Warn("merged session not encodable; not merged, this write wins", "session", shortID(id), "format", format, "err", err)
		return mine, m.conflicts, nil
	}
	return res, m.conflicts, nil
}

// mayHaveRefs is a cheap filter before the structural HasReferences
// check: without the bytes "R:" or "r:" anywhere there can be no reference.
func mayHaveRefs(data []byte) bool {
	return bytes.Contains(data, []byte("R:")) || bytes.Contains(data, []byte("r:"))
}

type merger struct {
	e         *Engine
	id        string
	conflicts int
	// The same conflicts by the rule that resolved them, for Stats.
	mine, theirs, failures int
	failed                 *ConflictError
}

func index(es []phpserialize.RawEntry) map[phpserialize.Key][]byte {
	m := make(map[phpserialize.Key][]byte, len(es))
	for _, en := range es {
		m[en.Key] = en.Raw // duplicates: last wins, like PHP
	}
	return m
}

// entries merges one level of key/value pairs. Output order: the stored
// order first (it is what other requests see), then keys only this write
// has, in its order.
func (m *merger) entries(path []string, base []phpserialize.RawEntry, baseKnown bool, mine, theirs []phpserialize.RawEntry) []phpserialize.RawEntry {
	bm, mm, tm := index(base), index(mine), index(theirs)
	out := make([]phpserialize.RawEntry, 0, len(theirs)+len(mine)/4)
	seen := make(map[phpserialize.Key]bool, len(theirs)+len(mine))
	emit := func(k phpserialize.Key) {
		if seen[k] || m.failed != nil {
			return
		}
		seen[k] = true
		bv, inB := bm[k]
		mv, inM := mm[k]
		tv, inT := tm[k]
		if v, keep := m.value(path, k, bv, inB, baseKnown, mv, inM, tv, inT); keep {
			out = append(out, phpserialize.RawEntry{Key: k, Raw: v})
		}
	}
	for _, en := range theirs {
		emit(en.Key)
	}
	for _, en := range mine {
		emit(en.Key)
	}
	return out
}

// value decides one key. bv/mv/tv are serialized values; inX says whether
// the side has the key at all.
func (m *merger) value(path []string, k phpserialize.Key, bv []byte, inB, baseKnown bool, mv []byte, inM bool, tv []byte, inT bool) ([]byte, bool) {
	p := make([]string, len(path)+1)
	copy(p, path)
	p[len(path)] = k.String()

	// Counters and list appends come before the equality test: two
	// requests that both added 1, or both appended the same value, made two
	// changes, not one.
	if inM && inT && baseKnown {
		if m.e.isCounter(p) {
			if v, ok := counterMerge(bv, inB, mv, tv); ok {
				return v, true
			}
		}
		if v, ok := listAppend(bv, inB, mv, tv); ok {
			return v, true
		}
	}
	if inM && inT && bytes.Equal(mv, tv) {
		// Both changed an array the same way: look inside, where the same
		// counter increment or append made twice must count twice.
		if baseKnown && inB && isArray(mv) && isArray(bv) && !bytes.Equal(mv, bv) {
			if v, ok := m.arrays(p, bv, inB, baseKnown, mv, tv); ok {
				return v, true
			}
		}
		return mv, true
	}
	mineSame := inB == inM && (!inB || bytes.Equal(bv, mv))
	if mineSame {
		return tv, inT
	}
	theirsSame := inB == inT && (!inB || bytes.Equal(bv, tv))
	if theirsSame {
		return mv, inM
	}
	if !inM {
		// Removed here, changed elsewhere: a removal never wins over a
		// change, whatever the rule.
		m.conflict(p, RuleTheirs, "removed by this write, changed by another")
		return tv, true
	}
	if !inT {
		switch r := m.e.ruleFor(p); r {
		case RuleTheirs:
			m.conflict(p, r, "changed by this write, removed by another")
			return nil, false
		case RuleFail:
			m.fail(p, "changed by this write, removed by another")
			return nil, false
		default:
			m.conflict(p, r, "changed by this write, removed by another")
			return mv, true
		}
	}
	if isArray(mv) && isArray(tv) && (!inB || isArray(bv)) {
		if v, ok := m.arrays(p, bv, inB, baseKnown, mv, tv); ok {
			return v, true
		}
	}
	switch r := m.e.ruleFor(p); r {
	case RuleTheirs:
		m.conflict(p, r, "changed by both")
		return tv, true
	case RuleFail:
		m.fail(p, "changed by both")
		return nil, false
	default:
		m.conflict(p, r, "changed by both")
		return mv, true
	}
}

// arrays recurses into an array both sides changed.
func (m *merger) arrays(p []string, bv []byte, inB, baseKnown bool, mv, tv []byte) ([]byte, bool) {
	var be []phpserialize.RawEntry
	if inB {
		var err error
		if be, err = phpserialize.SplitArray(bv); err != nil {
			return nil, false
		}
	}
	me, err := phpserialize.SplitArray(mv)
	if err != nil {
		return nil, false
	}
	te, err := phpserialize.SplitArray(tv)
	if err != nil {
		return nil, false
	}
	sub := m.entries(p, be, baseKnown, me, te)
	if m.failed != nil {
		return nil, false
	}
	return phpserialize.AppendArray(make([]byte, 0, len(mv)+len(tv)/4), sub), true
}

// listAppend merges a list both sides only appended to: base, then their
// appends, then mine, renumbered from 0. A key absent from a known base
// counts as an empty list, so two requests that both start a list keep
// both first elements.
func listAppend(bv []byte, inB bool, mv, tv []byte) ([]byte, bool) {
	if !isArray(mv) || !isArray(tv) || (inB && !isArray(bv)) {
		return nil, false
	}
	var be []phpserialize.RawEntry
	if inB {
		var err error
		if be, err = phpserialize.SplitArray(bv); err != nil || !isList(be) {
			return nil, false
		}
	}
	me, err := phpserialize.SplitArray(mv)
	if err != nil || len(me) <= len(be) || !isList(me) || !hasPrefix(me, be) {
		return nil, false
	}
	te, err := phpserialize.SplitArray(tv)
	if err != nil || len(te) <= len(be) || !isList(te) || !hasPrefix(te, be) {
		return nil, false
	}
	out := make([]phpserialize.RawEntry, 0, len(te)+len(me)-len(be))
	out = append(out, te...)
	for _, en := range me[len(be):] {
		out = append(out, phpserialize.RawEntry{Key: phpserialize.IntKey(int64(len(out))), Raw: en.Raw})
	}
	return phpserialize.AppendArray(make([]byte, 0, len(mv)+len(tv)), out), true
}

func isList(es []phpserialize.RawEntry) bool {
	for i, en := range es {
		if en.Key.IsString || en.Key.Int != int64(i) {
			return false
		}
	}
	return true
}

func hasPrefix(es, prefix []phpserialize.RawEntry) bool {
	if len(es) < len(prefix) {
		return false
	}
	for i, p := range prefix {
		if es[i].Key != p.Key || !bytes.Equal(es[i].Raw, p.Raw) {
			return false
		}
	}
	return true
}

func isArray(raw []byte) bool { return len(raw) > 2 && raw[0] == 'a' && raw[1] == ':' }

// counterMerge adds both sides' deltas to the base (absent: 0). Ints stay
// ints unless the sum overflows; any float side makes the result a float.
func counterMerge(bv []byte, inB bool, mv, tv []byte) ([]byte, bool) {
	var bi int64
	bInt := true
	if inB {
		var ok bool
		if bi, ok = phpserialize.ParseInt(bv); !ok {
			bInt = false
		}
	}
	mi, mInt := phpserialize.ParseInt(mv)
	ti, tInt := phpserialize.ParseInt(tv)
	if bInt && mInt && tInt {
		// m + t - b, refusing to wrap around.
		d := mi - bi
		if (d > 0 && bi > mi) || (d < 0 && bi < mi) {
			return nil, false
		}
		r := ti + d
		if (d > 0 && r < ti) || (d < 0 && r > ti) {
			return nil, false
		}
		return phpserialize.AppendInt(nil, r), true
	}
	var bf float64
	if inB {
		var ok bool
		if bf, ok = number(bv); !ok {
			return nil, false
		}
	}
	mf, ok1 := number(mv)
	tf, ok2 := number(tv)
	if !ok1 || !ok2 {
		return nil, false
	}
	r := mf + tf - bf
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return nil, false
	}
	return phpserialize.AppendFloat(nil, r), true
}

// number reads an i: or d: value as a float.
func number(raw []byte) (float64, bool) {
	if i, ok := phpserialize.ParseInt(raw); ok {
		return float64(i), true
	}
	if len(raw) < 4 || raw[0] != 'd' || raw[1] != ':' || raw[len(raw)-1] != ';' {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(raw[2:len(raw)-1]), 64)
	if err != nil {
		return 0, false
	}
	return f, true
}

func (m *merger) conflict(p []string, rule Rule, what string) {
	m.conflicts++
	if rule == RuleTheirs {
		m.theirs++
	} else {
		m.mine++
	}
	m.e.log.Info("merge conflict", "session", shortID(m.id), "key", strings.Join(p, "/"), "rule", string(rule), "case", what)
}

func (m *merger) fail(p []string, what string) {
	m.conflicts++
	m.failures++
	path := strings.Join(p, "/")
	m.e.log.Warn("merge conflict under the fail rule; write refused", "session", shortID(m.id), "key", path, "case", what)
	if m.failed == nil {
		m.failed = &ConflictError{ID: m.id, Path: path}
	}
}

func (e *Engine) ruleFor(p []string) Rule {
	for _, r := range e.keyRules {
		if r.pat.match(p) {
			return r.rule
		}
	}
	return RuleMine
}

func (e *Engine) isCounter(p []string) bool {
	for _, c := range e.counters {
		if c.match(p) {
			return true
		}
	}
	return false
}
