package exampleapi_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/phantomgate/caddy-phantom-token/examples/exampleapi"
)

const (
	issuer      = "https://as.example.com"
	apiResource = "https://gw.example.com/api"
	mcpResource = "https://gw.example.com/mcp"
)

// signer signs JWTs with one ES256 key and serves its JWKS.
type signer struct {
	key  jwk.Key
	jwks *httptest.Server
}

func newSigner(t *testing.T) *signer {
	t.Helper()
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := jwk.FromRaw(raw)
	_ = key.Set(jwk.KeyIDKey, "k1")
	pub, _ := key.PublicKey()
	set := jwk.NewSet()
	_ = set.AddKey(pub)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(srv.Close)
	return &signer{key: key, jwks: srv}
}

func (s *signer) sign(t *testing.T, sub, aud, scope string) string {
	t.Helper()
	payload, _ := json.Marshal(map[string]any{
		"iss": issuer, "sub": sub, "aud": []string{aud}, "scope": scope,
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
	})
	hdrs := jws.NewHeaders()
	_ = hdrs.Set(jws.TypeKey, "at+jwt")
	_ = hdrs.Set(jws.KeyIDKey, "k1")
	out, err := jws.Sign(payload, jws.WithKey(jwa.ES256, s.key, jws.WithProtectedHeaders(hdrs)))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestAPI: each subject gets its own data; a JWT for another audience, one
// without the scope, and a request without a token are refused.
func TestAPI(t *testing.T) {
	s := newSigner(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h, err := exampleapi.New(ctx, exampleapi.Config{
		JWKSURL: s.jwks.URL, Issuer: issuer, Resource: apiResource, Scope: "api:read", Prefix: "/api",
		Notes: map[string][]string{"alice": {"a1", "a2"}, "bob": {"b1"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	get := func(token string) (int, string, string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/me", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b)), resp.Header.Get("WWW-Authenticate")
	}

	for _, c := range []struct {
		name, token string
		status      int
		body        string // the JSON answer, or what the challenge must contain
	}{
		{"alice", s.sign(t, "alice", apiResource, "api:read"), 200, `{"notes":["a1","a2"],"user":"alice"}`},
		{"bob", s.sign(t, "bob", apiResource, "api:read other"), 200, `{"notes":["b1"],"user":"bob"}`},
		{"a subject without data", s.sign(t, "carol", apiResource, "api:read"), 200, `{"notes":[],"user":"carol"}`},
		{"the MCP server's audience", s.sign(t, "alice", mcpResource, "api:read"), 401, `Bearer realm="api", error="invalid_token"`},
		{"without the scope", s.sign(t, "alice", apiResource, "mcp:tools"), 403, `error="insufficient_scope", scope="api:read"`},
		{"no token", "", 401, `Bearer`},
	} {
		status, body, challenge := get(c.token)
		if status != c.status {
			t.Errorf("%s: status %d, want %d (%s)", c.name, status, c.status, body)
			continue
		}
		if status == 200 && body != c.body {
			t.Errorf("%s: body %s, want %s", c.name, body, c.body)
		}
		if status != 200 && !strings.Contains(challenge, c.body) {
			t.Errorf("%s: challenge %q, want it to contain %q", c.name, challenge, c.body)
		}
	}
}
