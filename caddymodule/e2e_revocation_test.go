package caddymodule_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// The tests in this file pin the revocation window to the route that
// reads a cached answer, not to the route (or the config before a reload)
// that stored it: routes with the same endpoint, client and resource
// share one cache.

// revocationSite has two routes sharing a cache identity: /a caches for 5
// minutes, /b takes its answers from the AS every time (max_ttl 0) and
// caches inactive answers for no time (negative_ttl 0).
const revocationSite = `
	handle /a/* {
		phantom_token {
			introspection_endpoint {AS}/introspect
			client_id gateway
			client_secret s3cret
			resource ` + resource + `
			authorization_server {AS}
			cache {
				max_ttl 5m
				negative_ttl 5m
			}
		}
		reverse_proxy {UPSTREAM}
	}
	handle /b/* {
		phantom_token {
			introspection_endpoint {AS}/introspect
			client_id gateway
			client_secret s3cret
			resource ` + resource + `
			authorization_server {AS}
			cache {
				max_ttl 0
				negative_ttl 0
			}
		}
		reverse_proxy {UPSTREAM}
	}
`

func expectStatus(t *testing.T, g *gateway, path, token string, want int) {
	t.Helper()
	if resp, _ := g.do(t, http.MethodGet, path, "Authorization", "Bearer "+token); resp.StatusCode != want {
		t.Fatalf("GET %s: status = %d, want %d", path, resp.StatusCode, want)
	}
}

// Defect 1 of issue 9: /b answered 200 from /a's cached entry after the AS
// had revoked the token.
func TestRevocationWindowIsTheReadingRoutes(t *testing.T) {
	as, up := newStubAS(t), newRecorder(t)
	g := startCaddy(t, as, up, revocationSite)
	as.active(t, "shared-token", nil)
	expectStatus(t, g, "/a/x", "shared-token", 200)
	expectStatus(t, g, "/a/x", "shared-token", 200)
	if n := as.calls.Load(); n != 1 {
		t.Fatalf("AS calls = %d after a miss and a hit on /a, want 1", n)
	}

	as.status("shared-token", http.StatusNoContent) // revoked at the AS
	expectStatus(t, g, "/b/x", "shared-token", 401)
	if n := as.calls.Load(); n != 2 {
		t.Fatalf("AS calls = %d: /b (max_ttl 0) did not ask the AS", n)
	}
	// /b's newer answer could not be stored (negative_ttl 0), so it
	// removed /a's stale entry: /a asks again and learns of the
	// revocation too.
	expectStatus(t, g, "/a/x", "shared-token", 401)
	if n := as.calls.Load(); n != 3 {
		t.Fatalf("AS calls = %d, want /a to ask the AS after /b's newer answer", n)
	}
	// /a caches the inactive answer for its negative_ttl; /b does not use it.
	expectStatus(t, g, "/a/x", "shared-token", 401)
	if n := as.calls.Load(); n != 3 {
		t.Fatalf("AS calls = %d, want /a's negative entry used", n)
	}
	as.active(t, "shared-token", nil) // reinstated at the AS
	expectStatus(t, g, "/b/x", "shared-token", 200)
	if n := as.calls.Load(); n != 4 {
		t.Fatalf("AS calls = %d: /b (negative_ttl 0) used /a's negative entry", n)
	}
}

// Lowering max_ttl by a reload (the natural incident response) applies at
// once to entries the old config stored, without dropping the cache.
func TestReloadLoweringMaxTTLAppliesToCachedEntries(t *testing.T) {
	as, up := newStubAS(t), newRecorder(t)
	site := func(maxTTL, negTTL string) string {
		return strings.NewReplacer("max_ttl 1m", "max_ttl "+maxTTL, "negative_ttl 30s", "negative_ttl "+negTTL).Replace(defaultSite)
	}
	g := startCaddy(t, as, up, site("1h", "1h"))
	as.active(t, "long-token", nil)
	as.status("unknown-token", http.StatusNoContent)
	expectStatus(t, g, "/mcp", "long-token", 200)
	expectStatus(t, g, "/mcp", "unknown-token", 401)
	as.active(t, "unknown-token", nil) // the AS now knows it
	as.status("long-token", http.StatusNoContent)

	loadCaddy(t, g, as, up, site("1h", "1h"))
	expectStatus(t, g, "/mcp", "long-token", 200) // cache kept across the reload
	expectStatus(t, g, "/mcp", "unknown-token", 401)
	if n := as.calls.Load(); n != 2 {
		t.Fatalf("AS calls = %d after a reload with the same settings, want the cache kept (2)", n)
	}

	loadCaddy(t, g, as, up, site("200ms", "200ms"))
	time.Sleep(300 * time.Millisecond) // older than the new windows
	expectStatus(t, g, "/mcp", "long-token", 401)
	expectStatus(t, g, "/mcp", "unknown-token", 200)
	if n := as.calls.Load(); n != 4 {
		t.Fatalf("AS calls = %d, want both tokens asked again under the lowered windows", n)
	}
}
