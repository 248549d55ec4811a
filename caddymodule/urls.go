package caddymodule

import (
	"errors"
	"strings"

	"github.com/phantomgate/caddy-phantom-token/introspect"
)

// checkResourceURL validates the canonical resource URL (RFC 8707 §2):
// the same rules as an AS URL, and no fragment, not even an empty one.
func checkResourceURL(raw string) error {
	if strings.Contains(raw, "#") {
		return errors.New("url must not contain a fragment")
	}
	return introspect.CheckURL(raw)
}

// audienceMatcher decides whether a token's audience names this resource.
// Scheme and host compare case-insensitively and the path exactly, as the
// MCP authorization spec asks; other accepted values compare exactly.
type audienceMatcher struct {
	scheme, host, rest string
	others             []string
}

func newAudienceMatcher(resource string, others []string) *audienceMatcher {
	m := &audienceMatcher{others: others}
	m.scheme, m.host, m.rest = splitURL(resource)
	return m
}

// matches reports whether the aud value a is acceptable.
func (m *audienceMatcher) matches(a string) bool {
	s, h, r := splitURL(a)
	if r == m.rest && strings.EqualFold(s, m.scheme) && strings.EqualFold(h, m.host) {
		return true
	}
	for _, o := range m.others {
		if a == o {
			return true
		}
	}
	return false
}

// matchesAny reports whether any of the aud values is acceptable.
func (m *audienceMatcher) matchesAny(aud []string) bool {
	for _, a := range aud {
		if m.matches(a) {
			return true
		}
	}
	return false
}

// splitURL splits "scheme://host/rest"; a value that is not of that form
// yields an empty scheme and never matches a URL. An empty path is the
// same resource as "/" (RFC 3986 §6.2.3), so "https://h" matches
// "https://h/"; that is the only normalisation, to avoid allocating.
func splitURL(s string) (scheme, host, rest string) {
	i := strings.Index(s, "://")
	if i <= 0 {
		return "", "", s
	}
	scheme, s = s[:i], s[i+3:]
	j := strings.IndexAny(s, "/?")
	switch {
	case j < 0:
		return scheme, s, "/"
	case s[j] == '?':
		return scheme, s[:j], "/" + s[j:]
	}
	return scheme, s[:j], s[j:]
}
