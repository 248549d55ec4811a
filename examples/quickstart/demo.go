package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/phantomgate/caddy-phantom-token/examples/mcpserver"
)

// demoResult is what the demo found out.
type demoResult struct {
	token       string         // the agent's opaque token
	claims      map[string]any // what whoami returned: the claims the MCP server verified
	mcpRequests []string       // the MCP client's HTTP requests, "POST 200"…
	upstream    upstreamStats  // what reached the MCP server
	introCalls  int64          // introspection requests the AS served
	failures    []string       // expectations that did not hold
}

func (r *demoResult) fail(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

// demo walks an MCP client's way through the gateway: the 401 challenge,
// the protected resource metadata, the authorization server's metadata, a
// token for the resource, then an MCP session with that opaque token. It
// reports what the MCP server and the AS saw. It returns an error only when
// it cannot run at all; unmet expectations are in the result.
func (s *stack) demo(ctx context.Context, out io.Writer) (*demoResult, error) {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}
	res := &demoResult{}

	fmt.Fprintf(out, "phantom token quickstart\n\n")
	fmt.Fprintf(out, "  authorization server  %-28s  demo AS (ory/fosite), clients %q and %q\n", s.as.URL, gatewayClientID, agentClientID)
	fmt.Fprintf(out, "  MCP server            %-28s  go-sdk, validates the JWTs itself (JWKS, iss, aud, exp, typ)\n", "http://"+s.upstreamAddr+"/mcp")
	fmt.Fprintf(out, "  gateway               %-28s  Caddy + phantom_token, %s\n", s.gatewayURL, s.caddyfile)
	fmt.Fprintf(out, "  MCP URL (resource)    %s\n\n", s.resource)

	fmt.Fprintf(out, "discovery, as an MCP client does it\n")
	metadataURL := s.probe(ctx, client, out, res)
	issuer := s.resourceMetadata(ctx, client, out, res, metadataURL)
	tokenURL := s.tokenEndpoint(ctx, client, out, res, issuer)

	tok, err := s.agentToken(ctx, client, tokenURL, agentScope)
	if err != nil {
		return nil, err
	}
	res.token = tok
	s.upstream.watch(tok)
	fmt.Fprintf(out, "  POST %s  client credentials, scope %s, resource %s\n", tokenURL, agentScope, s.resource)
	fmt.Fprintf(out, "       an opaque access token: %d characters, %s\n\n", len(tok), fingerprint(tok))

	fmt.Fprintf(out, "MCP session through the gateway (go-sdk client, Authorization: Bearer <opaque>)\n")
	s.mcpSession(ctx, out, res, tok)

	fmt.Fprintf(out, "\nstep-up: save_note needs %s (mcp_operation in the Caddyfile)\n", mcpserver.WriteScope)
	if err := s.stepUp(ctx, out, res, client, tokenURL, tok); err != nil {
		return nil, err
	}

	s.report(out, res)
	return res, nil
}

// report checks and prints what reached the MCP server and the AS.
func (s *stack) report(out io.Writer, res *demoResult) {
	res.upstream = s.upstream.stats()
	up := res.upstream
	fmt.Fprintf(out, "\nwhat the MCP server received\n")
	fmt.Fprintf(out, "  %d requests, %d with Authorization: Bearer <JWT>\n", up.requests, up.jwts)
	switch {
	case up.leaked:
		fmt.Fprintf(out, "  opaque token  PRESENT in a request to the MCP server\n")
		res.fail("the opaque token reached the MCP server")
	default:
		fmt.Fprintf(out, "  opaque token  in no header and no URL: the MCP server never saw it\n")
	}
	if up.requests == 0 || up.jwts != up.requests {
		res.fail("%d of %d requests to the MCP server carried a Bearer JWT, want all", up.jwts, up.requests)
	}
	if up.requests != len(res.mcpRequests) {
		res.fail("the MCP client sent %d requests, the MCP server received %d", len(res.mcpRequests), up.requests)
	}

	res.introCalls = s.as.IntrospectionCalls()
	fmt.Fprintf(out, "\nintrospection calls served by the AS: %d\n", res.introCalls)
	if res.introCalls == 2 {
		fmt.Fprintf(out, "  %d authorized HTTP requests with 2 tokens, 1 introspection each: the other %d were answered from the gateway cache\n",
			up.requests, max(up.requests-2, 0))
	} else {
		res.fail("the AS served %d introspection calls, want exactly 2 (one per token)", res.introCalls)
	}

	if len(res.failures) == 0 {
		fmt.Fprintf(out, "\nall checks passed\n")
		return
	}
	fmt.Fprintf(out, "\nFAILED\n")
	for _, f := range res.failures {
		fmt.Fprintf(out, "  - %s\n", f)
	}
}

// fingerprint returns a short SHA-256 fingerprint, to refer to a token
// without showing it.
func fingerprint(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return "sha256:" + hex.EncodeToString(sum[:4])
}
