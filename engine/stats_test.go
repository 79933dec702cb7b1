package engine

import (
	"errors"
	"testing"
)

// conflictRace has a and b read the same version of id, then a stores
// first and b writes over it, so b's write merges against a's.
func conflictRace(t *testing.T, e *Engine, id, base, fromA, fromB string) (WriteResult, error) {
	t.Helper()
	a, b := e.NewClient("a"), e.NewClient("b")
	defer a.Close()
	defer b.Close()
	mustRead(t, a, id, ModeAuto)
	mustWrite(t, a, id, base, 0)
	ra := mustRead(t, a, id, ModeAuto)
	rb := mustRead(t, b, id, ModeAuto)
	mustWrite(t, a, id, fromA, ra.Version)
	return b.Write(bg, WriteRequest{ID: id, Data: []byte(fromB), BaseVersion: rb.Version, Format: "php"})
}

func TestConflictStatsByRule(t *testing.T) {
	e := newTestEngine(t, func(c *Config) {
		c.KeyRules = []KeyRule{{"t", RuleTheirs}, {"f", RuleFail}}
	})
	check := func(step string, mine, theirs, fail uint64) {
		t.Helper()
		s := e.Stats()
		if s.ConflictsMine != mine || s.ConflictsTheirs != theirs || s.ConflictsFail != fail {
			t.Fatalf("%s: mine/theirs/fail = %d/%d/%d, want %d/%d/%d",
				step, s.ConflictsMine, s.ConflictsTheirs, s.ConflictsFail, mine, theirs, fail)
		}
		if s.Conflicts != mine+theirs+fail {
			t.Fatalf("%s: total %d, want %d", step, s.Conflicts, mine+theirs+fail)
		}
	}
	check("start", 0, 0, 0)

	// "m" falls to the default rule, mine.
	res, err := conflictRace(t, e, "s-mine", sess("m", pi(1)), sess("m", pi(2)), sess("m", pi(3)))
	if err != nil || res.Status != StatusMerged || res.Conflicts != 1 {
		t.Fatalf("mine: %+v, %v", res, err)
	}
	check("mine", 1, 0, 0)

	res, err = conflictRace(t, e, "s-theirs", sess("t", pi(1)), sess("t", pi(2)), sess("t", pi(3)))
	if err != nil || res.Status != StatusMerged || res.Conflicts != 1 {
		t.Fatalf("theirs: %+v, %v", res, err)
	}
	check("theirs", 1, 1, 0)

	// A removal never wins over a change: theirs, even under mine.
	res, err = conflictRace(t, e, "s-removed", sess("m", pi(1), "k", pi(1)), sess("m", pi(2), "k", pi(1)), sess("k", pi(1)))
	if err != nil || res.Status != StatusMerged || res.Conflicts != 1 {
		t.Fatalf("removed: %+v, %v", res, err)
	}
	check("removed", 1, 2, 0)

	_, err = conflictRace(t, e, "s-fail", sess("f", pi(1)), sess("f", pi(2)), sess("f", pi(3)))
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("fail: err = %v, want a conflict", err)
	}
	check("fail", 1, 2, 1)
}
