package caddymodule_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// With an AS that only answers RFC 7662 JSON, the gateway signs the JWT
// itself (RFC 9068) and serves the public keys; the upstream verifies the
// JWT against them.
func TestGatewaySignedJWT(t *testing.T) {
	as, up := newStubAS(t), newRecorder(t)
	site := strings.Replace(defaultSite, "\t\tas_jwks_uri {AS}/jwks\n", `		introspection_format json
		sign {
			issuer https://gw.example.com
			ephemeral_key
			lifetime 2m
		}
`, 1)
	g := startCaddy(t, as, up, site)
	tokenExp := time.Now().Add(90 * time.Second).Unix()
	as.json("json-token", fmt.Sprintf(`{"active":true,"client_id":"agent","scope":"mcp:tools","aud":[%q],"exp":%d}`, resource, tokenExp))

	resp, _ := g.do(t, http.MethodGet, "/mcp", "Authorization", "Bearer json-token")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200", resp.StatusCode)
	}
	signed := strings.TrimPrefix(up.last(t).Header.Get("Authorization"), "Bearer ")

	keysResp, keys := g.do(t, http.MethodGet, "/.well-known/jwks.json")
	if keysResp.StatusCode != http.StatusOK || keysResp.Header.Get("Content-Type") != "application/jwk-set+json" {
		t.Fatalf("JWKS: %d %q", keysResp.StatusCode, keysResp.Header.Get("Content-Type"))
	}
	set, err := jwk.Parse([]byte(keys))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Parse([]byte(signed), jwt.WithKeySet(set), jwt.WithIssuer("https://gw.example.com"), jwt.WithAudience(resource))
	if err != nil {
		t.Fatalf("the forwarded JWT does not verify against the gateway's JWKS: %v", err)
	}
	if tok.Subject() != "agent" || tok.Expiration().Unix() != tokenExp {
		t.Errorf("sub %q exp %v; want the client id and the opaque token's exp", tok.Subject(), tok.Expiration())
	}
	msg, _ := jws.Parse([]byte(signed))
	if typ := msg.Signatures()[0].ProtectedHeaders().Type(); typ != "at+jwt" {
		t.Errorf("typ = %q", typ)
	}
	if strings.Contains(keys, `"d"`) {
		t.Error("the JWKS publishes private key material")
	}
	// A second request reuses the signed JWT from the cache.
	g.do(t, http.MethodGet, "/mcp", "Authorization", "Bearer json-token")
	if got := strings.TrimPrefix(up.last(t).Header.Get("Authorization"), "Bearer "); got != signed || as.calls.Load() != 1 {
		t.Errorf("second request: new JWT %v, AS calls %d; want the cached one and 1 call", got != signed, as.calls.Load())
	}
}

// RFC 8693: the opaque token is exchanged for a JWT; an exchange the AS
// refuses is a 401 invalid_token, an AS failure a 502.
func TestTokenExchange(t *testing.T) {
	as, up := newStubAS(t), newRecorder(t)
	site := strings.Replace(defaultSite, "\t\tas_jwks_uri {AS}/jwks\n", `		as_jwks_uri {AS}/jwks
		introspection_format json
		token_exchange {
			endpoint {AS}/token
			scope mcp:tools
		}
`, 1)
	g := startCaddy(t, as, up, site)
	exp := time.Now().Add(time.Hour).Unix()
	for _, tok := range []string{"exchangeable", "refused", "broken"} {
		as.json(tok, fmt.Sprintf(`{"active":true,"client_id":"agent","scope":"mcp:tools","aud":%q,"exp":%d}`, resource, exp))
	}
	issued := as.sign(t, map[string]any{"sub": "agent", "client_id": "agent", "aud": resource, "scope": "mcp:tools", "exp": exp, "iss": as.srv.URL})
	var seen url.Values
	as.mu.Lock()
	as.exchange = func(w http.ResponseWriter, form url.Values) {
		seen = form
		w.Header().Set("Content-Type", "application/json")
		switch form.Get("subject_token") {
		case "exchangeable":
			_ = json.NewEncoder(w).Encode(map[string]any{"access_token": issued, "issued_token_type": "urn:ietf:params:oauth:token-type:jwt", "token_type": "Bearer", "expires_in": 300})
		case "refused":
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"invalid_target"}`)
		default:
			w.WriteHeader(http.StatusInternalServerError)
		}
	}
	as.mu.Unlock()

	resp, _ := g.do(t, http.MethodGet, "/mcp", "Authorization", "Bearer exchangeable")
	if resp.StatusCode != http.StatusOK || up.last(t).Header.Get("Authorization") != "Bearer "+issued {
		t.Fatalf("status %d; the upstream must get the exchanged JWT", resp.StatusCode)
	}
	for k, want := range map[string]string{
		"grant_type":           "urn:ietf:params:oauth:grant-type:token-exchange",
		"subject_token":        "exchangeable",
		"subject_token_type":   "urn:ietf:params:oauth:token-type:access_token",
		"requested_token_type": "urn:ietf:params:oauth:token-type:jwt",
		"resource":             resource,
		"scope":                "mcp:tools",
	} {
		if seen.Get(k) != want {
			t.Errorf("exchange %s = %q, want %q", k, seen.Get(k), want)
		}
	}
	if resp, _ = g.do(t, http.MethodGet, "/mcp", "Authorization", "Bearer refused"); resp.StatusCode != http.StatusUnauthorized ||
		!strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("refused exchange: %d %q, want 401 invalid_token", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if resp, _ = g.do(t, http.MethodGet, "/mcp", "Authorization", "Bearer broken"); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("failing exchange: %d, want 502", resp.StatusCode)
	}
	if up.count() != 1 {
		t.Errorf("upstream calls = %d, want 1", up.count())
	}
}
