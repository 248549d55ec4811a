package caddymodule_test

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The tests in this file walk the response contract of DESIGN §5, one row
// at a time, through a real Caddy server, a stub AS and a recording
// upstream.

const (
	challengeNoCredentials = `Bearer scope="mcp:tools", resource_metadata="` + metadataURL + `"`
	challengeInvalidToken  = `Bearer error="invalid_token", error_description="the access token is not valid for this resource", resource_metadata="` + metadataURL + `"`
)

// Row: no Authorization, or another scheme → 401, challenge without error;
// the AS and the upstream are not called.
func TestContractNoCredentials(t *testing.T) {
	as, up := newStubAS(t), newRecorder(t)
	g := startCaddy(t, as, up, defaultSite)
	for _, tc := range []struct {
		name    string
		path    string
		headers []string
	}{
		{"no Authorization", "/mcp", nil},
		{"Basic scheme", "/mcp", []string{"Authorization", "Basic Z2F0ZXdheTpzM2NyZXQ="}},
		{"token only in the query string", "/mcp?access_token=opaque-in-query", nil},
		{"Mcp-Session-Id is no credential", "/mcp", []string{"Mcp-Session-Id", "session-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := g.do(t, http.MethodPost, tc.path, tc.headers...)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status = %d, want 401", resp.StatusCode)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != challengeNoCredentials {
				t.Errorf("WWW-Authenticate = %q, want %q", got, challengeNoCredentials)
			}
			if body != "" {
				t.Errorf("body = %q, want empty", body)
			}
		})
	}
	if n := as.calls.Load(); n != 0 {
		t.Errorf("AS calls = %d, want 0", n)
	}
	if n := up.count(); n != 0 {
		t.Errorf("upstream calls = %d, want 0", n)
	}
}

// Row: empty token, two Authorization headers, bad b64token → 400
// invalid_request; the AS and the upstream are not called.
func TestContractMalformedCredentials(t *testing.T) {
	as, up := newStubAS(t), newRecorder(t)
	g := startCaddy(t, as, up, defaultSite)
	for _, tc := range []struct {
		name    string
		headers []string
	}{
		{"empty token", []string{"Authorization", "Bearer"}},
		{"blank token", []string{"Authorization", "Bearer    "}},
		{"two Authorization headers", []string{"Authorization", "Bearer aaa", "Authorization", "Bearer bbb"}},
		{"space in token", []string{"Authorization", "Bearer a b"}},
		{"quoted token", []string{"Authorization", `Bearer "x"`}},
		{"bad characters", []string{"Authorization", "Bearer abc<def>"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := g.do(t, http.MethodGet, "/mcp", tc.headers...)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400", resp.StatusCode)
			}
			want := `Bearer error="invalid_request", error_description="malformed Authorization header", resource_metadata="` + metadataURL + `"`
			if got := resp.Header.Get("WWW-Authenticate"); got != want {
				t.Errorf("WWW-Authenticate = %q, want %q", got, want)
			}
		})
	}
	if n := as.calls.Load(); n != 0 {
		t.Errorf("AS calls = %d, want 0", n)
	}
	if n := up.count(); n != 0 {
		t.Errorf("upstream calls = %d, want 0", n)
	}
}

// Row: inactive, expired, not yet valid, wrong/missing audience → 401
// invalid_token; the AS is asked (then the answer may be cached); the
// upstream is not called.
func TestContractInvalidToken(t *testing.T) {
	as, up := newStubAS(t), newRecorder(t)
	g := startCaddy(t, as, up, defaultSite)
	as.status("inactive-token", http.StatusNoContent)
	as.active(t, "expired-token", map[string]any{"exp": time.Now().Add(-time.Minute).Unix()})
	as.active(t, "future-token", map[string]any{"nbf": time.Now().Add(time.Hour).Unix()})
	as.active(t, "wrong-aud-token", map[string]any{"aud": []string{"https://other.example.com/mcp"}})
	as.active(t, "no-aud-token", map[string]any{"aud": nil})
	for _, tc := range []struct {
		name, token string
		asCalls     int64 // after two requests
	}{
		{"inactive (cached negative)", "inactive-token", 1},
		{"expired (cached negative, like inactive)", "expired-token", 1},
		{"not yet valid", "future-token", 1},
		{"wrong audience", "wrong-aud-token", 1},
		{"missing audience", "no-aud-token", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			as.reset()
			for i := 0; i < 2; i++ {
				resp, _ := g.do(t, http.MethodPost, "/mcp", "Authorization", "Bearer "+tc.token)
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("request %d: status = %d, want 401", i, resp.StatusCode)
				}
				if got := resp.Header.Get("WWW-Authenticate"); got != challengeInvalidToken {
					t.Errorf("WWW-Authenticate = %q, want %q", got, challengeInvalidToken)
				}
			}
			if n := as.calls.Load(); n != tc.asCalls {
				t.Errorf("AS calls = %d, want %d", n, tc.asCalls)
			}
		})
	}
	if n := up.count(); n != 0 {
		t.Errorf("upstream calls = %d, want 0", n)
	}
}

// Row: active but lacks a required scope → 403 insufficient_scope with the
// scope needed; the upstream is not called.
func TestContractInsufficientScope(t *testing.T) {
	as, up := newStubAS(t), newRecorder(t)
	g := startCaddy(t, as, up, defaultSite)
	as.active(t, "read-only-token", map[string]any{"scope": "mcp:read openid"})
	resp, _ := g.do(t, http.MethodPost, "/mcp", "Authorization", "Bearer read-only-token")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status = %d, want 403", resp.StatusCode)
	}
	want := `Bearer error="insufficient_scope", scope="mcp:tools", resource_metadata="` + metadataURL + `"`
	if got := resp.Header.Get("WWW-Authenticate"); got != want {
		t.Errorf("WWW-Authenticate = %q, want %q", got, want)
	}
	if n := as.calls.Load(); n != 1 {
		t.Errorf("AS calls = %d, want 1", n)
	}
	if n := up.count(); n != 0 {
		t.Errorf("upstream calls = %d, want 0", n)
	}
}

// Row: AS unreachable, timed out, or 503 → 503 with Retry-After and no
// challenge; nothing is cached, so the next request asks the AS again.
func TestContractASUnavailable(t *testing.T) {
	t.Run("AS answers 503", func(t *testing.T) {
		as, up := newStubAS(t), newRecorder(t)
		g := startCaddy(t, as, up, defaultSite)
		as.on("busy-token", func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusServiceUnavailable)
		})
		for i := 1; i <= 2; i++ {
			resp, _ := g.do(t, http.MethodGet, "/mcp", "Authorization", "Bearer busy-token")
			assertUnavailable(t, resp, "7")
			if n := as.calls.Load(); n != int64(i) {
				t.Fatalf("after request %d: AS calls = %d, want %d (errors must not be cached)", i, n, i)
			}
		}
		// The AS recovers: the very next request succeeds.
		as.active(t, "busy-token", nil)
		resp, _ := g.do(t, http.MethodGet, "/mcp", "Authorization", "Bearer busy-token")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("after recovery: status = %d, want 200", resp.StatusCode)
		}
		if up.count() != 1 {
			t.Errorf("upstream calls = %d, want 1", up.count())
		}
	})
	t.Run("AS times out", func(t *testing.T) {
		as, up := newStubAS(t), newRecorder(t)
		g := startCaddy(t, as, up, defaultSite)
		as.active(t, "slow-token", nil)
		as.mu.Lock()
		as.delay = 1500 * time.Millisecond // the gateway's timeout is 1s
		as.mu.Unlock()
		resp, _ := g.do(t, http.MethodGet, "/mcp", "Authorization", "Bearer slow-token")
		assertUnavailable(t, resp, "")
		if up.count() != 0 {
			t.Errorf("upstream calls = %d, want 0", up.count())
		}
	})
	t.Run("AS unreachable", func(t *testing.T) {
		as, up := newStubAS(t), newRecorder(t)
		g := startCaddy(t, as, up, defaultSite)
		as.active(t, "valid-token", nil)
		// Point the gateway at a port where nothing listens.
		dead := freePort(t)
		loadCaddy(t, g, as, up, strings.ReplaceAll(defaultSite, "{AS}/introspect", "http://"+dead+"/introspect"))
		resp, _ := g.do(t, http.MethodGet, "/mcp", "Authorization", "Bearer valid-token")
		assertUnavailable(t, resp, "")
		// The AS comes back: the next request asks it again and succeeds.
		l, err := net.Listen("tcp", dead)
		if err != nil {
			t.Fatalf("cannot re-bind %s: %v", dead, err)
		}
		srv := &http.Server{Handler: as.srv.Config.Handler}
		go func() { _ = srv.Serve(l) }()
		defer srv.Close()
		resp, _ = g.do(t, http.MethodGet, "/mcp", "Authorization", "Bearer valid-token")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("after the AS came back: status = %d, want 200", resp.StatusCode)
		}
		if n := as.calls.Load(); n != 1 {
			t.Errorf("AS calls = %d, want 1", n)
		}
	})
}

func assertUnavailable(t *testing.T, resp *http.Response, retryAfter string) {
	t.Helper()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503", resp.StatusCode)
	}
	got := resp.Header.Get("Retry-After")
	if got == "" || (retryAfter != "" && got != retryAfter) {
		t.Errorf("Retry-After = %q, want %q", got, retryAfter)
	}
	if c := resp.Header.Get("WWW-Authenticate"); c != "" {
		t.Errorf("WWW-Authenticate = %q, want none", c)
	}
}

// Row: AS 4xx/5xx to the gateway's own credentials, malformed AS reply →
// 502, no challenge, no AS text in the body; nothing cached.
func TestContractASFault(t *testing.T) {
	as, up := newStubAS(t), newRecorder(t)
	g := startCaddy(t, as, up, defaultSite)
	as.on("not-a-jws", func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/jwt")
		_, _ = w.Write([]byte("this is not a JWS"))
	})
	as.on("wrong-type", func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html>login</html>"))
	})
	as.status("as-500", http.StatusInternalServerError)
	as.on("bad-signature", func(w http.ResponseWriter) {
		jwt := as.sign(t, map[string]any{"sub": "x", "aud": resource, "scope": "mcp:tools", "exp": time.Now().Add(time.Hour).Unix()})
		parts := strings.Split(jwt, ".")
		parts[2] = strings.Repeat("A", len(parts[2]))
		w.Header().Set("Content-Type", "application/jwt")
		_, _ = w.Write([]byte(strings.Join(parts, ".")))
	})
	for _, token := range []string{"not-a-jws", "wrong-type", "as-500", "bad-signature"} {
		t.Run(token, func(t *testing.T) {
			as.reset()
			for i := 0; i < 2; i++ {
				resp, body := g.do(t, http.MethodGet, "/mcp", "Authorization", "Bearer "+token)
				if resp.StatusCode != http.StatusBadGateway {
					t.Fatalf("status = %d, want 502", resp.StatusCode)
				}
				if c := resp.Header.Get("WWW-Authenticate"); c != "" {
					t.Errorf("WWW-Authenticate = %q, want none", c)
				}
				if strings.Contains(body, "login") || strings.Contains(body, token) {
					t.Errorf("body leaks AS text or the token: %q", body)
				}
			}
			if n := as.calls.Load(); n != 2 {
				t.Errorf("AS calls = %d, want 2 (AS errors are never cached)", n)
			}
		})
	}
	t.Run("AS refuses the gateway's credentials", func(t *testing.T) {
		as.reset()
		as.active(t, "good-token", nil)
		loadCaddy(t, g, as, up, strings.ReplaceAll(defaultSite, "client_secret s3cret", "client_secret wrong"))
		resp, body := g.do(t, http.MethodGet, "/mcp", "Authorization", "Bearer good-token")
		if resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("status = %d, want 502 (a gateway fault, not invalid_token)", resp.StatusCode)
		}
		if strings.Contains(body, "AS-SECRET-TEXT") || resp.Header.Get("WWW-Authenticate") != "" {
			t.Errorf("AS error text or a challenge reached the client: %q %q", body, resp.Header.Get("WWW-Authenticate"))
		}
	})
	if up.count() != 0 {
		t.Errorf("upstream calls = %d, want 0", up.count())
	}
}

// Row: valid → the upstream's status, the upstream sees Bearer <JWT>, the
// AS is asked once per TTL.
func TestContractValid(t *testing.T) {
	as, up := newStubAS(t), newRecorder(t)
	g := startCaddy(t, as, up, defaultSite)
	jwt := as.active(t, "good-token", nil)
	up.mu.Lock()
	up.status = http.StatusTeapot
	up.mu.Unlock()
	for i := 0; i < 5; i++ {
		resp, body := g.do(t, http.MethodPost, "/mcp", "Authorization", "Bearer good-token")
		if resp.StatusCode != http.StatusTeapot || body != "upstream body" {
			t.Fatalf("request %d: got %d %q, want the upstream's 418", i, resp.StatusCode, body)
		}
		if got := up.last(t).Header.Get("Authorization"); got != "Bearer "+jwt {
			t.Fatalf("upstream Authorization = %.40q…, want the AS's JWT", got)
		}
	}
	if n := as.calls.Load(); n != 1 {
		t.Errorf("AS calls = %d, want 1 for 5 requests within the TTL", n)
	}
	if n := up.count(); n != 5 {
		t.Errorf("upstream calls = %d, want 5", n)
	}
}
