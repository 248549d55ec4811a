package caddymodule

import (
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/phantomgate/caddy-phantom-token/cache"
	"github.com/phantomgate/caddy-phantom-token/introspect"
)

// entry is what the cache keeps for one token: the decision inputs, and
// the ready-made upstream Authorization value so a hit builds no strings.
//
// It is laid out for hits with many warm tokens, which are bound by CPU
// cache misses, each costing hundreds of nanoseconds on a virtual machine:
// the cache stores the entry inline in its map slot (it must stay within
// cache.InlineValueBytes, see TestEntryFitsTheCacheSlot), and a hit of
// the route that loaded it reads nothing but that slot. The strings live
// in one block, and what only placeholders and other routes need sits
// behind extras.
type entry struct {
	// expiresAt is the earlier of the token's and the JWT's exp, notBefore
	// the token's nbf, both in Unix nanoseconds; an absent one is the far
	// end of time (see unixNano), so the checks need no presence flags.
	expiresAt int64
	notBefore int64
	// loadedAt is when the introspection that made this entry started, in
	// Unix nanoseconds: the AS's answer is at most this old. Every hit
	// checks it against the reading route's own max_ttl or negative_ttl
	// (see Handler.fresh), since the entry may have been stored by another
	// route, or by the config before a reload, with a longer window.
	loadedAt int64
	// block holds the scope (up to scopeEnd), the first aud value (up to
	// audienceEnd), then "Bearer <JWT>": one allocation for all of them.
	block                 string
	extras                *entryExtras
	scopeEnd, audienceEnd uint32
	// checkedBy is the id of the policy whose verdict on this entry's
	// scope and audience is in checked. Both are set when the entry is
	// made, from immutable inputs, so a request under that same policy
	// reuses the verdict instead of reading the claims again; any other
	// policy (a route with other required scopes sharing the cache, a
	// reloaded config) checks the claims itself. An id rather than a
	// pointer keeps the entry within cache.InlineValueBytes with loadedAt.
	checkedBy   uint32
	active      bool
	hasAudience bool // aud was present (even as "": that matches nothing)
	checked     verdict
	// marks are bits that share one byte to keep the entry within
	// cache.InlineValueBytes: see markFromFleet and markBound.
	marks entryMarks
}

// entryMarks are an entry's flag bits.
type entryMarks uint8

const (
	// markFromFleet is set on entries read from the shared level: their
	// loadedAt is another node's clock (see purgeMark).
	markFromFleet entryMarks = 1 << iota
	// markBound marks a sender-constrained token (cnf.jkt, cnf.x5t#S256
	// or token_type DPoP): every request, hits included, checks its
	// binding (see checkBinding). Unbound tokens pay only this test.
	markBound
)

func (e *entry) fromFleet() bool { return e.marks&markFromFleet != 0 }
func (e *entry) bound() bool     { return e.marks&markBound != 0 }

// entryExtras is the part of an entry a hit under its own policy does not
// read.
type entryExtras struct {
	userID   string // sub, else client_id
	subject  string // sub, "" when absent
	clientID string
	scope    string
	// marks are subject and clientID hashed for the purge marks of the
	// entry's domain, made on the first check after a purge (see
	// purgeDomain.refuses) so that neither a miss nor a hit pays for them
	// while nothing was purged.
	marks atomic.Pointer[markHashes]
	// moreAudience is the aud values after the first, almost always nil.
	moreAudience []string
	// blockBytes is what the heap gave the entry's block: its length
	// rounded up to the allocator's size class.
	blockBytes int
	// jkt and x5t are the token's binding (cnf.jkt, cnf.x5t#S256), and
	// dpopType says the AS called it a DPoP token (token_type).
	jkt, x5t string
	dpopType bool
}

func (e *entry) scope() string    { return e.block[:e.scopeEnd] }
func (e *entry) audience() string { return e.block[e.scopeEnd:e.audienceEnd] }

// header is the upstream Authorization value, "Bearer <JWT>".
func (e *entry) header() string { return e.block[e.audienceEnd:] }

// The placeholder values. Replacer.Set takes an any; these pointer types
// convert to one without allocating and without reading the extras, which
// happens only if a placeholder is actually used (Caddy renders a
// fmt.Stringer with String).
type (
	userIDPlaceholder   entryExtras
	clientIDPlaceholder entryExtras
	scopePlaceholder    entryExtras
)

func (p *userIDPlaceholder) String() string   { return p.userID }
func (p *clientIDPlaceholder) String() string { return p.clientID }
func (p *scopePlaceholder) String() string    { return p.scope }

// newEntry turns an introspection result into a cache entry, with p's
// verdict on it. The AS body size cap keeps every length far below the
// uint32 offsets' range.
func newEntry(r *introspect.Result, p *policy, loadedAt time.Time) entry {
	if !r.Active {
		return entry{loadedAt: loadedAt.UnixNano()}
	}
	var aud string
	var moreAud []string
	if len(r.Audience) > 0 {
		// An empty array is no audience at all, as absent.
		aud = r.Audience[0]
		if len(r.Audience) > 1 {
			moreAud = slices.Clone(r.Audience[1:])
		}
	}
	block, blockBytes := concat(r.Scope, aud, "Bearer ", r.JWT)
	x := &entryExtras{userID: r.Subject, subject: r.Subject, clientID: r.ClientID, scope: block[:len(r.Scope)], moreAudience: moreAud, blockBytes: blockBytes,
		jkt: r.JKT, x5t: r.X5TS256, dpopType: strings.EqualFold(r.TokenType, "DPoP")}
	if x.userID == "" {
		x.userID = x.clientID
	}
	e := entry{
		expiresAt:   unixNano(earliest(r.ExpiresAt, r.JWTExpiresAt), math.MaxInt64),
		notBefore:   unixNano(r.NotBefore, math.MinInt64),
		loadedAt:    loadedAt.UnixNano(),
		block:       block,
		extras:      x,
		scopeEnd:    uint32(len(r.Scope)),
		audienceEnd: uint32(len(r.Scope) + len(aud)),
		active:      true,
		hasAudience: len(r.Audience) > 0,
		checkedBy:   p.id,
	}
	if x.jkt != "" || x.x5t != "" || x.dpopType {
		e.marks |= markBound
	}
	e.checked = p.check(&e)
	return e
}

// concat joins parts with one allocation and returns the result with the
// bytes the heap gave it. Appending to a nil slice rounds the capacity up
// to the allocator's size class (up to 12.5 % more than asked), so the
// entry's cost is what it really takes, not what it uses. The bytes are
// never written again once viewed as a string.
func concat(parts ...string) (string, int) {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	buf := append([]byte(nil), make([]byte, n)...)[:0]
	for _, p := range parts {
		buf = append(buf, p...)
	}
	return unsafe.String(unsafe.SliceData(buf), len(buf)), cap(buf)
}

// unixNano converts t for the checks: the zero time (the claim is absent)
// becomes ifAbsent, and times outside int64 nanoseconds (before 1678 or
// after 2262, where UnixNano is undefined) saturate to the matching end.
func unixNano(t time.Time, ifAbsent int64) int64 {
	switch {
	case t.IsZero():
		return ifAbsent
	case t.Before(minUnixNano):
		return math.MinInt64
	case t.After(maxUnixNano):
		return math.MaxInt64
	}
	return t.UnixNano()
}

var (
	minUnixNano = time.Unix(0, math.MinInt64)
	maxUnixNano = time.Unix(0, math.MaxInt64)
)

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

// cost is the bytes an entry references beyond its inline size (the cache
// adds that and its own per-entry overhead), so that the cache's byte
// bound (see liveBytesFor) covers what entries really hold.
func (e entry) cost() int64 {
	if e.extras == nil {
		return 0
	}
	const stringHeader = int(unsafe.Sizeof(""))
	n := e.extras.blockBytes + int(unsafe.Sizeof(entryExtras{}))
	n += len(e.extras.userID) + len(e.extras.clientID) // may share bytes with the JWT; counted anyway
	n += len(e.extras.jkt) + len(e.extras.x5t)
	for _, a := range e.extras.moreAudience {
		n += stringHeader + len(a)
	}
	return int64(n)
}

// policy is what a route requires of a token beyond being active and
// within its validity time: the audience (when resource is set) and the
// scopes. It is made once per provisioned handler and never changes, which
// is what makes entry.checked reusable.
type policy struct {
	id                   uint32           // unique per policy made by newPolicy; 0 in none
	resource             *audienceMatcher // nil: no audience check
	allowMissingAudience bool
	// requiredScopes are required_scopes, each with the scopes that
	// satisfy it (itself, and those implying it through scope_implies).
	requiredScopes [][]string
}

// policyIDs numbers policies. Ids are never reused within a process (four
// billion provisions would wrap it: far beyond any config's reloads).
var policyIDs atomic.Uint32

// newPolicy returns p with a fresh id, so that entries record which policy
// checked them.
func newPolicy(p policy) *policy {
	p.id = policyIDs.Add(1)
	return &p
}

// check decides on the entry's audience and scopes.
func (p *policy) check(e *entry) verdict {
	if p.resource != nil {
		if !e.hasAudience {
			if !p.allowMissingAudience {
				return invalidToken
			}
		} else if !p.resource.matches(e.audience()) && !p.resource.matchesAny(e.extras.moreAudience) {
			return invalidToken
		}
	}
	if !satisfied(e.scope(), p.requiredScopes) {
		return insufficientScope
	}
	return allowed
}

// hasScope reports whether the space-separated scope list contains want as
// a whole scope token. It scans instead of splitting, so that a hit does
// not allocate. Any ASCII whitespace separates, as strings.Fields would.
func hasScope(scope, want string) bool {
	for len(scope) > 0 {
		i := 0
		for i < len(scope) && !isSpace(scope[i]) {
			i++
		}
		if scope[:i] == want {
			return true
		}
		for i < len(scope) && isSpace(scope[i]) {
			i++
		}
		scope = scope[i:]
	}
	return false
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// verdict is the outcome of authorizing a request with an entry.
type verdict uint8

const (
	allowed verdict = iota
	invalidToken
	insufficientScope
)

// authorize runs the checks that must hold on every request, cache hits
// included: a cached entry can expire, and routes differ in what they need.
// The time checks always run; the policy's verdict is reused only when the
// entry was made under this very policy (see entry.checkedBy).
//
// leeway (the clock skew allowed with the AS) applies to nbf only: exp is
// never extended, so a token is never accepted past its lifetime.
func (h *Handler) authorize(e *entry, t time.Time) verdict {
	if !e.active {
		return invalidToken
	}
	if now := t.UnixNano(); now >= e.expiresAt || now+h.leeway < e.notBefore {
		return invalidToken
	}
	if e.checkedBy == h.policy.id {
		return e.checked
	}
	return h.policy.check(e)
}

// usable reports whether a cached entry may decide this request: the AS's
// answer is recent enough for this handler and no purge covers it.
func (h *Handler) usable(e *entry, key cache.Key, t time.Time) bool {
	if !h.fresh(e, t) {
		return false
	}
	// Inline the common case, nothing purged, so a hit pays one atomic
	// load and no call.
	m := h.domain.snap.Load()
	return m == nil || !m.refuses(h.domain, e, key)
}

// fresh reports whether the AS's answer in e is recent enough for this
// handler: within max_ttl for an active token, negative_ttl for an
// inactive one. The cache's own expiry follows the window of whichever
// handler stored the entry; this check makes every route's (and every
// reloaded config's) revocation window its own. A window of 0 takes no
// cached answer at all.
func (h *Handler) fresh(e *entry, t time.Time) bool {
	window := h.maxTTL
	if !e.active {
		window = h.negTTL
	}
	return t.UnixNano()-e.loadedAt < int64(window)
}
