package caddymodule

import (
	"testing"
	"time"
	"unsafe"

	"github.com/caddyserver/caddy/v2"

	"github.com/phantomgate/caddy-phantom-token/cache"
	"github.com/phantomgate/caddy-phantom-token/introspect"
)

// TestAuthorizeEntry runs the per-request checks on entries made from
// introspection results, including the edges of the compact entry layout:
// absent and extreme times, audience lists split into first and rest, and
// scope lists scanned without splitting.
func TestAuthorizeEntry(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	const resource = "https://mcp.example.com/mcp"
	h := &Handler{}
	resourceMatcher := newAudienceMatcher(resource, []string{"api://legacy"})
	good := func() *introspect.Result {
		return &introspect.Result{
			Active: true, Subject: "alice", ClientID: "agent", Scope: "openid mcp:tools mcp:read",
			Audience: []string{resource}, ExpiresAt: now.Add(time.Minute), JWT: "h.p.s",
		}
	}
	for _, tc := range []struct {
		name   string
		change func(r *introspect.Result)
		loose  bool // allow_missing_audience
		want   verdict
	}{
		{"all checks pass", func(*introspect.Result) {}, false, allowed},
		{"inactive", func(r *introspect.Result) { r.Active = false }, false, invalidToken},
		{"no exp, no nbf", func(r *introspect.Result) { r.ExpiresAt = time.Time{} }, false, allowed},
		{"exp now", func(r *introspect.Result) { r.ExpiresAt = now }, false, invalidToken},
		{"exp at the Unix epoch", func(r *introspect.Result) { r.ExpiresAt = time.Unix(0, 0) }, false, invalidToken},
		{"exp before 1678", func(r *introspect.Result) { r.ExpiresAt = time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC) }, false, invalidToken},
		{"exp after 2262", func(r *introspect.Result) { r.ExpiresAt = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC) }, false, allowed},
		{"JWT exp earlier than the token's", func(r *introspect.Result) { r.JWTExpiresAt = now.Add(-time.Second) }, false, invalidToken},
		{"nbf in the future", func(r *introspect.Result) { r.NotBefore = now.Add(time.Second) }, false, invalidToken},
		{"nbf now", func(r *introspect.Result) { r.NotBefore = now }, false, allowed},
		{"nbf after 2262", func(r *introspect.Result) { r.NotBefore = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC) }, false, invalidToken},
		{"audience second of three", func(r *introspect.Result) { r.Audience = []string{"a", "HTTPS://MCP.example.com/mcp", "b"} }, false, allowed},
		{"audience other accepted value last", func(r *introspect.Result) { r.Audience = []string{"a", "b", "api://legacy"} }, false, allowed},
		{"audience wrong", func(r *introspect.Result) { r.Audience = []string{"https://mcp.example.com/other"} }, false, invalidToken},
		{"audience missing", func(r *introspect.Result) { r.Audience = nil }, false, invalidToken},
		{"audience missing, allowed", func(r *introspect.Result) { r.Audience = nil }, true, allowed},
		{"audience empty array, allowed", func(r *introspect.Result) { r.Audience = []string{} }, true, allowed},
		{"audience empty string is present and wrong", func(r *introspect.Result) { r.Audience = []string{""} }, true, invalidToken},
		{"scope separated by tabs", func(r *introspect.Result) { r.Scope = "mcp:read\tmcp:tools" }, false, allowed},
		{"scope missing one", func(r *introspect.Result) { r.Scope = "mcp:tools" }, false, insufficientScope},
		{"scope prefix is not the scope", func(r *introspect.Result) { r.Scope = "mcp:tools mcp:readonly" }, false, insufficientScope},
		{"scope suffix is not the scope", func(r *introspect.Result) { r.Scope = "xmcp:tools mcp:read" }, false, insufficientScope},
		{"scope empty", func(r *introspect.Result) { r.Scope = "" }, false, insufficientScope},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := good()
			tc.change(r)
			h.policy = newPolicy(policy{resource: resourceMatcher, allowMissingAudience: tc.loose, requiredScopes: [][]string{{"mcp:tools"}, {"mcp:read"}}})
			// Made under this route's policy (a hit reuses its
			// verdict) and under another route's (the claims are
			// checked again): both must decide alike.
			own, other := newEntry(r, h.policy, now), newEntry(r, newPolicy(policy{}), now)
			if got := h.authorize(&own, now); got != tc.want {
				t.Fatalf("authorize, entry of this route = %v, want %v", got, tc.want)
			}
			if got := h.authorize(&other, now); got != tc.want {
				t.Fatalf("authorize, entry of another route = %v, want %v", got, tc.want)
			}
		})
	}
}

// An entry one route accepted must still be refused by a route sharing the
// cache that requires more, and the other way round.
func TestVerdictIsNotCarriedAcrossRoutes(t *testing.T) {
	now := time.Now()
	lax := newPolicy(policy{})
	strict := newPolicy(policy{requiredScopes: [][]string{{"admin"}}, resource: newAudienceMatcher("https://mcp.example.com/mcp", nil)})
	r := &introspect.Result{Active: true, Scope: "read", Audience: []string{"https://other.example.com/"}, JWT: "h.p.s"}
	e := newEntry(r, lax, now)
	if e.checked != allowed {
		t.Fatalf("lax policy verdict = %v, want allowed", e.checked)
	}
	if got := (&Handler{policy: strict}).authorize(&e, now); got != invalidToken {
		t.Fatalf("strict route on the lax route's entry = %v, want invalidToken", got)
	}
	e = newEntry(r, strict, now)
	if got := (&Handler{policy: lax}).authorize(&e, now); got != allowed {
		t.Fatalf("lax route on the strict route's entry = %v, want allowed", got)
	}
}

// TestNewEntryFields checks the strings cut from the entry's one block and
// the placeholder values.
func TestNewEntryFields(t *testing.T) {
	e := newEntry(&introspect.Result{
		Active: true, ClientID: "agent", Scope: "a b", Audience: []string{"x", "y"}, JWT: "h.p.s",
	}, newPolicy(policy{}), time.Now())
	if e.header() != "Bearer h.p.s" || e.scope() != "a b" || e.audience() != "x" || len(e.extras.moreAudience) != 1 || e.extras.moreAudience[0] != "y" {
		t.Fatalf("entry = %+v", e)
	}
	// No sub: the user id placeholder falls back to client_id. Caddy
	// renders placeholder values with caddy.ToString.
	for name, got := range map[string]any{
		"user id": (*userIDPlaceholder)(e.extras), "client id": (*clientIDPlaceholder)(e.extras), "scope": (*scopePlaceholder)(e.extras),
	} {
		want := map[string]string{"user id": "agent", "client id": "agent", "scope": "a b"}[name]
		if s := caddy.ToString(got); s != want {
			t.Errorf("%s placeholder renders %q, want %q", name, s, want)
		}
	}
	if want := int64(len("a b") + len("x") + len("Bearer h.p.s") + 2*len("agent")); e.cost() < want {
		t.Fatalf("cost %d is below the %d bytes of strings it holds", e.cost(), want)
	}
}

// The cache keeps an entry inside its map slot only up to this size; a
// larger entry still works but costs every hit one more CPU cache miss.
func TestEntryFitsTheCacheSlot(t *testing.T) {
	if n := unsafe.Sizeof(entry{}); n > cache.InlineValueBytes {
		t.Fatalf("entry is %d bytes, more than cache.InlineValueBytes (%d)", n, cache.InlineValueBytes)
	}
}

// concat reports the heap's size class, not the length: 1,100 bytes take
// a 1,152-byte object on amd64 and arm64.
func TestConcatReportsTheSizeClass(t *testing.T) {
	s, n := concat("Bearer ", string(make([]byte, 1093)))
	if len(s) != 1100 || s[:7] != "Bearer " {
		t.Fatalf("concat = %d bytes starting %q", len(s), s[:7])
	}
	if n != 1152 {
		t.Fatalf("concat reports %d bytes for a 1,100-byte block, want the 1,152-byte size class", n)
	}
}

// leeway lets a token whose nbf is a little ahead of the gateway's clock
// through, and never extends exp.
func TestLeewayAppliesToNbfOnly(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	h := &Handler{policy: newPolicy(policy{}), leeway: int64(30 * time.Second)}
	for _, tc := range []struct {
		name     string
		nbf, exp time.Time
		want     verdict
	}{
		{"nbf within the leeway", now.Add(29 * time.Second), now.Add(time.Hour), allowed},
		{"nbf at the leeway", now.Add(30 * time.Second), now.Add(time.Hour), allowed},
		{"nbf beyond the leeway", now.Add(31 * time.Second), now.Add(time.Hour), invalidToken},
		{"exp just passed", time.Time{}, now.Add(-time.Nanosecond), invalidToken},
		{"exp now", time.Time{}, now, invalidToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEntry(&introspect.Result{Active: true, NotBefore: tc.nbf, ExpiresAt: tc.exp, JWT: "h.p.s"}, h.policy, now)
			if got := h.authorize(&e, now); got != tc.want {
				t.Fatalf("authorize = %v, want %v", got, tc.want)
			}
		})
	}
}

// fresh holds an entry to the reading handler's own windows, whoever
// stored it.
func TestFreshUsesTheReadersWindows(t *testing.T) {
	loaded := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	active := newEntry(&introspect.Result{Active: true, JWT: "h.p.s"}, newPolicy(policy{}), loaded)
	inactive := newEntry(&introspect.Result{}, newPolicy(policy{}), loaded)
	h := &Handler{maxTTL: time.Minute, negTTL: 5 * time.Second}
	for _, tc := range []struct {
		name string
		e    entry
		age  time.Duration
		want bool
	}{
		{"active, young", active, 59 * time.Second, true},
		{"active, at max_ttl", active, time.Minute, false},
		{"inactive, young", inactive, 4 * time.Second, true},
		{"inactive, at negative_ttl", inactive, 5 * time.Second, false},
	} {
		if got := h.fresh(&tc.e, loaded.Add(tc.age)); got != tc.want {
			t.Errorf("%s: fresh = %v, want %v", tc.name, got, tc.want)
		}
	}
	off := &Handler{}
	if off.fresh(&active, loaded) || off.fresh(&inactive, loaded) {
		t.Error("max_ttl 0 / negative_ttl 0 took a cached answer")
	}
}
