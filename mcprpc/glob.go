package mcprpc

import (
	"errors"
	"strings"
)

// Pattern matches a whole tool or prompt name or resource URI; '*' matches
// any run of characters, the empty run and '/' included. It has no other
// special characters.
type Pattern struct {
	parts []string // the text between the '*'s
}

// ParsePattern checks a pattern. Characters other globs treat as special
// ('?', '[', ']', '\') are refused, so that a pattern never silently means
// something else than its author expected.
func ParsePattern(p string) (Pattern, error) {
	if p == "" {
		return Pattern{}, errors.New("empty pattern")
	}
	if i := strings.IndexAny(p, `?[]\`); i >= 0 {
		return Pattern{}, errors.New("only '*' is a wildcard; '" + p[i:i+1] + "' is not allowed")
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return Pattern{}, errors.New("control characters are not allowed")
		}
	}
	return Pattern{parts: strings.Split(p, "*")}, nil
}

// Match reports whether s matches the whole pattern.
func (p Pattern) Match(s string) bool {
	parts := p.parts
	if len(parts) == 1 {
		return s == parts[0]
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return len(s) >= len(last) && strings.HasSuffix(s, last)
}

// String returns the pattern as written.
func (p Pattern) String() string { return strings.Join(p.parts, "*") }
