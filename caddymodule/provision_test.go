package caddymodule

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// provision provisions h in a fresh Caddy context and cleans up after t.
func provision(t *testing.T, h *Handler) error {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	err := h.Provision(ctx)
	t.Cleanup(func() { _ = h.Cleanup() })
	return err
}

func validHandler() *Handler {
	return &Handler{
		IntrospectionEndpoint: "https://as.example.com/introspect",
		ClientID:              "gateway",
		ClientSecret:          "s3cret",
	}
}

func TestProvisionErrors(t *testing.T) {
	t.Setenv("PHANTOM_TEST_EMPTY", "")
	for _, tc := range []struct {
		name    string
		mutate  func(h *Handler)
		wantErr string
	}{
		{"no endpoint", func(h *Handler) { h.IntrospectionEndpoint = "" }, "introspection_endpoint: required"},
		{"negative leeway", func(h *Handler) { h.Leeway = caddy.Duration(-time.Second) }, "leeway: expected a duration from 0 to 5m0s"},
		{"leeway over 5m", func(h *Handler) { h.Leeway = caddy.Duration(6 * time.Minute) }, "leeway: expected a duration from 0 to 5m0s, got 6m0s"},
		{"plain http to a remote AS", func(h *Handler) { h.IntrospectionEndpoint = "http://as.example.com/i" }, "introspection_endpoint: http is only allowed for loopback"},
		{"relative endpoint", func(h *Handler) { h.IntrospectionEndpoint = "/introspect" }, "introspection_endpoint: url must be absolute"},
		{"no client_id", func(h *Handler) { h.ClientID = "" }, "client_id: required"},
		{"no secret", func(h *Handler) { h.ClientSecret = "" }, "client_secret: required with client_auth client_secret_basic"},
		{"secret placeholder empty", func(h *Handler) { h.ClientSecret = "{env.PHANTOM_TEST_EMPTY}" }, `client_secret: empty after resolving placeholders in "{env.PHANTOM_TEST_EMPTY}"`},
		{"secret file missing", func(h *Handler) { h.ClientSecret = "{file./nonexistent/secret}" }, "client_secret: empty after resolving"},
		{"bad client_auth", func(h *Handler) { h.ClientAuth = "mtls" }, "client_auth: expected one of"},
		{"bad format", func(h *Handler) { h.IntrospectionFormat = "xml" }, "introspection_format: expected one of"},
		{"json without a JWT source", func(h *Handler) { h.IntrospectionFormat = "json" }, "introspection_format json needs a JWT source"},
		{"jwt_claim with jwt", func(h *Handler) { h.JWTClaim = "jwt" }, "not valid with introspection_format jwt"},
		{"sign with jwt", func(h *Handler) { h.Sign = &SignConfig{Issuer: "https://gw", EphemeralKey: true} }, "not valid with introspection_format jwt"},
		{"two JWT sources", func(h *Handler) {
			h.IntrospectionFormat, h.JWTClaim = "json", "jwt"
			h.TokenExchange = &TokenExchangeConfig{Endpoint: "https://as.example.com/token"}
		}, "configure exactly one JWT source"},
		{"token_exchange without endpoint", func(h *Handler) {
			h.IntrospectionFormat, h.TokenExchange = "json", &TokenExchangeConfig{}
		}, "token_exchange.endpoint: required"},
		{"sign without key", func(h *Handler) {
			h.IntrospectionFormat, h.Sign = "json", &SignConfig{Issuer: "https://gw"}
			h.Resource, h.AuthorizationServers = "https://mcp.example.com/mcp", []string{"https://as.example.com"}
		}, "sign.key: required"},
		{"sign without resource", func(h *Handler) {
			h.IntrospectionFormat, h.Sign = "json", &SignConfig{Issuer: "https://gw", EphemeralKey: true}
		}, "sign: requires resource"},
		{"sign key file missing", func(h *Handler) {
			h.IntrospectionFormat, h.Sign = "json", &SignConfig{Issuer: "https://gw", Key: "/nonexistent/key.pem"}
			h.Resource, h.AuthorizationServers = "https://mcp.example.com/mcp", []string{"https://as.example.com"}
		}, "sign.key:"},
		{"rfc9701 without jwks", func(h *Handler) {
			h.IntrospectionFormat, h.JWTClaim = "rfc9701", "jwt"
		}, "as_jwks_uri, issuer: required with introspection_format rfc9701"},
		{"private_key_jwt without key", func(h *Handler) { h.ClientAuth, h.ClientSecret = "private_key_jwt", "" }, "client_assertion_key: required"},
		{"private_key_jwt with a secret", func(h *Handler) { h.ClientAuth = "private_key_jwt" }, "client_secret: not used with client_auth private_key_jwt"},
		{"tls_client_auth without cert", func(h *Handler) { h.ClientAuth, h.ClientSecret = "tls_client_auth", "" }, "tls_client_cert, tls_client_key: required"},
		{"tls files with basic", func(h *Handler) { h.TLSClientCert = "/c.pem" }, "only valid with client_auth tls_client_auth"},
		{"tls_ca file missing", func(h *Handler) { h.TLSCA = "/nonexistent/ca.pem" }, "tls_ca: tls ca file"},
		{"http jwks", func(h *Handler) { h.ASJWKSURI = "http://as.example.com/jwks" }, "as_jwks_uri: http is only allowed for loopback"},
		{"resource with fragment", func(h *Handler) { h.Resource = "https://mcp.example.com/mcp#x" }, "resource: url must not contain a fragment"},
		{"audience without resource", func(h *Handler) { h.Audience = []string{"x"} }, "only valid together with resource"},
		{"resource without authorization_server", func(h *Handler) { h.Resource = "https://mcp.example.com/mcp" }, "authorization_server: required with resource"},
		{"plain http authorization_server", func(h *Handler) {
			h.Resource = "https://mcp.example.com/mcp"
			h.AuthorizationServers = []string{"http://as.example.com"}
		}, "authorization_server: http is only allowed for loopback"},
		{"relative metadata_path", func(h *Handler) {
			h.Resource = "https://mcp.example.com/mcp"
			h.AuthorizationServers = []string{"https://as.example.com"}
			h.MetadataPath = "well-known"
		}, "metadata_path: expected an absolute path"},
		{"metadata without resource", func(h *Handler) { h.ResourceName = "x" }, "only valid together with resource"},
		{"scope with space", func(h *Handler) { h.RequiredScopes = []string{"a b"} }, "required_scopes: invalid scope"},
		{"negative max_ttl", func(h *Handler) { d := caddy.Duration(-1); h.Cache = &CacheConfig{MaxTTL: &d} }, "cache.max_ttl"},
		{"quote in realm", func(h *Handler) { h.Realm = `a"b` }, "realm: must not contain quotes"},
		{"dpop without resource or origin", func(h *Handler) { h.DPoP = &DPoPConfig{} }, "dpop origin: required when resource is not set"},
		{"dpop HMAC algorithm", func(h *Handler) {
			h.DPoP = &DPoPConfig{Origin: "https://mcp.example.com", Algorithms: []string{"ES256", "HS256"}}
		},
			`dpop algorithms: "HS256" is not allowed`},
		{"dpop unknown algorithm", func(h *Handler) {
			h.DPoP = &DPoPConfig{Origin: "https://mcp.example.com", Algorithms: []string{"ES257"}}
		},
			`dpop algorithms:`},
		{"dpop origin with a path", func(h *Handler) { h.DPoP = &DPoPConfig{Origin: "https://mcp.example.com/mcp"} },
			"dpop origin: expected scheme://host[:port] only"},
		{"dpop origin not a URL", func(h *Handler) { h.DPoP = &DPoPConfig{Origin: "mcp.example.com"} },
			"dpop origin: expected an absolute http(s) URL"},
		{"dpop negative max_age", func(h *Handler) {
			h.DPoP = &DPoPConfig{Origin: "https://mcp.example.com", MaxAge: caddy.Duration(-time.Second)}
		}, "dpop max_age: expected a positive duration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := validHandler()
			tc.mutate(h)
			err := provision(t, h)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Provision error = %v, want it to contain %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error leaks the secret: %v", err)
			}
		})
	}
}

// Provision does no network I/O: an unreachable AS and JWKS do not stop it.
func TestProvisionOffline(t *testing.T) {
	t.Setenv("PHANTOM_TEST_SECRET", "from-env")
	h := validHandler()
	h.IntrospectionEndpoint = "http://127.0.0.1:1/introspect"
	h.ASJWKSURI = "http://127.0.0.1:1/jwks"
	h.ClientSecret = "{env.PHANTOM_TEST_SECRET}"
	if err := provision(t, h); err != nil {
		t.Fatal(err)
	}
	if h.ClientSecret != "from-env" {
		t.Errorf("secret not resolved from the environment")
	}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
}

// Checks run on every request, cache hits included, against the handler's
// clock: an entry is reused within max_ttl, refreshed after it, and never
// served past the token's exp.
func TestHitsAreReauthorizedWithTheClock(t *testing.T) {
	start := time.Now()
	clock := start
	now = func() time.Time { return clock }
	t.Cleanup(func() { now = time.Now })

	// A structurally valid JWS; no as_jwks_uri, so it is not verified.
	jwt := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","typ":"at+jwt"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"alice"}`)) + ".c2ln"
	var calls atomic.Int64
	exp := start.Add(90 * time.Second).Unix()
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"active":true,"sub":"alice","scope":"mcp:tools","exp":`+strconv.FormatInt(exp, 10)+`,"jwt":"`+jwt+`"}`)
	}))
	defer as.Close()

	h := validHandler()
	h.IntrospectionEndpoint = as.URL
	h.IntrospectionFormat = "json"
	h.JWTClaim = "jwt"
	h.RequiredScopes = []string{"mcp:tools"}
	oneMinute := caddy.Duration(time.Minute)
	h.Cache = &CacheConfig{MaxTTL: &oneMinute}
	if err := provision(t, h); err != nil {
		t.Fatal(err)
	}

	serve := func() (int, string) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Authorization", "Bearer opaque-1")
		repl := caddy.NewReplacer()
		req = req.WithContext(context.WithValue(req.Context(), caddy.ReplacerCtxKey, repl))
		var upstream string
		err := h.ServeHTTP(httptest.NewRecorder(), req, caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			upstream = r.Header.Get("Authorization")
			return nil
		}))
		if err != nil {
			var he caddyhttp.HandlerError
			if errors.As(err, &he) {
				return he.StatusCode, ""
			}
			t.Fatal(err)
		}
		return http.StatusOK, upstream
	}

	for _, step := range []struct {
		at         time.Duration
		wantStatus int
		wantCalls  int64
	}{
		{0, 200, 1},
		{30 * time.Second, 200, 1},  // hit
		{61 * time.Second, 200, 2},  // past max_ttl: asked again, cached until exp (29s)
		{89 * time.Second, 200, 2},  // hit, just before exp
		{90 * time.Second, 401, 3},  // at exp: the entry is gone and the AS's answer is expired
		{120 * time.Second, 401, 4}, // expired answers are never cached
	} {
		clock = start.Add(step.at)
		status, upstream := serve()
		if status != step.wantStatus || calls.Load() != step.wantCalls {
			t.Fatalf("at +%v: status %d, AS calls %d; want %d, %d", step.at, status, calls.Load(), step.wantStatus, step.wantCalls)
		}
		if status == 200 && upstream != "Bearer "+jwt {
			t.Fatalf("at +%v: upstream Authorization = %q", step.at, upstream)
		}
	}
}
