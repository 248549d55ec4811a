package caddymodule

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// checkEndpointURL accepts https URLs, and http ones only on loopback:
// tokens and client secrets must never cross a network in clear text.
func checkEndpointURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("expected an absolute https URL: %v", err)
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("expected an absolute https URL, got %q", raw)
	}
	if u.User != nil {
		return fmt.Errorf("credentials in the URL are not allowed; use client_id and client_secret")
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("http is only allowed for loopback hosts, got %q; use https", u.Host)
	default:
		return fmt.Errorf("expected an https URL, got scheme %q", u.Scheme)
	}
}

// checkResourceURL validates the canonical resource URL (RFC 8707 §2).
func checkResourceURL(raw string) error {
	if err := checkEndpointURL(raw); err != nil {
		return err
	}
	if strings.Contains(raw, "#") {
		return fmt.Errorf("must not contain a fragment")
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
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

// matches reports whether any aud value is acceptable.
func (m *audienceMatcher) matches(aud []string) bool {
	for _, a := range aud {
		s, h, r := splitURL(a)
		if r == m.rest && strings.EqualFold(s, m.scheme) && strings.EqualFold(h, m.host) {
			return true
		}
		for _, o := range m.others {
			if a == o {
				return true
			}
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
