package caddymodule

import (
	"strings"
	"time"
	"unsafe"

	"github.com/phantomgate/caddy-phantom-token/introspect"
)

// entry is what the cache keeps for one token: the decision inputs, and
// the ready-made upstream Authorization value so a hit builds no strings.
type entry struct {
	active    bool
	header    string // "Bearer <JWT>"
	userID    string // sub, else client_id
	clientID  string
	scope     string
	scopes    []string
	audience  []string
	expiresAt time.Time // the earlier of the token's and the JWT's exp; zero if neither
	notBefore time.Time

	// userID, clientID and scope boxed once, for the placeholders:
	// Replacer.Set takes an any, and converting a string to an any
	// allocates, so setting the placeholders from the strings would cost
	// three allocations on every hit.
	userIDValue, clientIDValue, scopeValue any
}

// inactiveEntry is shared by every negative result; it holds nothing.
var inactiveEntry = &entry{}

// newEntry turns an introspection result into a cache entry.
func newEntry(r *introspect.Result) *entry {
	if !r.Active {
		return inactiveEntry
	}
	e := &entry{
		active:    true,
		header:    "Bearer " + r.JWT,
		userID:    r.Subject,
		clientID:  r.ClientID,
		scope:     r.Scope,
		scopes:    strings.Fields(r.Scope),
		audience:  r.Audience,
		expiresAt: earliest(r.ExpiresAt, r.JWTExpiresAt),
		notBefore: r.NotBefore,
	}
	if e.userID == "" {
		e.userID = e.clientID
	}
	e.userIDValue, e.clientIDValue, e.scopeValue = e.userID, e.clientID, e.scope
	return e
}

// earliest returns the earlier non-zero time, or zero when both are zero.
func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}

// cost is the bytes an entry holds beyond the pointer the cache stores
// (the cache adds its own per-entry overhead), so that max_size bounds
// what the process really holds. Substrings share memory with the JWT or
// scope they were cut from, but counting them again errs on the safe side.
func (e *entry) cost() int64 {
	const stringHeader = int(unsafe.Sizeof(""))
	n := int(unsafe.Sizeof(*e)) + len(e.header) + len(e.userID) + len(e.clientID) + len(e.scope)
	// Each boxed placeholder value is a string header on the heap; its
	// bytes are shared with the strings counted above.
	n += 3 * stringHeader
	for _, s := range e.scopes {
		n += stringHeader + len(s)
	}
	for _, a := range e.audience {
		n += stringHeader + len(a)
	}
	return int64(n)
}

// hasScopes reports whether every required scope was granted.
func (e *entry) hasScopes(required []string) bool {
	for _, r := range required {
		found := false
		for _, s := range e.scopes {
			if s == r {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// verdict is the outcome of authorizing a request with an entry.
type verdict int

const (
	allowed verdict = iota
	invalidToken
	insufficientScope
)

// authorize runs the checks that must hold on every request, cache hits
// included: a cached entry can expire, and routes differ in what they need.
func (h *Handler) authorize(e *entry, t time.Time) verdict {
	if !e.active {
		return invalidToken
	}
	if !e.expiresAt.IsZero() && !t.Before(e.expiresAt) {
		return invalidToken
	}
	if !e.notBefore.IsZero() && t.Before(e.notBefore) {
		return invalidToken
	}
	if h.resource != nil {
		if len(e.audience) == 0 {
			if !h.AllowMissingAudience {
				return invalidToken
			}
		} else if !h.resource.matches(e.audience) {
			return invalidToken
		}
	}
	if !e.hasScopes(h.RequiredScopes) {
		return insufficientScope
	}
	return allowed
}
