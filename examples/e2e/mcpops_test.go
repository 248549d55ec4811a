package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/phantomgate/caddy-phantom-token/examples/internal/gatewaytest"
	"github.com/phantomgate/caddy-phantom-token/examples/internal/nodeclient"
)

// The per-operation rule of the stack's Caddyfile: save_note needs
// scopeWrite (or scopeAdmin, which implies it) on top of scopeTools, and the
// challenge names every scope the call needs.
const (
	writeTool      = "save_note"
	writeChallenge = scopeTools + " " + scopeWrite
)

// sentRequest is one request the go-sdk client sent through the gateway and
// the gateway's answer.
type sentRequest struct {
	method, protocol   string // the HTTP method, MCP-Protocol-Version
	mcpMethod          string // the Mcp-Method header
	mcpName            string // the Mcp-Name header
	rpcMethod, rpcName string // the body's method and params.name
	status             int
	challenge          string // WWW-Authenticate
}

// sendLog records what the go-sdk client sent and got back.
type sendLog struct {
	mu   sync.Mutex
	sent []sentRequest
}

func (l *sendLog) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		e := sentRequest{
			method:    r.Method,
			protocol:  r.Header.Get("MCP-Protocol-Version"),
			mcpMethod: r.Header.Get("Mcp-Method"),
			mcpName:   r.Header.Get("Mcp-Name"),
		}
		if r.Body != nil && r.GetBody != nil {
			if body, err := r.GetBody(); err == nil {
				raw, _ := io.ReadAll(body)
				body.Close()
				var msg struct {
					Method string `json:"method"`
					Params struct {
						Name string `json:"name"`
					} `json:"params"`
				}
				if json.Unmarshal(bytes.TrimSpace(raw), &msg) == nil {
					e.rpcMethod, e.rpcName = msg.Method, msg.Params.Name
				}
			}
		}
		resp, err := next.RoundTrip(r)
		if resp != nil {
			e.status = resp.StatusCode
			e.challenge = resp.Header.Get("WWW-Authenticate")
		}
		l.mu.Lock()
		l.sent = append(l.sent, e)
		l.mu.Unlock()
		return resp, err
	})
}

// calls returns the tools/call requests for tool.
func (l *sendLog) calls(tool string) []sentRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []sentRequest
	for _, e := range l.sent {
		if e.rpcMethod == "tools/call" && e.rpcName == tool {
			out = append(out, e)
		}
	}
	return out
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// wantWriteChallenge checks a 403 from the gateway for save_note: one Bearer
// challenge naming every scope the call needs and the metadata.
func (s *stack) wantWriteChallenge(t *testing.T, header string) {
	t.Helper()
	c, err := parseChallenge(header)
	if err != nil || !strings.EqualFold(c.scheme, "Bearer") {
		t.Fatalf("WWW-Authenticate %q: want one Bearer challenge (%v)", header, err)
	}
	c.wantParam(t, "error", "insufficient_scope")
	c.wantParam(t, "scope", writeChallenge)
	c.wantParam(t, "resource_metadata", s.metadataURL)
}

// upstreamSawNoCallTo fails if a request naming tool in Mcp-Name reached the
// MCP server.
func upstreamSawNoCallTo(t *testing.T, reqs []gatewaytest.Request, tool string) {
	t.Helper()
	for _, r := range reqs {
		if r.Header.Get("Mcp-Name") == tool {
			t.Errorf("a request for %s reached the MCP server (status %d)", tool, r.Status)
		}
	}
}

// TestGoSDKClientPerOperationScopes: the go-sdk client (2026-07-28, so it
// mirrors method and tool name into Mcp-Method/Mcp-Name) through a route
// with an mcp_operation rule. A token with mcp:tools lists the tools and
// calls the read tool; the write tool gets 403 naming every scope it needs
// and never reaches the MCP server; a token with those scopes (the step-up)
// and a token with the implying scope both succeed.
func TestGoSDKClientPerOperationScopes(t *testing.T) {
	s := startStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s.as.ResetIntrospectionCalls()

	t.Run("mcp:tools: read tool yes, write tool 403", func(t *testing.T) {
		var log sendLog
		cs := s.connectGoClient(t, ctx, s.agentToken(t), goClient{wrap: log.wrap})
		defer cs.Close()
		res, err := cs.ListTools(ctx, nil)
		if err != nil {
			t.Fatalf("tools/list: %v", err)
		}
		if !slices.ContainsFunc(res.Tools, func(tool *mcp.Tool) bool { return tool.Name == writeTool }) {
			t.Errorf("tools/list does not show %s", writeTool)
		}
		claims, err := gatewaytest.Whoami(ctx, cs)
		if err != nil {
			t.Fatalf("tools/call whoami: %v", err)
		}
		s.wantAgentClaims(t, claims)

		_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: writeTool, Arguments: map[string]any{"text": "x"}})
		if err == nil {
			t.Fatalf("tools/call %s with only %s succeeded", writeTool, scopeTools)
		}
		calls := log.calls(writeTool)
		if len(calls) != 1 {
			t.Fatalf("the client sent %d tools/call %s requests, want 1", len(calls), writeTool)
		}
		got := calls[0]
		if got.status != http.StatusForbidden {
			t.Fatalf("tools/call %s: status %d, want 403", writeTool, got.status)
		}
		s.wantWriteChallenge(t, got.challenge)
		// The headers the gateway checked against the body: this client
		// speaks 2026-07-28.
		if got.mcpMethod != "tools/call" || got.mcpName != writeTool || got.protocol < "2026-07-28" {
			t.Errorf("the go-sdk sent Mcp-Method %q, Mcp-Name %q, MCP-Protocol-Version %q; want tools/call, %s, 2026-07-28 or later",
				got.mcpMethod, got.mcpName, got.protocol, writeTool)
		}
		reqs := s.upstream.Requests()
		upstreamSawNoCallTo(t, reqs, writeTool)
		// The read tool's request reached the MCP server with its headers.
		if !slices.ContainsFunc(reqs, func(r gatewaytest.Request) bool {
			return r.Header.Get("Mcp-Method") == "tools/call" && r.Header.Get("Mcp-Name") == "whoami" && r.Status == http.StatusOK
		}) {
			t.Errorf("no tools/call whoami with Mcp-Method/Mcp-Name reached the MCP server: %s", summary(reqs))
		}
	})

	// The step-up the challenge asks for: a token with its scopes.
	for _, tc := range []struct{ name, client, secret, scope string }{
		{"step-up token with " + writeChallenge, agentID, agentSecret, writeChallenge},
		{"token with the implying " + scopeAdmin, adminID, adminSecret, scopeTools + " " + scopeAdmin},
	} {
		t.Run(tc.name+": write tool succeeds", func(t *testing.T) {
			token := s.token(t, tc.client, tc.secret, tc.scope, s.resource)
			cs := s.connectGoClient(t, ctx, token, goClient{})
			defer cs.Close()
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: writeTool, Arguments: map[string]any{"text": "x"}})
			if err != nil {
				t.Fatalf("tools/call %s: %v", writeTool, err)
			}
			if res.IsError || len(res.Content) == 0 {
				t.Fatalf("tools/call %s: isError=%v content=%v", writeTool, res.IsError, res.Content)
			}
			if text, ok := res.Content[0].(*mcp.TextContent); !ok || !strings.HasPrefix(text.Text, "saved (") {
				t.Errorf("tools/call %s: content %v, want \"saved (…)\"", writeTool, res.Content)
			}
		})
	}
	// One introspection per token, the refused call included.
	s.wantIntrospections(t, 3)
}

// nodeSaveNote runs save-note.mjs and checks the part every run shares: the
// tools are listed (save_note among them) and whoami returned the claims.
func (s *stack) nodeSaveNote(t *testing.T, args ...string) nodeclient.Report {
	t.Helper()
	rep := nodeclient.Run(t, "save-note.mjs", append([]string{s.resource}, args...)...)
	if !slices.Contains(rep.Tools, writeTool) {
		t.Errorf("tools/list = %v, want it to contain %s", rep.Tools, writeTool)
	}
	whoamiClaims(t, rep.Whoami)
	if rep.SaveNote == nil {
		t.Fatal("save-note.mjs reported no save_note outcome")
	}
	return rep
}

// mcpCalls returns the trace entries of tools/call requests for tool sent to
// the MCP endpoint.
func (s *stack) mcpCalls(rep nodeclient.Report, tool string) []nodeclient.TraceEntry {
	var out []nodeclient.TraceEntry
	for _, e := range rep.Trace {
		if e.URL == s.resource && e.RPCMethod == "tools/call" && e.RPCName == tool {
			out = append(out, e)
		}
	}
	return out
}

// wantRefusedPostsNotForwarded checks that every POST of the npm client's
// run that the gateway did not refuse reached the MCP server, and no other:
// the npm SDK sends no Mcp-Name, so the upstream's requests cannot be told
// apart by tool; reqs are the upstream's requests of this run.
func (s *stack) wantRefusedPostsNotForwarded(t *testing.T, rep nodeclient.Report, reqs []gatewaytest.Request) {
	t.Helper()
	posts, refused := 0, 0
	for _, e := range rep.Trace {
		if e.URL == s.resource && e.Method == http.MethodPost {
			posts++
			if e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden {
				refused++
			}
		}
	}
	upstreamPosts := 0
	for _, r := range reqs {
		if r.Method == http.MethodPost {
			upstreamPosts++
		}
	}
	if upstreamPosts != posts-refused {
		t.Errorf("%d POSTs reached the MCP server, want %d (the client's %d less the %d the gateway refused)",
			upstreamPosts, posts-refused, posts, refused)
	}
}

// TestNodeSDKClientPerOperationScopes: the npm SDK client speaks an older
// protocol version and sends no Mcp-Method/Mcp-Name, so the gateway
// classifies its requests from the body alone. mcp:tools lists the tools and
// calls the read tool; the write tool gets 403 with the full scope set and
// never reaches the MCP server; the implying scope succeeds.
func TestNodeSDKClientPerOperationScopes(t *testing.T) {
	nodeclient.Require(t)
	s := startStack(t)

	t.Run("mcp:tools: write tool 403", func(t *testing.T) {
		before := s.upstream.Count()
		rep := s.nodeSaveNote(t, "static", s.agentToken(t))
		if rep.SaveNote.OK {
			t.Fatalf("save_note with only %s succeeded: %+v", scopeTools, rep.SaveNote)
		}
		calls := s.mcpCalls(rep, writeTool)
		if len(calls) != 1 || calls[0].Status != http.StatusForbidden {
			t.Fatalf("tools/call %s requests: %+v, want one answered 403", writeTool, calls)
		}
		s.wantWriteChallenge(t, calls[0].Challenge)

		reqs := s.upstream.Since(before)
		s.wantRefusedPostsNotForwarded(t, rep, reqs)
		// Body-only classification: no request carried the headers, and
		// the protocol version is older than 2026-07-28.
		for _, r := range reqs {
			if r.Method != http.MethodPost {
				continue
			}
			if r.Header.Get("Mcp-Method") != "" || r.Header.Get("Mcp-Name") != "" {
				t.Errorf("the npm SDK sent Mcp-Method %q / Mcp-Name %q; this test is about body-only classification",
					r.Header.Get("Mcp-Method"), r.Header.Get("Mcp-Name"))
			}
			if v := r.Header.Get("MCP-Protocol-Version"); v >= "2026-07-28" {
				t.Errorf("the npm SDK negotiated %s; this test is about an older protocol version", v)
			}
		}
	})

	t.Run("the implying scope: write tool succeeds", func(t *testing.T) {
		token := s.token(t, adminID, adminSecret, scopeTools+" "+scopeAdmin, s.resource)
		rep := s.nodeSaveNote(t, "static", token)
		if !rep.SaveNote.OK || !strings.HasPrefix(rep.SaveNote.Text, "saved (") {
			t.Errorf("save_note with %s: %+v, want \"saved (…)\"", scopeAdmin, rep.SaveNote)
		}
	})
}

// TestNodeSDKClientCredentialsDoesNotStepUp pins what the npm SDK's
// ClientCredentialsProvider does after a 403 insufficient_scope, as the
// README states it: the transport asks the provider for a new token, but the
// provider requests its configured scope, not the challenged one (the
// challenged scope reaches only the interactive authorization request), so
// the retry is refused again and the call fails with "Server returned 403
// after trying upscoping". The agent may get mcp:write, so the failure is
// the SDK's choice of scope, not the AS's refusal. If an SDK upgrade makes
// this test fail because the call now succeeds, update the README
// ("Per-operation authorization (MCP)") and turn this into a success test.
func TestNodeSDKClientCredentialsDoesNotStepUp(t *testing.T) {
	nodeclient.Require(t)
	s := startStack(t)

	rep := s.nodeSaveNote(t, "client-credentials", agentID, agentSecret, scopeTools, s.as.Issuer)

	calls := s.mcpCalls(rep, writeTool)
	if len(calls) == 0 || calls[0].Status != http.StatusForbidden {
		t.Fatalf("tools/call %s requests: %+v, want the first answered 403", writeTool, calls)
	}
	s.wantWriteChallenge(t, calls[0].Challenge)

	var scopes []string
	for _, e := range rep.Trace {
		if e.Form["grant_type"] == "client_credentials" {
			scopes = append(scopes, e.Form["scope"])
		}
	}
	if rep.SaveNote.OK || slices.ContainsFunc(scopes, func(sc string) bool { return strings.Contains(sc, scopeWrite) }) {
		t.Fatalf("the npm SDK stepped up (token requests with scopes %q, save_note %+v): update the README and this test", scopes, rep.SaveNote)
	}
	// The documented behaviour: a second token request for the configured
	// scope after the 403, the retry refused, and the SDK's error.
	if len(scopes) != 2 || scopes[1] != scopeTools {
		t.Errorf("token requests with scopes %q, want two, both %q", scopes, scopeTools)
	}
	if len(calls) != 2 || calls[1].Status != http.StatusForbidden {
		t.Errorf("tools/call %s requests: %+v, want the retry refused too", writeTool, calls)
	}
	if !strings.Contains(rep.SaveNote.Error, "403 after trying upscoping") {
		t.Errorf("save_note error %q, want the SDK's \"403 after trying upscoping\"", rep.SaveNote.Error)
	}
	s.wantRefusedPostsNotForwarded(t, rep, s.upstream.Requests())
}
