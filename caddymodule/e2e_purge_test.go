package caddymodule_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/phantomgate/caddy-phantom-token/cache/redisstore/redistest"
)

// purgeSite is a route with a long max_ttl, so that only a purge can cut a
// cached token off; {REDIS} is replaced by a redis block or nothing.
const purgeSite = `
	phantom_token {
		introspection_endpoint {AS}/introspect
		client_id gateway
		client_secret s3cret
		as_jwks_uri {AS}/jwks
		resource ` + resource + `
		authorization_server {AS}
		cache {
			max_ttl 10m
			negative_ttl 0
{REDIS}
		}
		timeout 2s
	}
	reverse_proxy {UPSTREAM}
`

// startWithAdmin runs the site in-process with Caddy's admin endpoint on a
// free port, and returns the gateway and the admin's URL.
func startWithAdmin(t *testing.T, as *stubAS, up *recorder, site string) (*gateway, string) {
	t.Helper()
	g := &gateway{addr: freePort(t)}
	g.url = "http://" + g.addr
	admin := freePort(t)
	cfgJSON := adaptCaddyfile(t, siteConfig(admin, g.addr, as.srv.URL, up.srv.URL, site))
	debugLog.loads.Add(1)
	if err := caddy.Load(cfgJSON, true); err != nil {
		t.Fatalf("loading the config: %v", err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	return g, "http://" + admin
}

// postPurge posts a purge body to the admin API.
func postPurge(t *testing.T, admin, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, admin+"/phantom_token/purge", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var ans map[string]any
	_ = json.Unmarshal(b, &ans)
	if strings.Contains(string(b), "purge-tok") {
		t.Errorf("the purge answer shows the token: %s", b)
	}
	return resp.StatusCode, ans
}

// A purge on a node without Redis refuses at once, on the purging node,
// exactly the tokens it names.
func TestPurgeLocal(t *testing.T) {
	as, up := newStubAS(t), newRecorder(t)
	g, admin := startWithAdmin(t, as, up, strings.Replace(purgeSite, "{REDIS}", "", 1))
	for _, tok := range []string{"purge-tok-a1", "purge-tok-a2", "purge-tok-b1", "purge-tok-c1"} {
		claims := map[string]any{"sub": "alice"}
		switch tok {
		case "purge-tok-b1":
			claims = map[string]any{"sub": "bob", "client_id": "other-agent"}
		case "purge-tok-c1":
			claims = map[string]any{"sub": "carol", "client_id": "bad-agent"}
		}
		as.active(t, tok, claims)
		expectStatus(t, g, "/x", tok, 200)
	}
	calls := as.calls.Load()

	status, ans := postPurge(t, admin, `{"subject":"alice"}`)
	if status != 200 || ans["purged"] != "subject" || ans["fleet"] != "none" {
		t.Fatalf("purge subject: %d %v", status, ans)
	}
	// Revoked at the AS too, as after a real logout: the purge makes the
	// gateway ask, and the AS says no.
	as.status("purge-tok-a1", http.StatusNoContent)
	as.status("purge-tok-a2", http.StatusNoContent)
	expectStatus(t, g, "/x", "purge-tok-a1", 401)
	expectStatus(t, g, "/x", "purge-tok-a2", 401)
	expectStatus(t, g, "/x", "purge-tok-b1", 200) // another subject: still cached
	if n := as.calls.Load() - calls; n != 2 {
		t.Fatalf("AS calls after the subject purge = %d, want 2 (alice's tokens only)", n)
	}

	calls = as.calls.Load()
	if status, ans := postPurge(t, admin, `{"client_id":"bad-agent"}`); status != 200 || ans["purged"] != "client_id" {
		t.Fatalf("purge client: %d %v", status, ans)
	}
	expectStatus(t, g, "/x", "purge-tok-c1", 200) // the AS still says active: asked again
	expectStatus(t, g, "/x", "purge-tok-b1", 200)
	if n := as.calls.Load() - calls; n != 1 {
		t.Fatalf("AS calls after the client purge = %d, want 1", n)
	}
	// Re-introspected after the purge, the entry is cached again.
	calls = as.calls.Load()
	expectStatus(t, g, "/x", "purge-tok-c1", 200)
	if n := as.calls.Load() - calls; n != 0 {
		t.Fatalf("the entry made after the purge was not cached (%d AS calls)", n)
	}

	calls = as.calls.Load()
	if status, ans := postPurge(t, admin, `{"token":"purge-tok-b1"}`); status != 200 || ans["purged"] != "token" {
		t.Fatalf("purge token: %d %v", status, ans)
	}
	expectStatus(t, g, "/x", "purge-tok-b1", 200)
	if n := as.calls.Load() - calls; n != 1 {
		t.Fatalf("AS calls after the token purge = %d, want 1", n)
	}
	if status, _ := postPurge(t, admin, `{"token":"purge-tok-never-seen"}`); status != 200 {
		t.Fatalf("purge of an uncached token: %d, want 200", status)
	}
	if status, _ := postPurge(t, admin, `{"subject":""}`); status != 400 {
		t.Fatalf("purge with an empty subject: %d, want 400", status)
	}
	calls = as.calls.Load()
	if status, ans := postPurge(t, admin, `{"all":true}`); status != 200 || ans["purged"] != "all" {
		t.Fatalf("purge all: %d %v", status, ans)
	}
	expectStatus(t, g, "/x", "purge-tok-b1", 200)
	expectStatus(t, g, "/x", "purge-tok-c1", 200)
	if n := as.calls.Load() - calls; n != 2 {
		t.Fatalf("AS calls after purging all = %d, want 2", n)
	}
}

// With Redis unreachable a purge still happens on this node, and the
// answer says the fleet was not reached.
func TestPurgeWithRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	as, up := newStubAS(t), newRecorder(t)
	site := strings.Replace(purgeSite, "{REDIS}", "redis {\n address "+srv.Addr+"\n secret fleet-secret\n timeout 200ms\n }", 1)
	g, admin := startWithAdmin(t, as, up, site)
	as.active(t, "purge-tok-down", map[string]any{"sub": "dave"})
	expectStatus(t, g, "/x", "purge-tok-down", 200)
	srv.Kill()
	calls := as.calls.Load()
	status, ans := postPurge(t, admin, `{"subject":"dave"}`)
	if status != http.StatusBadGateway || ans["fleet"] != "not reached" || ans["error"] == nil {
		t.Fatalf("purge with Redis down: %d %v, want 502 naming the failure", status, ans)
	}
	expectStatus(t, g, "/x", "purge-tok-down", 200) // asked the AS again: purged locally
	if n := as.calls.Load() - calls; n != 1 {
		t.Fatalf("AS calls after the local purge = %d, want 1", n)
	}
	// And requests keep working with Redis down: a cached token from L1.
	calls = as.calls.Load()
	for range 5 {
		expectStatus(t, g, "/x", "purge-tok-down", 200)
	}
	if n := as.calls.Load() - calls; n != 0 {
		t.Fatalf("AS calls for a cached token with Redis down = %d", n)
	}
}
