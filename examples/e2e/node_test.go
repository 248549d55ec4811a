package e2e

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/phantomgate/caddy-phantom-token/examples/demoas"
	"github.com/phantomgate/caddy-phantom-token/examples/internal/nodeclient"
)

// wantToolsAndClaims checks the common part of a node report.
func (s *stack) wantToolsAndClaims(t *testing.T, rep nodeclient.Report) {
	t.Helper()
	for _, want := range []string{"whoami", "countdown"} {
		if !slices.Contains(rep.Tools, want) {
			t.Errorf("tools/list = %v, want it to contain %s", rep.Tools, want)
		}
	}
	s.wantAgentClaims(t, whoamiClaims(t, rep.Whoami))
	if rep.SessionID == "" {
		t.Error("the npm client got no Mcp-Session-Id")
	}
}

// TestNodeSDKClientWithStaticToken: the npm MCP SDK client with an opaque
// bearer token: initialize, tools/list and whoami succeed through the
// gateway, the MCP server sees only JWTs, the session's DELETE arrives, and
// the gateway introspects once.
func TestNodeSDKClientWithStaticToken(t *testing.T) {
	nodeclient.Require(t)
	s := startStack(t)
	opaque := s.agentToken(t)
	s.as.ResetIntrospectionCalls()

	rep := nodeclient.Run(t, "static-token.mjs", s.resource, opaque)

	s.wantToolsAndClaims(t, rep)
	for _, e := range rep.Trace {
		if strings.HasPrefix(e.URL, s.resource) && (!e.Authorization || e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden) {
			t.Errorf("npm client request %s %s: authorization=%v status=%d", e.Method, e.URL, e.Authorization, e.Status)
		}
	}
	reqs := s.upstream.Requests()
	wantUpstreamSawOnlyJWTs(t, reqs, opaque)
	wantSessionDeleted(t, reqs, rep.SessionID)
	s.wantIntrospections(t, 1)
}

// TestNodeSDKClientCredentialsDiscovery: the npm SDK's
// ClientCredentialsProvider starts with no token and finds everything
// itself: the gateway's 401 names the protected resource metadata, the
// document names the AS, the AS metadata names the token endpoint, the token
// is requested for this resource (RFC 8707), and the retried calls succeed.
func TestNodeSDKClientCredentialsDiscovery(t *testing.T) {
	nodeclient.Require(t)
	s := startStack(t)
	s.as.ResetIntrospectionCalls()

	rep := nodeclient.Run(t, "client-credentials.mjs", s.resource, agentID, agentSecret, scopeTools, s.as.Issuer)

	// The audience is exactly this resource although the agent may also get
	// tokens for another one: the SDK sent resource=<this resource>.
	s.wantToolsAndClaims(t, rep)

	// The discovery, in order, as the SDK made it.
	steps := []struct {
		what   string
		match  func(nodeclient.TraceEntry) bool
		status int
	}{
		{"first MCP request, without a token", func(e nodeclient.TraceEntry) bool {
			return e.Method == http.MethodPost && e.URL == s.resource && !e.Authorization
		}, http.StatusUnauthorized},
		{"protected resource metadata from the challenge", func(e nodeclient.TraceEntry) bool {
			return e.Method == http.MethodGet && e.URL == s.metadataURL
		}, http.StatusOK},
		{"authorization server metadata", func(e nodeclient.TraceEntry) bool {
			return e.Method == http.MethodGet && e.URL == s.as.URL+demoas.MetadataPath
		}, http.StatusOK},
		{"client-credentials token request for the resource", func(e nodeclient.TraceEntry) bool {
			return e.Method == http.MethodPost && e.URL == s.as.URL+demoas.TokenPath &&
				e.Form["grant_type"] == "client_credentials" && e.Form["resource"] == s.resource && e.Form["scope"] == scopeTools
		}, http.StatusOK},
		{"MCP request with the token", func(e nodeclient.TraceEntry) bool {
			return e.Method == http.MethodPost && e.URL == s.resource && e.Authorization
		}, http.StatusOK},
	}
	next := 0
	for _, step := range steps {
		i := slices.IndexFunc(rep.Trace[next:], step.match)
		if i < 0 {
			t.Fatalf("discovery step %q not found after request %d; trace:\n%s", step.what, next, mustJSON(t, rep.Trace))
		}
		if got := rep.Trace[next+i].Status; got != step.status {
			t.Errorf("discovery step %q: status %d, want %d", step.what, got, step.status)
		}
		next += i + 1
	}
	for _, e := range rep.Trace[next:] {
		if strings.HasPrefix(e.URL, s.resource) && (e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden) {
			t.Errorf("after discovery, %s %s got %d", e.Method, e.URL, e.Status)
		}
	}

	// The gateway's side of it: Caddy served the metadata document, and the
	// first /mcp request it handled was the 401.
	metadataPath := strings.TrimPrefix(s.metadataURL, s.gatewayURL)
	entries := s.waitAccessLog(t, func(es []accessEntry) bool {
		return slices.ContainsFunc(es, func(e accessEntry) bool { return e.Request.Method == http.MethodDelete })
	})
	if !slices.ContainsFunc(entries, func(e accessEntry) bool {
		return e.Request.Method == http.MethodGet && e.Request.URI == metadataPath && e.Status == http.StatusOK
	}) {
		t.Errorf("Caddy's access log has no 200 GET %s: %+v", metadataPath, entries)
	}
	if i := slices.IndexFunc(entries, func(e accessEntry) bool { return e.Request.URI == "/mcp" }); i < 0 || entries[i].Status != http.StatusUnauthorized {
		t.Errorf("Caddy's first /mcp request was not the 401 challenge: %+v", entries)
	}

	reqs := s.upstream.Requests()
	for i, r := range reqs {
		if typ := joseType(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")); typ == "" {
			t.Errorf("upstream request %d (%s) carried no JWT", i, r.Method)
		}
	}
	wantSessionDeleted(t, reqs, rep.SessionID)
	s.wantIntrospections(t, 1)
}
