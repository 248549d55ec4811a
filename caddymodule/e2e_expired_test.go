package caddymodule_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A token the AS still calls active but whose exp has passed by the
// gateway's clock (skew, or the last second of its life) is an expired
// token: 401 invalid_token, cached like an inactive answer, never a 502.
// Defect 4 of issue 9: sign and token exchange answered 502.
func TestActiveButExpiredTokenIsInvalid(t *testing.T) {
	for _, tc := range []struct {
		name   string
		source string
	}{
		{"sign", `		introspection_format json
		sign {
			issuer https://gw.example.com
			ephemeral_key
		}
`},
		{"token_exchange", `		introspection_format json
		token_exchange {
			endpoint {AS}/token
		}
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			as, up := newStubAS(t), newRecorder(t)
			var exchanges atomic.Int32
			as.mu.Lock()
			as.exchange = func(w http.ResponseWriter, form url.Values) {
				exchanges.Add(1)
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "x.y.z", "issued_token_type": "urn:ietf:params:oauth:token-type:jwt", "token_type": "Bearer"})
			}
			as.mu.Unlock()
			g := startCaddy(t, as, up, strings.Replace(defaultSite, "\t\tas_jwks_uri {AS}/jwks\n", tc.source, 1))
			for name, exp := range map[string]time.Time{
				"long-expired": time.Now().Add(-time.Hour),
				"just-expired": time.Now().Add(-time.Second),
			} {
				as.json(name, fmt.Sprintf(`{"active":true,"client_id":"agent","scope":"mcp:tools","aud":%q,"exp":%d}`, resource, exp.Unix()))
				for i := range 2 {
					resp, _ := g.do(t, http.MethodGet, "/mcp", "Authorization", "Bearer "+name)
					if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
						t.Fatalf("%s, request %d: %d %q; want 401 invalid_token", name, i+1, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
					}
				}
			}
			if n := as.calls.Load(); n != 2 {
				t.Errorf("AS calls = %d for two tokens asked twice each, want 2 (the expired answer negatively cached)", n)
			}
			if n := exchanges.Load(); n != 0 {
				t.Errorf("token exchanges = %d for expired tokens, want 0", n)
			}
			if up.count() != 0 {
				t.Errorf("upstream calls = %d, want 0", up.count())
			}
		})
	}
}

// timeout bounds a whole miss: an introspection and a token exchange that
// each fit within it but not together fail as a timed-out AS (503), not
// after twice the timeout.
func TestTimeoutBoundsTheWholeMiss(t *testing.T) {
	as, up := newStubAS(t), newRecorder(t)
	as.mu.Lock()
	as.delay = 600 * time.Millisecond
	as.exchange = func(w http.ResponseWriter, form url.Values) {
		time.Sleep(600 * time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "x.y.z", "issued_token_type": "urn:ietf:params:oauth:token-type:jwt", "token_type": "Bearer"})
	}
	as.mu.Unlock()
	g := startCaddy(t, as, up, strings.Replace(defaultSite, "\t\tas_jwks_uri {AS}/jwks\n", "\t\tintrospection_format json\n\t\ttoken_exchange {\n\t\t\tendpoint {AS}/token\n\t\t}\n", 1))
	as.json("slow-token", fmt.Sprintf(`{"active":true,"client_id":"agent","scope":"mcp:tools","aud":%q,"exp":%d}`, resource, time.Now().Add(time.Hour).Unix()))
	start := time.Now()
	resp, _ := g.do(t, http.MethodGet, "/mcp", "Authorization", "Bearer slow-token")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503: the miss outlived the 1s timeout", resp.StatusCode)
	}
	if elapsed := time.Since(start); elapsed > 1100*time.Millisecond+time.Second {
		t.Errorf("the miss took %s with timeout 1s", elapsed)
	}
	if up.count() != 0 {
		t.Errorf("upstream calls = %d, want 0", up.count())
	}
}
