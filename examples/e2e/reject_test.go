package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// TestSessionIDWithoutTokenIsChallengedNotProxied: an Mcp-Session-Id is never
// a credential. A request that carries a live session's id but no token gets
// the 401 challenge (resource_metadata and scope, no error) and does not
// reach the MCP server; the same request with the token does.
func TestSessionIDWithoutTokenIsChallengedNotProxied(t *testing.T) {
	s := startStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	opaque := s.agentToken(t)
	cs := s.connectGoClient(t, ctx, opaque, goClient{version: sessionVersion})
	defer cs.Close()
	sessionID := cs.ID()
	if sessionID == "" {
		t.Fatal("no Mcp-Session-Id from a real session")
	}
	const list = `{"jsonrpc":"2.0","id":99,"method":"tools/list","params":{}}`
	session := []string{"Mcp-Session-Id", sessionID, "MCP-Protocol-Version", cs.InitializeResult().ProtocolVersion}

	// The client's standalone SSE GET may still be on its way: count POSTs.
	posts := func() int { return s.upstream.CountMethod(http.MethodPost) }
	before := posts()
	resp, _ := s.postMCP(t, list, session...)
	c := s.wantMissingTokenChallenge(t, resp, "session id without a token")
	if got := posts(); got != before {
		t.Errorf("the MCP server received %d POSTs for the unauthenticated one, want 0: %s", got-before, summary(s.upstream.Requests()))
	}

	// The challenge's metadata URL is where the document is.
	mresp, _ := s.do(t, http.MethodGet, c.params["resource_metadata"], "")
	if mresp.StatusCode != http.StatusOK {
		t.Errorf("GET resource_metadata URL from the challenge: status %d, want 200", mresp.StatusCode)
	}

	// Control: the very same request with the token is served, so the
	// session id was valid and only the token was missing.
	resp, body := s.postMCP(t, list, append(session, "Authorization", "Bearer "+opaque)...)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("same request with the token: status %d, want 200 (body %.200s)", resp.StatusCode, body)
	}
	if got := posts(); got != before+1 {
		t.Errorf("with the token, %d requests reached the MCP server, want 1", got-before)
	}
}

// TestTokenForAnotherResourceIsInvalidToken: a token the AS issued for
// another resource (RFC 8707) is rejected with 401 invalid_token, on the
// first request (introspected) and on the next one (cached), and never
// reaches the MCP server.
func TestTokenForAnotherResourceIsInvalidToken(t *testing.T) {
	s := startStack(t)
	other := s.token(t, agentID, agentSecret, scopeTools, s.otherResource)
	s.as.ResetIntrospectionCalls()

	for _, attempt := range []string{"introspected", "cached"} {
		resp, _ := s.postMCP(t, initializeMessage, "Authorization", "Bearer "+other)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s: token for %s: status %d, want 401", attempt, s.otherResource, resp.StatusCode)
		}
		c := bearerChallenge(t, resp)
		c.wantParam(t, "error", "invalid_token")
		c.wantParam(t, "resource_metadata", s.metadataURL)
	}
	if n := s.upstream.Count(); n != 0 {
		t.Errorf("%d requests with a wrong-audience token reached the MCP server: %s", n, summary(s.upstream.Requests()))
	}
	s.wantIntrospections(t, 1)

	// Control: the same client's token for this resource is accepted.
	resp, body := s.postMCP(t, initializeMessage, "Authorization", "Bearer "+s.agentToken(t))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token for this resource: status %d, want 200 (body %.200s)", resp.StatusCode, body)
	}
}

// TestTokenWithoutRequiredScopeIsInsufficientScope: an active token for this
// resource that lacks mcp:tools gets 403 insufficient_scope naming the scope,
// and does not reach the MCP server.
func TestTokenWithoutRequiredScopeIsInsufficientScope(t *testing.T) {
	s := startStack(t)
	reader := s.token(t, readerID, readerSecret, "docs:read", s.resource)

	resp, _ := s.postMCP(t, initializeMessage, "Authorization", "Bearer "+reader)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("token without %s: status %d, want 403", scopeTools, resp.StatusCode)
	}
	c := bearerChallenge(t, resp)
	c.wantParam(t, "error", "insufficient_scope")
	c.wantParam(t, "scope", scopeTools)
	c.wantParam(t, "resource_metadata", s.metadataURL)
	if n := s.upstream.Count(); n != 0 {
		t.Errorf("%d requests with an insufficient token reached the MCP server", n)
	}
	s.wantIntrospections(t, 1)
}

// TestRequestWithoutTokenIsChallenged: the first request of an MCP client
// that has no token yet (what starts discovery) gets 401 with
// resource_metadata and scope and no error, and the AS is not asked.
func TestRequestWithoutTokenIsChallenged(t *testing.T) {
	s := startStack(t)
	resp, _ := s.postMCP(t, initializeMessage)
	s.wantMissingTokenChallenge(t, resp, "no token")
	s.wantIntrospections(t, 0)
	if n := s.upstream.Count(); n != 0 {
		t.Errorf("%d requests without a token reached the MCP server", n)
	}
}

// wantMissingTokenChallenge checks the answer to a request that carried no
// token: 401 with a challenge naming the metadata and the scope, and no
// error code (RFC 6750 §3.1: none when the request had no credentials).
// It returns the challenge.
func (s *stack) wantMissingTokenChallenge(t *testing.T, resp *http.Response, what string) challenge {
	t.Helper()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("%s: status %d, want 401", what, resp.StatusCode)
	}
	c := bearerChallenge(t, resp)
	c.wantParam(t, "resource_metadata", s.metadataURL)
	c.wantParam(t, "scope", scopeTools)
	c.wantNoParam(t, "error")
	return c
}
