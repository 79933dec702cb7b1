package engine

import (
	"fmt"
	"path"
	"strings"
)

// pickMode applies the mode rules to a request's method and path.
func pickMode(rules []ModeRule, method, reqPath string) Mode {
	if i := strings.IndexByte(reqPath, '?'); i >= 0 {
		reqPath = reqPath[:i]
	}
	for _, r := range rules {
		if r.Method != "" && r.Method != "*" && !strings.EqualFold(r.Method, method) {
			continue
		}
		if r.Path != "" && !globAny(r.Path, reqPath) {
			continue
		}
		return r.Mode
	}
	return ModeOptimistic
}

// globAny matches s against a pattern where '*' matches any run of bytes,
// '/' included. Iterative with single-star backtracking, so it is linear
// in practice and cannot blow up on hostile paths.
func globAny(pattern, s string) bool {
	px, sx := 0, 0
	starPx, starSx := -1, 0
	for sx < len(s) {
		if px < len(pattern) && pattern[px] == '*' {
			starPx, starSx = px, sx
			px++
			continue
		}
		if px < len(pattern) && pattern[px] == s[sx] {
			px++
			sx++
			continue
		}
		if starPx >= 0 {
			px = starPx + 1
			starSx++
			sx = starSx
			continue
		}
		return false
	}
	for px < len(pattern) && pattern[px] == '*' {
		px++
	}
	return px == len(pattern)
}

// keyPattern is a compiled key path pattern ("cart/items", "flash/*",
// "stats/**").
type keyPattern struct{ segs []string }

func compileKeyPattern(p string) (keyPattern, error) {
	if p == "" {
		return keyPattern{}, fmt.Errorf("empty key pattern")
	}
	segs := strings.Split(p, "/")
	for _, s := range segs {
		if s == "**" {
			continue
		}
		if _, err := path.Match(s, ""); err != nil {
			return keyPattern{}, fmt.Errorf("key pattern %q: %w", p, err)
		}
	}
	return keyPattern{segs: segs}, nil
}

func (k keyPattern) match(keyPath []string) bool { return matchSegs(k.segs, keyPath) }

func matchSegs(pat, segs []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			rest := pat[1:]
			for i := 0; i <= len(segs); i++ {
				if matchSegs(rest, segs[i:]) {
					return true
				}
			}
			return false
		}
		if len(segs) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], segs[0]); !ok {
			return false
		}
		pat, segs = pat[1:], segs[1:]
	}
	return len(segs) == 0
}

type compiledKeyRule struct {
	pat  keyPattern
	rule Rule
}

func compileRules(cfg *Config) (rules []compiledKeyRule, counters []keyPattern, err error) {
	for _, r := range cfg.KeyRules {
		switch r.Rule {
		case RuleMine, RuleTheirs, RuleFail:
		default:
			return nil, nil, fmt.Errorf("key rule %q: unknown rule %q", r.Pattern, r.Rule)
		}
		p, err := compileKeyPattern(r.Pattern)
		if err != nil {
			return nil, nil, err
		}
		rules = append(rules, compiledKeyRule{pat: p, rule: r.Rule})
	}
	for _, c := range cfg.Counters {
		p, err := compileKeyPattern(c)
		if err != nil {
			return nil, nil, err
		}
		counters = append(counters, p)
	}
	for _, r := range cfg.ModeRules {
		switch r.Mode {
		case ModeOptimistic, ModeReadonly, ModeLocked:
		default:
			return nil, nil, fmt.Errorf("mode rule %s %s: unknown mode %q", r.Method, r.Path, r.Mode)
		}
	}
	return rules, counters, nil
}
