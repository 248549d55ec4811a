package authservers

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/phantomgate/caddy-phantom-token/examples/internal/gatewaytest"
	"github.com/phantomgate/caddy-phantom-token/examples/internal/nodeclient"
)

// testNodeDiscovery: the npm SDK's ClientCredentialsProvider starts with no
// token; the gateway's 401 names its protected resource metadata, which
// names the AS; the SDK reads the AS metadata, gets a client-credentials
// token for the resource (RFC 8707) and completes a session (initialize,
// tools/list, whoami, DELETE), which the gateway introspects once.
func testNodeDiscovery(t *testing.T, c *caseEnv) {
	c.load(t, c.block, nil)
	before := c.g.metrics(t)

	rep := nodeclient.Run(t, "client-credentials.mjs", c.g.resource, agentID, agentSecret, scopeTools, c.as.issuer)

	if !slices.Contains(rep.Tools, "whoami") {
		t.Errorf("tools/list = %v, want whoami", rep.Tools)
	}
	claims, err := gatewaytest.WhoamiClaims(rep.Whoami)
	if err != nil {
		t.Fatal(err)
	}
	c.wantClaims(t, claims)

	// The SDK's own steps: a 401 without a token, the AS metadata, a token
	// request for this resource at the AS, then authorized MCP requests.
	var sawChallenge, sawASMetadata, sawTokenRequest bool
	for _, e := range rep.Trace {
		switch {
		case e.URL == c.g.resource && !e.Authorization && e.Status == http.StatusUnauthorized:
			sawChallenge = true
		case e.Method == http.MethodGet && strings.HasPrefix(e.URL, strings.TrimSuffix(c.as.issuer, "/")+"/.well-known/") && e.Status == http.StatusOK:
			sawASMetadata = true
		case e.Form["grant_type"] == "client_credentials":
			sawTokenRequest = true
			if !strings.HasPrefix(e.URL, c.as.issuer) || e.Status != http.StatusOK {
				t.Errorf("token request %s %s: status %d, want 200 from the AS", e.Method, e.URL, e.Status)
			}
			if e.Form["resource"] != c.g.resource {
				t.Errorf("token request resource = %q, want %q", e.Form["resource"], c.g.resource)
			}
		case strings.HasPrefix(e.URL, c.g.resource) && e.Authorization && (e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden):
			t.Errorf("%s %s with the token: %d", e.Method, e.URL, e.Status)
		}
	}
	if !sawChallenge || !sawASMetadata || !sawTokenRequest {
		t.Errorf("discovery incomplete (401 challenge %v, AS metadata %v, token request %v); trace: %+v",
			sawChallenge, sawASMetadata, sawTokenRequest, rep.Trace)
	}

	after := c.g.metrics(t)
	if d := after.introspectionTotal() - before.introspectionTotal(); d != 1 {
		t.Errorf("the gateway made %v introspection calls for the npm session, want 1", d)
	}
}
