package authservers

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/phantomgate/caddy-phantom-token/examples/demoas"
	"github.com/phantomgate/caddy-phantom-token/examples/internal/hydra"
	"github.com/phantomgate/caddy-phantom-token/examples/internal/oidcprovider"
)

// The clients every authorization server gets.
const (
	scopeTools = "mcp:tools"

	gatewayID     = "gateway" // the gateway's own client (GATEWAY_CLIENT_ID)
	gatewaySecret = "gateway-secret"
	wrongSecret   = "not-the-gateway-secret"
	agentID       = "agent" // the MCP client; IDs and secrets without '%' or '+'
	agentSecret   = "agent-secret"

	grantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
)

// authServer is a running authorization server, set up for one README
// config.
type authServer struct {
	// issuer is the AS's issuer identifier.
	issuer string
	// env holds the block's AS-side values: AS_ISSUER, AS_ADMIN_URL,
	// GATEWAY_CLIENT_ID, GATEWAY_CLIENT_SECRET, GATEWAY_CLIENT_KEY.
	env map[string]string
	// wrongCredentials overrides env so that the AS refuses the gateway's
	// client authentication; nil when the AS does not check it.
	wrongCredentials map[string]string
	// token returns a new opaque client-credentials token of the agent for
	// the resource, with scope mcp:tools.
	token func(t *testing.T) string
	// revoke revokes a token of the agent at the AS.
	revoke func(t *testing.T, token string)
	// asIntrospections counts the introspection requests the AS served, seen
	// from the AS side; nil when the test cannot observe it there.
	asIntrospections func() int64

	// jwtFromAS: the forwarded JWT is the AS's (signed with a key of
	// jwksURL, iss = issuer); otherwise the gateway signs it (sign block).
	jwtFromAS bool
	jwksURL   string

	// discovery is set when the AS honours RFC 8707 "resource", so the npm
	// SDK's ClientCredentialsProvider can get a token for the gateway's
	// resource by discovery.
	discovery bool

	// extra holds server-specific steps, run after the common ones.
	extra []step
}

// step is a named subtest of one case.
type step struct {
	name string
	run  func(t *testing.T, c *caseEnv)
}

// testCase is one README config and the server it runs against.
type testCase struct {
	name  string // the README's as-config name
	start func(t *testing.T, g *gateway) *authServer
}

// cases are the README's tested configs.
func cases() []testCase {
	return []testCase{
		{"hydra", startHydra},
		{"oidc-provider-json-sign", func(t *testing.T, g *gateway) *authServer {
			return startOIDCProvider(t, g, map[string]any{"client_secret": gatewaySecret}, false)
		}},
		{"oidc-provider-rfc9701-sign", func(t *testing.T, g *gateway) *authServer {
			// RS256 is oidc-provider's default (and the only algorithm it
			// allows here); registering it says what the gateway expects.
			as := startOIDCProvider(t, g, map[string]any{
				"client_secret":                     gatewaySecret,
				"introspection_signed_response_alg": "RS256",
			}, false)
			as.extra = []step{{"an RFC 9701 answer not signed by a key of as_jwks_uri is a 502", rfc9701WrongKeysIsRefused}}
			return as
		}},
		{"oidc-provider-json-token-exchange", func(t *testing.T, g *gateway) *authServer {
			return startOIDCProvider(t, g, map[string]any{
				"client_secret": gatewaySecret,
				"grant_types":   []string{grantTokenExchange},
			}, true)
		}},
		{"oidc-provider-client-secret-post", func(t *testing.T, g *gateway) *authServer {
			return startOIDCProvider(t, g, map[string]any{
				"client_secret":              gatewaySecret,
				"token_endpoint_auth_method": "client_secret_post",
			}, false)
		}},
		{"oidc-provider-private-key-jwt", startOIDCProviderPrivateKeyJWT},
		{"curity-style", startDemoAS},
	}
}

// ---------------------------------------------------------------------------
// Ory Hydra

// startHydra runs Hydra with the gateway's and the agent's clients. Hydra
// ignores RFC 8707 "resource": the agent asks for the resource with Hydra's
// "audience" parameter instead, which puts it in "aud".
//
// Hydra's introspection endpoint is on the admin port, which the README
// block reaches as {$AS_ADMIN_URL}. The test puts a counting loopback
// reverse proxy there, so the introspections are also counted on the AS
// side; AS_ISSUER stays Hydra's real issuer.
func startHydra(t *testing.T, g *gateway) *authServer {
	h := hydra.Start(t)
	gw := hydra.Client{ID: gatewayID, Secret: gatewaySecret}
	agent := hydra.Client{ID: agentID, Secret: agentSecret, Scopes: []string{scopeTools}, Audience: []string{g.resource}}
	h.CreateClient(t, gw)
	h.CreateClient(t, agent)

	admin := countingProxy(t, h.AdminURL, "/admin/oauth2/introspect")
	return &authServer{
		issuer: h.Issuer,
		env: map[string]string{
			"AS_ADMIN_URL":          admin.url,
			"AS_ISSUER":             h.Issuer,
			"GATEWAY_CLIENT_ID":     gatewayID,
			"GATEWAY_CLIENT_SECRET": gatewaySecret,
		},
		// Hydra v2's admin introspection does not authenticate its caller:
		// the credentials the gateway sends are ignored, so wrong ones still
		// work (see testWrongCredentials). The README says to keep the admin
		// port off the network for this reason.
		wrongCredentials: nil,
		token: func(t *testing.T) string {
			return h.ClientCredentialsToken(t, agent, scopeTools, []string{g.resource})
		},
		revoke:           func(t *testing.T, token string) { h.Revoke(t, agent, token) },
		asIntrospections: admin.calls.Load,
		jwksURL:          h.PublicURL + "/.well-known/jwks.json",
		// The npm SDK sends "resource", which Hydra ignores: its token would
		// have no audience and the gateway would rightly refuse it.
		discovery: false,
		extra:     []step{{"introspection_format rfc9701 against Hydra is a 502", hydraRFC9701IsRefused}},
	}
}

// hydraRFC9701IsRefused: Hydra answers plain JSON to "Accept:
// application/token-introspection+jwt". A gateway configured for RFC 9701
// must refuse that (502), not silently accept an unsigned answer. This block
// is the test's own, not a README config (the README's Hydra config is
// json).
func hydraRFC9701IsRefused(t *testing.T, c *caseEnv) {
	const block = `phantom_token {
	introspection_endpoint {$AS_ADMIN_URL}/admin/oauth2/introspect
	client_id              {$GATEWAY_CLIENT_ID}
	client_secret          {env.GATEWAY_CLIENT_SECRET}
	introspection_format   rfc9701
	as_jwks_uri            {$AS_ISSUER}.well-known/jwks.json
	issuer                 {$AS_ISSUER}
	sign {
		issuer {$GATEWAY_ISSUER}
		key    {$GATEWAY_SIGNING_KEY}
	}
	resource             {$MCP_RESOURCE}
	authorization_server {$AS_ISSUER}
	required_scopes      mcp:tools
}`
	c.load(t, block, nil)
	wantBadGateway(t, c, c.as.token(t))
}

// wantBadGateway sends a raw initialize with token and expects 502 from an
// AS answer the gateway cannot use: one bad_response introspection, no
// challenge, the MCP server not called.
func wantBadGateway(t *testing.T, c *caseEnv, token string) {
	t.Helper()
	before := c.g.metrics(t)
	up := c.g.upstream.Count()
	resp, _ := c.g.postInitialize(t, token)
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status %d, want 502", resp.StatusCode)
	}
	if ch := resp.Header.Get("WWW-Authenticate"); ch != "" {
		t.Errorf("502 with WWW-Authenticate %q, want none", ch)
	}
	after := c.g.metrics(t)
	if d := after.introspections["bad_response"] - before.introspections["bad_response"]; d != 1 {
		t.Errorf("bad_response introspections: +%v, want +1", d)
	}
	if n := c.g.upstream.Count() - up; n != 0 {
		t.Errorf("the MCP server got %d requests, want none", n)
	}
}

// rfc9701WrongKeysIsRefused: the README's rfc9701 block with one change,
// as_jwks_uri pointing at a JWKS that does not hold oidc-provider's key. The
// signed introspection answer then fails verification: 502, the MCP server
// not called. This shows the gateway verifies the RFC 9701 answer it asked
// for rather than trusting it. The modified block is the test's own.
func rfc9701WrongKeysIsRefused(t *testing.T, c *caseEnv) {
	const jwksLine = "as_jwks_uri {$AS_ISSUER}/jwks"
	if !strings.Contains(c.block, jwksLine) {
		t.Fatalf("the README rfc9701 block has no line %q to redirect", jwksLine)
	}
	block := strings.Replace(c.block, jwksLine, "as_jwks_uri {$OTHER_JWKS_URI}", 1)
	c.load(t, block, map[string]string{"OTHER_JWKS_URI": otherJWKS(t)})
	wantBadGateway(t, c, c.as.token(t))
}

// otherJWKS serves, on loopback, a JWKS with one RSA key nobody signs with.
func otherJWKS(t *testing.T) string {
	t.Helper()
	_, key := writeRSAKey(t, t.TempDir(), "other.pem")
	pub, err := jwk.FromRaw(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	_ = pub.Set(jwk.KeyIDKey, "unrelated-key")
	_ = pub.Set(jwk.AlgorithmKey, jwa.RS256)
	set := jwk.NewSet()
	_ = set.AddKey(pub)
	body, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/jwks"
}

// proxy is a counting reverse proxy on 127.0.0.1.
type proxy struct {
	url   string
	calls atomic.Int64
}

// countingProxy forwards everything to target and counts POSTs to path.
func countingProxy(t *testing.T, target, path string) *proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	tr := &http.Transport{Proxy: nil}
	t.Cleanup(tr.CloseIdleConnections)
	rp.Transport = tr
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == path {
			p.calls.Add(1)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.url = srv.URL
	return p
}

// ---------------------------------------------------------------------------
// node oidc-provider

// startOIDCProvider runs oidc-provider for the gateway's resource with the
// agent, a gateway client with the given metadata, and moreClients. The
// tokens are opaque; introspection answers aud = the resource.
func startOIDCProvider(t *testing.T, g *gateway, gatewayMetadata map[string]any, exchange bool, moreClients ...map[string]any) *authServer {
	gw := map[string]any{"client_id": gatewayID}
	for k, v := range gatewayMetadata {
		gw[k] = v
	}
	p := oidcprovider.Start(t, oidcprovider.Options{
		Resource: g.resource,
		Clients: append([]map[string]any{
			{"client_id": agentID, "client_secret": agentSecret, "grant_types": []string{"client_credentials"}},
			gw,
		}, moreClients...),
	})
	env := map[string]string{
		"AS_ISSUER":         p.Issuer,
		"GATEWAY_CLIENT_ID": gatewayID,
	}
	var wrong map[string]string
	if _, ok := gatewayMetadata["client_secret"]; ok {
		env["GATEWAY_CLIENT_SECRET"] = gatewaySecret
		wrong = map[string]string{"GATEWAY_CLIENT_SECRET": wrongSecret}
	}
	return &authServer{
		issuer:           p.Issuer,
		env:              env,
		wrongCredentials: wrong,
		token: func(t *testing.T) string {
			return p.ClientCredentialsToken(t, agentID, agentSecret, scopeTools, g.resource)
		},
		revoke: func(t *testing.T, token string) { p.Revoke(t, agentID, agentSecret, token) },
		// The README reaches introspection as {$AS_ISSUER}/token/introspection,
		// and AS_ISSUER must stay the real issuer (the introspection and RFC
		// 9701 "iss", the token-exchange endpoint, the exchanged JWT's "iss",
		// the metadata the npm SDK follows), so no proxy can sit there: the
		// count comes from the gateway's metrics only.
		asIntrospections: nil,
		jwtFromAS:        exchange,
		jwksURL:          p.JWKSURL,
		discovery:        true,
	}
}

// startOIDCProviderPrivateKeyJWT registers the gateway with a public key
// (token_endpoint_auth_method private_key_jwt) and no secret; the README
// block has no client_secret either. The wrong credentials are a key the AS
// does not know.
func startOIDCProviderPrivateKeyJWT(t *testing.T, g *gateway) *authServer {
	dir := t.TempDir()
	keyPath, key := writeRSAKey(t, dir, "gateway-client.pem")
	wrongPath, _ := writeRSAKey(t, dir, "unknown-client.pem")
	pub, err := jwk.FromRaw(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	_ = pub.Set(jwk.AlgorithmKey, jwa.RS256)
	_ = pub.Set(jwk.KeyUsageKey, "sig")
	raw, err := json.Marshal(pub)
	if err != nil {
		t.Fatal(err)
	}
	var pubMap map[string]any
	if err := json.Unmarshal(raw, &pubMap); err != nil {
		t.Fatal(err)
	}
	as := startOIDCProvider(t, g, map[string]any{
		"token_endpoint_auth_method": "private_key_jwt",
		"jwks":                       map[string]any{"keys": []any{pubMap}},
	}, false)
	if _, ok := as.env["GATEWAY_CLIENT_SECRET"]; ok {
		t.Fatal("private_key_jwt: the gateway must have no client secret")
	}
	as.env["GATEWAY_CLIENT_KEY"] = keyPath
	as.wrongCredentials = map[string]string{"GATEWAY_CLIENT_KEY": wrongPath}
	as.extra = []step{{"the config holds no client secret", func(t *testing.T, c *caseEnv) {
		if strings.Contains(c.block, "client_secret") {
			t.Errorf("the README private_key_jwt block mentions client_secret:\n%s", c.block)
		}
		if !regexp.MustCompile(`(?m)^\s*client_auth\s+private_key_jwt\s*$`).MatchString(c.block) {
			t.Errorf("the README private_key_jwt block does not say client_auth private_key_jwt:\n%s", c.block)
		}
	}}}
	return as
}

// ---------------------------------------------------------------------------
// The embedded fosite demo AS (Curity style)

func startDemoAS(t *testing.T, g *gateway) *authServer {
	as, err := demoas.Start(demoas.Config{Clients: []demoas.Client{
		{ID: gatewayID, Secret: gatewaySecret},
		{ID: agentID, Secret: agentSecret, Scopes: []string{scopeTools}, Resources: []string{g.resource}},
	}})
	if err != nil {
		t.Fatalf("starting the demo AS: %v", err)
	}
	t.Cleanup(func() { _ = as.Close() })
	return &authServer{
		issuer: as.Issuer,
		env: map[string]string{
			"AS_ISSUER":             as.Issuer,
			"GATEWAY_CLIENT_ID":     gatewayID,
			"GATEWAY_CLIENT_SECRET": gatewaySecret,
		},
		wrongCredentials: map[string]string{"GATEWAY_CLIENT_SECRET": wrongSecret},
		token: func(t *testing.T) string {
			return clientCredentials(t, as.URL+demoas.TokenPath, agentID, agentSecret, scopeTools, g.resource)
		},
		revoke: func(t *testing.T, token string) {
			if err := as.Revoke(token); err != nil {
				t.Fatal(err)
			}
		},
		asIntrospections: as.IntrospectionCalls,
		jwtFromAS:        true,
		jwksURL:          as.URL + demoas.JWKSPath,
		discovery:        true,
	}
}

// clientCredentials gets an opaque token with the client_credentials grant
// (client_secret_basic) for scope and an RFC 8707 resource.
func clientCredentials(t *testing.T, tokenURL, id, secret, scope, resource string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {scope}, "resource": {resource}}
	req, err := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	tr := &http.Transport{Proxy: nil}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("token request: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &tok) != nil || tok.AccessToken == "" {
		t.Fatalf("token request for %s: status %d: %s", id, resp.StatusCode, body)
	}
	return tok.AccessToken
}
