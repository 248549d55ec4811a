package authservers

import (
	"context"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/phantomgate/caddy-phantom-token/examples/internal/gatewaytest"
)

// maxTTL is PHANTOM_MAX_TTL in the revocation step: the revocation window.
const maxTTL = 2 * time.Second

// caseEnv is one case's running setup: the AS, the MCP server and Caddy.
type caseEnv struct {
	g     *gateway
	as    *authServer
	block string            // the README block
	env   map[string]string // the values of its {$…} and {env.…}

	jwtIssuer string // the "iss" the MCP server expects
	jwksURL   string // the JWKS the MCP server verifies with
}

// load sets the environment (env with overrides) and (re)loads Caddy with
// block. Without PHANTOM_MAX_TTL in the overrides, the block's default
// ({$PHANTOM_MAX_TTL:5m}) applies.
func (c *caseEnv) load(t *testing.T, block string, overrides map[string]string) {
	t.Helper()
	env := map[string]string{}
	for k, v := range c.env {
		env[k] = v
	}
	for k, v := range overrides {
		env[k] = v
	}
	if _, ok := env["PHANTOM_MAX_TTL"]; !ok {
		t.Setenv("PHANTOM_MAX_TTL", "") // restored when the test ends
		os.Unsetenv("PHANTOM_MAX_TTL")
	}
	setEnv(t, block, env)
	c.g.load(t, block)
}

// TestAuthorizationServers runs every README config marked tested against
// its real authorization server, one subtest per README config name. For
// each: an MCP session with the go-sdk client through the gateway and the
// introspection count; the npm SDK's discovery (servers that honour RFC
// 8707); a revoked token after max_ttl; wrong gateway credentials; and the
// server's own extra steps.
func TestAuthorizationServers(t *testing.T) {
	for _, tc := range cases() {
		t.Run(tc.name, func(t *testing.T) {
			c := setUp(t, tc)
			steps := []step{{"session through the gateway", testSession}}
			if c.as.discovery {
				steps = append(steps, step{"npm ClientCredentialsProvider discovery", testNodeDiscovery})
			}
			steps = append(steps,
				step{"revoked token refused after max_ttl", testRevocation},
				step{"wrong gateway credentials", testWrongCredentials},
			)
			steps = append(steps, c.as.extra...)
			for _, s := range steps {
				t.Run(s.name, func(t *testing.T) { s.run(t, c) })
			}
		})
	}
}

// setUp starts the AS and the MCP server (trusting the AS's or the
// gateway's JWKS and issuer, as the mode says) and reads the README block.
// Each step then loads Caddy with its own environment.
func setUp(t *testing.T, tc testCase) *caseEnv {
	t.Helper()
	g := newGateway(t)
	as := tc.start(t, g)
	c := &caseEnv{g: g, as: as, block: readmeConfig(t, tc.name)}
	c.env = map[string]string{
		"MCP_RESOURCE":        g.resource,
		"GATEWAY_ISSUER":      g.url,
		"GATEWAY_SIGNING_KEY": writeECKey(t, t.TempDir(), "gateway-signing.pem"),
	}
	for k, v := range as.env {
		c.env[k] = v
	}
	if as.jwtFromAS {
		c.jwtIssuer, c.jwksURL = as.issuer, as.jwksURL
	} else {
		c.jwtIssuer, c.jwksURL = g.url, g.gatewayJWKSURL()
	}
	g.startMCPServer(t, c.jwksURL, c.jwtIssuer)
	return c
}

// testSession: a client-credentials token for the resource carries a whole
// MCP session (initialize, tools/list, whoami, ping, whoami, close) through
// the gateway. The MCP server verified every forwarded JWT against the
// expected JWKS and issuer, never saw the opaque token, and saw one JWT for
// the whole session; the gateway asked the AS once.
func testSession(t *testing.T, c *caseEnv) {
	c.load(t, c.block, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	opaque := c.as.token(t)
	if _, ok := decodeJWT(opaque); ok {
		t.Fatal("the AS issued a JWT; the phantom token pattern needs an opaque token")
	}
	before := c.g.metrics(t)
	var asBefore int64
	if c.as.asIntrospections != nil {
		asBefore = c.as.asIntrospections()
	}
	up := c.g.upstream.Count()

	cs, err := c.g.connect(ctx, t, opaque)
	if err != nil {
		t.Fatalf("initialize through the gateway: %v", err)
	}
	if cs.ID() == "" {
		t.Error("no Mcp-Session-Id after initialize")
	}
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	if !slices.ContainsFunc(tools.Tools, func(tl *mcp.Tool) bool { return tl.Name == "whoami" }) {
		t.Errorf("tools/list has no whoami")
	}
	claims, err := gatewaytest.Whoami(ctx, cs)
	if err != nil {
		t.Fatalf("tools/call whoami: %v", err)
	}
	c.wantClaims(t, claims)
	if err := cs.Ping(ctx, nil); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if _, err := gatewaytest.Whoami(ctx, cs); err != nil {
		t.Fatalf("second tools/call whoami: %v", err)
	}
	if err := cs.Close(); err != nil {
		t.Errorf("closing the session: %v", err)
	}

	reqs := c.g.upstream.Since(up)
	jwt := c.wantForwardedJWTs(t, reqs, opaque)
	if typ, _ := jwt.header["typ"].(string); !strings.EqualFold(typ, "at+jwt") && !strings.EqualFold(typ, "application/at+jwt") {
		t.Errorf("forwarded JWT typ %q, want at+jwt (RFC 9068)", typ)
	}
	if !slices.ContainsFunc(reqs, func(r gatewaytest.Request) bool { return r.Method == http.MethodDelete && r.Status/100 == 2 }) {
		t.Errorf("the session's DELETE did not reach the MCP server: %+v", reqs)
	}

	// The cache rules: one introspection for the whole session, every
	// other request a hit. The JWT (exchanged, or signed by the gateway)
	// was obtained once too: wantForwardedJWTs saw the same one on every
	// request.
	after := c.g.metrics(t)
	if d := after.introspectionTotal() - before.introspectionTotal(); d != 1 {
		t.Errorf("the gateway made %v introspection calls for the session (%d upstream requests), want 1", d, len(reqs))
	}
	if d := after.requests["miss"] - before.requests["miss"]; d != 1 {
		t.Errorf("cache misses: %v, want 1", d)
	}
	// Every request that reached the MCP server went through the cache
	// (a request the client abandoned may have been counted without
	// reaching it).
	if d := after.requests["hit"] - before.requests["hit"]; int(d) < len(reqs)-1 {
		t.Errorf("cache hits: %v, want at least %d (every request of the session but the first)", d, len(reqs)-1)
	}
	if c.as.asIntrospections != nil {
		if d := c.as.asIntrospections() - asBefore; d != 1 {
			t.Errorf("the AS served %d introspection requests for the session, want 1", d)
		}
	}
	signer := "the gateway"
	if c.as.jwtFromAS {
		signer = "the AS"
	}
	t.Logf("%d upstream requests, 1 introspection; the MCP server verified a JWT from %s (iss %v, typ %v, alg %v) with %s",
		len(reqs), signer, jwt.claims["iss"], jwt.header["typ"], jwt.header["alg"], c.jwksURL)
}

// wantClaims checks whoami's verified claims: the expected issuer, the
// resource in aud, the agent as client, the scope.
func (c *caseEnv) wantClaims(t *testing.T, claims map[string]any) {
	t.Helper()
	if iss, _ := claims["iss"].(string); iss != c.jwtIssuer {
		t.Errorf("verified iss = %v, want %q", claims["iss"], c.jwtIssuer)
	}
	if aud := gatewaytest.Audience(claims["aud"]); !slices.Contains(aud, c.g.resource) {
		t.Errorf("verified aud = %v, want it to contain %s", claims["aud"], c.g.resource)
	}
	clientID, _ := claims["client_id"].(string)
	sub, _ := claims["sub"].(string)
	if clientID != agentID && sub != agentID {
		t.Errorf("verified client_id = %v, sub = %v, want the agent %q", claims["client_id"], claims["sub"], agentID)
	}
	if scope, _ := claims["scope"].(string); !slices.Contains(strings.Fields(scope), scopeTools) {
		t.Errorf("verified scope = %v, want it to contain %s", claims["scope"], scopeTools)
	}
}

// wantForwardedJWTs checks every request the MCP server got: exactly one
// "Authorization: Bearer <JWT>", not the opaque token, the same JWT on all
// of them (one cache entry), with the expected issuer and audience, and
// accepted by the MCP server. It returns the JWT.
func (c *caseEnv) wantForwardedJWTs(t *testing.T, reqs []gatewaytest.Request, opaque string) forwardedJWT {
	t.Helper()
	if len(reqs) < 4 {
		t.Fatalf("the MCP server got %d requests, want a whole session", len(reqs))
	}
	var first forwardedJWT
	for i, r := range reqs {
		authz := r.Header.Values("Authorization")
		if len(authz) != 1 {
			t.Fatalf("upstream request %d (%s): %d Authorization headers", i, r.Method, len(authz))
		}
		if strings.Contains(authz[0], opaque) {
			t.Fatalf("upstream request %d (%s) carried the opaque token", i, r.Method)
		}
		compact, ok := strings.CutPrefix(authz[0], "Bearer ")
		if !ok {
			t.Fatalf("upstream request %d (%s): not a Bearer credential", i, r.Method)
		}
		jwt, ok := decodeJWT(compact)
		if !ok {
			t.Fatalf("upstream request %d (%s): the credential is not a JWT", i, r.Method)
		}
		if r.Status == http.StatusUnauthorized {
			t.Errorf("upstream request %d (%s): the MCP server refused the JWT", i, r.Method)
		}
		if i == 0 {
			first = jwt
			continue
		}
		if jwt.raw != first.raw {
			t.Errorf("upstream request %d (%s) carried another JWT than the first: the session was not served from one cache entry", i, r.Method)
		}
	}
	if iss, _ := first.claims["iss"].(string); iss != c.jwtIssuer {
		t.Errorf("forwarded JWT iss = %q, want %q", iss, c.jwtIssuer)
	}
	if aud := gatewaytest.Audience(first.claims["aud"]); !slices.Contains(aud, c.g.resource) {
		t.Errorf("forwarded JWT aud = %v, want it to contain %s", aud, c.g.resource)
	}
	return first
}

// testRevocation: with max_ttl 2s, a token revoked at the AS keeps working
// while its entry is cached (the documented revocation window), and is
// refused once max_ttl has passed: the go-sdk call fails, and a raw request
// gets 401 with error="invalid_token". The MCP server sees neither.
func testRevocation(t *testing.T, c *caseEnv) {
	c.load(t, c.block, map[string]string{"PHANTOM_MAX_TTL": maxTTL.String()})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	opaque := c.as.token(t)
	start := time.Now() // the introspection happens after this...
	cs, err := c.g.connect(ctx, t, opaque)
	if err != nil {
		t.Fatalf("initialize through the gateway: %v", err)
	}
	defer cs.Close()
	connected := time.Now() // ...and before this
	if _, err := gatewaytest.Whoami(ctx, cs); err != nil {
		t.Fatalf("whoami before revocation: %v", err)
	}

	c.as.revoke(t, opaque)

	// Still cached: the entry lives max_ttl from the introspection. (On a
	// machine so slow that most of the window is gone, this is not checked.)
	if time.Since(start) < maxTTL/2 {
		if _, err := gatewaytest.Whoami(ctx, cs); err != nil {
			t.Errorf("whoami right after revocation, within max_ttl: %v; want it served from the cache", err)
		}
	} else {
		t.Logf("revocation took until %v after the introspection; not checking the cached call", time.Since(start))
	}

	time.Sleep(time.Until(connected.Add(maxTTL + 300*time.Millisecond)))
	before := c.g.metrics(t)
	up := c.g.upstream.Count()
	if _, err := gatewaytest.Whoami(ctx, cs); err == nil {
		t.Errorf("whoami with a revoked token after max_ttl succeeded")
	} else {
		t.Logf("go-sdk after max_ttl: %v", err)
	}
	resp, _ := c.g.postInitialize(t, opaque)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("raw POST with the revoked token: status %d, want 401", resp.StatusCode)
	}
	if ch := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Bearer ") || !strings.Contains(ch, `error="invalid_token"`) {
		t.Errorf(`WWW-Authenticate = %q, want a Bearer challenge with error="invalid_token"`, ch)
	}
	if n := c.g.upstream.Count() - up; n != 0 {
		t.Errorf("the MCP server got %d requests with the revoked token", n)
	}
	after := c.g.metrics(t)
	if d := after.introspections["inactive"] - before.introspections["inactive"]; d != 1 {
		t.Errorf("inactive introspections after max_ttl: +%v, want +1 (then a negative hit)", d)
	}
}

// testWrongCredentials: when the AS refuses the gateway's own client
// authentication, the client gets 502 (no challenge: not the client's
// fault), AS errors are not cached, and the MCP server is not called.
func testWrongCredentials(t *testing.T, c *caseEnv) {
	if c.as.wrongCredentials == nil {
		// Hydra: the admin introspection endpoint does not authenticate its
		// caller, so a wrong secret still works. That is what the README
		// warns about (keep the admin port off the network). The 502 path
		// is shown for Hydra by its rfc9701 step instead.
		c.load(t, c.block, map[string]string{"GATEWAY_CLIENT_SECRET": wrongSecret})
		resp, _ := c.g.postInitialize(t, c.as.token(t))
		if resp.StatusCode != http.StatusOK {
			t.Errorf("Hydra with a wrong gateway secret: status %d; Hydra's admin API ignores client credentials, want 200", resp.StatusCode)
		}
		return
	}
	c.load(t, c.block, c.as.wrongCredentials)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	opaque := c.as.token(t)
	wantBadGateway(t, c, opaque)

	// Not cached: the go-sdk client's initialize asks the AS again, and
	// fails.
	before := c.g.metrics(t)
	if cs, err := c.g.connect(ctx, t, opaque); err == nil {
		cs.Close()
		t.Error("go-sdk initialize succeeded with wrong gateway credentials")
	}
	after := c.g.metrics(t)
	if d := after.requests["as_error"] - before.requests["as_error"]; d < 1 {
		t.Errorf("as_error requests for the go-sdk initialize: +%v, want at least +1 (AS errors are never cached)", d)
	}
}
