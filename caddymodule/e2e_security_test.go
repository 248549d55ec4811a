package caddymodule_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// The opaque token appears nowhere in what goes upstream: not in the
// headers, the URL or the body — even when the client also puts it in the
// query string.
func TestOpaqueTokenNeverReachesUpstream(t *testing.T) {
	as, up := newStubAS(t), newRecorder(t)
	g := startCaddy(t, as, up, defaultSite)
	const opaque = "opaque-Zx9.secret~value"
	jwt := as.active(t, opaque, nil)
	resp, _ := g.do(t, http.MethodGet, "/mcp?x=1&access_token="+opaque+"&y=2",
		"Authorization", "bearer   "+opaque,
		"X-Forwarded-Authorization", "something")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200", resp.StatusCode)
	}
	last := up.last(t)
	if got := last.Header.Values("Authorization"); len(got) != 1 || got[0] != "Bearer "+jwt {
		t.Errorf("upstream Authorization = %q, want exactly the JWT", got)
	}
	if q := last.URL.Query(); q.Has("access_token") || q.Get("x") != "1" || q.Get("y") != "2" {
		t.Errorf("upstream query = %q, want x and y kept and access_token dropped", last.URL.RawQuery)
	}
	if dump := up.dump(); strings.Contains(dump, opaque) {
		t.Errorf("the opaque token reached the upstream:\n%s", dump)
	}
}

// The AS request is built from scratch: no client header reaches the AS
// (only traceparent is propagated), the token is form-encoded, and no AS
// header reaches the upstream or the client.
func TestIntrospectionRequestHygiene(t *testing.T) {
	as, up := newStubAS(t), newRecorder(t)
	g := startCaddy(t, as, up, defaultSite)
	const opaque = "tok+with/special=="
	as.active(t, opaque, nil, "Set-Cookie", "as_session=1")
	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	resp, _ := g.do(t, http.MethodGet, "/mcp",
		"Authorization", "Bearer "+opaque,
		"Cookie", "client_cookie=1",
		"X-Client-Secret-Header", "client-only",
		"Traceparent", traceparent)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200", resp.StatusCode)
	}
	seen := as.lastHeaders(t)
	for _, h := range []string{"Cookie", "X-Client-Secret-Header", "X-Forwarded-For"} {
		if seen.Get(h) != "" {
			t.Errorf("client header %s reached the AS: %q", h, seen.Get(h))
		}
	}
	if got := seen.Get("Traceparent"); got != traceparent {
		t.Errorf("AS traceparent = %q, want %q", got, traceparent)
	}
	if ct := seen.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		t.Errorf("AS Content-Type = %q", ct)
	}
	if acc := seen.Get("Accept"); acc != "application/jwt" {
		t.Errorf("AS Accept = %q, want application/jwt", acc)
	}
	as.mu.Lock()
	form := as.forms[len(as.forms)-1]
	as.mu.Unlock()
	if formValue(form, "token") != opaque || strings.Contains(form, opaque) {
		t.Errorf("token not form-encoded in %q", form)
	}
	last := up.last(t)
	if last.Header.Get("X-As-Internal") != "" || last.Header.Get("Set-Cookie") != "" {
		t.Error("an AS response header reached the upstream")
	}
	if resp.Header.Get("X-As-Internal") != "" || resp.Header.Get("Set-Cookie") != "" {
		t.Error("an AS response header reached the client")
	}
}

// A ~6 KB JWT and 44 request headers pass through intact.
func TestLargeJWTAndManyHeadersPassIntact(t *testing.T) {
	as, up := newStubAS(t), newRecorder(t)
	g := startCaddy(t, as, up, defaultSite)
	jwt := as.active(t, "big-token", map[string]any{"groups": strings.Repeat("group-name,", 400)})
	if len(jwt) < 5500 {
		t.Fatalf("test JWT is only %d bytes", len(jwt))
	}
	headers := []string{"Authorization", "Bearer big-token"}
	for i := 0; i < 43; i++ {
		headers = append(headers, fmt.Sprintf("X-Custom-%02d", i), fmt.Sprintf("value-%02d-%s", i, strings.Repeat("v", 40)))
	}
	resp, _ := g.do(t, http.MethodGet, "/mcp", headers...)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200", resp.StatusCode)
	}
	last := up.last(t)
	if got := last.Header.Get("Authorization"); got != "Bearer "+jwt {
		t.Errorf("the %d-byte JWT was altered on the way (got %d bytes)", len(jwt), len(got))
	}
	for i := 2; i < len(headers); i += 2 {
		if got := last.Header.Get(headers[i]); got != headers[i+1] {
			t.Errorf("%s = %q, want %q", headers[i], got, headers[i+1])
		}
	}
}

// Identity the upstream trusts comes from the token, never the client: an
// operator who maps {http.auth.user.id} into a header gets the token's
// subject even when the client forged that header, and a client-supplied
// JWT in Authorization is introspected as an opaque token, never forwarded.
func TestForgedIdentityHeadersStripped(t *testing.T) {
	as, up := newStubAS(t), newRecorder(t)
	site := strings.Replace(defaultSite, "reverse_proxy {UPSTREAM}", `reverse_proxy {UPSTREAM} {
		header_up X-Auth-User-Id {http.auth.user.id}
		header_up X-Auth-Client-Id {http.auth.user.client_id}
		header_up X-Auth-Scope {http.auth.user.scope}
	}`, 1)
	g := startCaddy(t, as, up, site)
	jwt := as.active(t, "alice-token", map[string]any{"sub": "alice", "client_id": "agent-7", "scope": "mcp:tools"})
	resp, _ := g.do(t, http.MethodGet, "/mcp",
		"Authorization", "Bearer alice-token",
		"X-Auth-User-Id", "admin",
		"X-Auth-Client-Id", "root-client",
		"X-Auth-Scope", "admin:all")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200", resp.StatusCode)
	}
	last := up.last(t)
	for h, want := range map[string]string{"X-Auth-User-Id": "alice", "X-Auth-Client-Id": "agent-7", "X-Auth-Scope": "mcp:tools"} {
		if got := last.Header.Values(h); len(got) != 1 || got[0] != want {
			t.Errorf("upstream %s = %q, want only %q", h, got, want)
		}
	}
	if last.Header.Get("Authorization") != "Bearer "+jwt {
		t.Error("upstream did not get the AS's JWT")
	}

	// A forged JWT sent as the bearer token is just an unknown opaque token.
	forged := as.sign(t, map[string]any{"sub": "admin", "aud": resource, "scope": "mcp:tools"})
	resp, _ = g.do(t, http.MethodGet, "/mcp", "Authorization", "Bearer "+forged)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged JWT: status = %d, want 401", resp.StatusCode)
	}
	if up.count() != 1 {
		t.Errorf("upstream calls = %d, want 1", up.count())
	}
}

// A CORS preflight without Authorization reaches the next handler untouched.
func TestPreflightPassesThrough(t *testing.T) {
	as, up := newStubAS(t), newRecorder(t)
	g := startCaddy(t, as, up, defaultSite)
	resp, _ := g.do(t, http.MethodOptions, "/mcp", "Origin", "http://localhost:6274", "Access-Control-Request-Method", "POST")
	if resp.StatusCode != http.StatusOK || up.count() != 1 || up.last(t).Method != http.MethodOptions {
		t.Fatalf("preflight: status %d, upstream calls %d; want it passed upstream", resp.StatusCode, up.count())
	}
	if as.calls.Load() != 0 {
		t.Errorf("AS calls = %d, want 0", as.calls.Load())
	}
}

// Concurrent misses for one token make exactly one AS call.
func TestConcurrentMissesOneIntrospection(t *testing.T) {
	as, up := newStubAS(t), newRecorder(t)
	g := startCaddy(t, as, up, defaultSite)
	as.active(t, "hot-token", nil)
	as.mu.Lock()
	as.delay = 200e6 // 200ms: every request arrives while the first is in flight
	as.mu.Unlock()
	var wg sync.WaitGroup
	codes := make(chan int, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, g.url+"/mcp", nil)
			req.Header.Set("Authorization", "Bearer hot-token")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusOK {
			t.Fatalf("a request got %d, want 200", c)
		}
	}
	if n := as.calls.Load(); n != 1 {
		t.Errorf("AS calls = %d, want 1 for 50 concurrent requests", n)
	}
}
