package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/phantomgate/caddy-phantom-token/examples/mcpserver"
)

// saveNoteCall is a tools/call of save_note as a 2026-07-28 client sends
// it: the body, and the Mcp-Method and Mcp-Name headers mirroring it.
const saveNoteCall = `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"save_note","arguments":{"text":"hello"}}}`

// stepUp shows per-operation authorization: save_note with the first token
// (mcp:tools) is refused by the gateway with 403 and a challenge naming
// every scope the call needs; a token with those scopes then succeeds.
func (s *stack) stepUp(ctx context.Context, out io.Writer, res *demoResult, client *http.Client, tokenURL, tok string) error {
	before := s.upstream.stats().requests
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.resource, strings.NewReader(saveNoteCall))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Method", "tools/call")
	req.Header.Set("Mcp-Name", "save_note")
	req.Header.Set("MCP-Protocol-Version", "2026-07-28")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("save_note with the first token: %w", err)
	}
	resp.Body.Close()
	challenge := resp.Header.Get("WWW-Authenticate")
	fmt.Fprintf(out, "  POST tools/call save_note, scope %s  %d  WWW-Authenticate: %s\n", agentScope, resp.StatusCode, challenge)
	params := map[string]string{}
	for _, m := range challengeParam.FindAllStringSubmatch(challenge, -1) {
		params[m[1]] = m[2]
	}
	wantScope := agentScope + " " + mcpserver.WriteScope
	switch {
	case resp.StatusCode != http.StatusForbidden || params["error"] != "insufficient_scope":
		res.fail("save_note with scope %s: status %d, challenge %q; want 403 insufficient_scope", agentScope, resp.StatusCode, challenge)
	case params["scope"] != wantScope:
		res.fail("the 403 challenge names scope %q, want %q", params["scope"], wantScope)
	case s.upstream.stats().requests != before:
		res.fail("the refused save_note reached the MCP server")
	}

	// Step up: a token with the scopes the challenge named.
	tok2, err := s.agentToken(ctx, client, tokenURL, params["scope"])
	if err != nil {
		return err
	}
	s.upstream.watch(tok2)
	fmt.Fprintf(out, "  POST %s  client credentials, scope %s: a second opaque token, %s\n", tokenURL, params["scope"], fingerprint(tok2))

	transport := &bearerTransport{token: tok2, next: &http.Transport{Proxy: nil}}
	session, err := mcp.NewClient(&mcp.Implementation{Name: "quickstart-agent", Version: "1.0.0"}, nil).Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:             s.resource,
		HTTPClient:           &http.Client{Transport: transport, Timeout: 30 * time.Second},
		DisableStandaloneSSE: true,
		MaxRetries:           -1,
	}, nil)
	if err != nil {
		res.fail("MCP initialize with the stepped-up token: %v", err)
		return nil
	}
	result, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "save_note", Arguments: map[string]any{"text": "hello"}})
	if err != nil || result.IsError {
		fmt.Fprintf(out, "  tools/call save_note error: %v %s\n", err, textOf(result))
		res.fail("save_note with scope %s: %v %s", params["scope"], err, textOf(result))
	} else {
		fmt.Fprintf(out, "  tools/call save_note %q (go-sdk client, new connection with the second token)\n", textOf(result))
	}
	if err := session.Close(); err != nil {
		res.fail("closing the second MCP session: %v", err)
	}
	res.mcpRequests = append(res.mcpRequests, transport.requests()...)
	return nil
}
