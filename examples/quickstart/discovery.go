package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/phantomgate/caddy-phantom-token/examples/demoas"
)

// metadataPath is where the gateway serves the protected resource metadata
// of the resource http://host:port/mcp (RFC 9728 §3.1).
const metadataPath = "/.well-known/oauth-protected-resource/mcp"

// initializeBody is an MCP initialize request, for the unauthenticated probe.
const initializeBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}`

// challengeParam matches one auth-param of a WWW-Authenticate challenge.
var challengeParam = regexp.MustCompile(`([a-z_]+)="([^"]*)"`)

// probe calls the MCP endpoint without a token, as an MCP client's first
// request, and returns the resource_metadata URL the 401 challenge names.
func (s *stack) probe(ctx context.Context, client *http.Client, out io.Writer, res *demoResult) string {
	before := s.upstream.stats().requests
	resp, _, err := s.send(ctx, client, http.MethodPost, s.resource, initializeBody, "")
	if err != nil {
		fmt.Fprintf(out, "  POST /mcp  no token  error: %v\n", err)
		res.fail("call without a token: %v", err)
		return ""
	}
	challenge := resp.Header.Get("WWW-Authenticate")
	fmt.Fprintf(out, "  POST /mcp  no token  %d  WWW-Authenticate: %s\n", resp.StatusCode, challenge)

	params := map[string]string{}
	for _, m := range challengeParam.FindAllStringSubmatch(challenge, -1) {
		params[m[1]] = m[2]
	}
	wantMetadata := s.gatewayURL + metadataPath
	switch {
	case resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(challenge, "Bearer "):
		res.fail("call without a token: status %d, WWW-Authenticate %q; want 401 with a Bearer challenge", resp.StatusCode, challenge)
	case params["resource_metadata"] != wantMetadata:
		res.fail("the 401 challenge names resource_metadata %q, want %q", params["resource_metadata"], wantMetadata)
	case params["scope"] != agentScope:
		res.fail("the 401 challenge names scope %q, want %q", params["scope"], agentScope)
	case params["error"] != "":
		res.fail("the 401 challenge for a request without a token carries error=%q", params["error"])
	}
	if s.upstream.stats().requests != before {
		res.fail("the call without a token reached the MCP server")
	}
	return params["resource_metadata"]
}

// protectedResource is the part of the RFC 9728 document the demo uses.
type protectedResource struct {
	Resource             string   `json:"resource"`
	AuthorizationServers []string `json:"authorization_servers"`
}

// resourceMetadata fetches the protected resource metadata, prints it, and
// returns the authorization server it names ("" when it names none).
func (s *stack) resourceMetadata(ctx context.Context, client *http.Client, out io.Writer, res *demoResult, metadataURL string) string {
	if metadataURL == "" {
		metadataURL = s.gatewayURL + metadataPath
	}
	u, err := url.Parse(metadataURL)
	if err != nil || !strings.HasPrefix(metadataURL, s.gatewayURL+"/") {
		res.fail("resource_metadata %q is not on the gateway", metadataURL)
		return ""
	}
	resp, body, err := s.send(ctx, client, http.MethodGet, metadataURL, "", "")
	if err != nil {
		fmt.Fprintf(out, "  GET  %s  error: %v\n", u.Path, err)
		res.fail("GET %s: %v", u.Path, err)
		return ""
	}
	fmt.Fprintf(out, "  GET  %s  %d  %s\n", u.Path, resp.StatusCode, resp.Header.Get("Content-Type"))
	var doc protectedResource
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &doc) != nil {
		res.fail("GET %s: status %d, not a JSON document", u.Path, resp.StatusCode)
		return ""
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, body, "    ", "  ") == nil {
		fmt.Fprintf(out, "    %s\n", strings.TrimSpace(pretty.String()))
	}
	if doc.Resource != s.resource {
		res.fail("the metadata names resource %q, want %q", doc.Resource, s.resource)
	}
	if !slices.Contains(doc.AuthorizationServers, s.as.Issuer) {
		res.fail("the metadata's authorization_servers %v lack the demo AS %s", doc.AuthorizationServers, s.as.Issuer)
		return ""
	}
	return s.as.Issuer
}

// tokenEndpoint reads the authorization server's RFC 8414 metadata and
// returns its token endpoint.
func (s *stack) tokenEndpoint(ctx context.Context, client *http.Client, out io.Writer, res *demoResult, issuer string) string {
	fallback := s.as.URL + demoas.TokenPath
	if issuer == "" {
		return fallback
	}
	resp, body, err := s.send(ctx, client, http.MethodGet, issuer+demoas.MetadataPath, "", "")
	var meta struct {
		TokenEndpoint string `json:"token_endpoint"`
	}
	if err != nil || resp.StatusCode != http.StatusOK || json.Unmarshal(body, &meta) != nil || meta.TokenEndpoint == "" {
		res.fail("the authorization server metadata at %s has no token_endpoint", issuer+demoas.MetadataPath)
		return fallback
	}
	fmt.Fprintf(out, "  GET  %s%s  token_endpoint %s\n", issuer, demoas.MetadataPath, meta.TokenEndpoint)
	return meta.TokenEndpoint
}

// agentToken gets an access token for the agent by client credentials, for
// the resource (RFC 8707), with the given scopes.
func (s *stack) agentToken(ctx context.Context, client *http.Client, tokenURL, scope string) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {scope}, "resource": {s.resource}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(agentClientID, s.agentSecret)
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("token request: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("token request: status %d", resp.StatusCode)
	}
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil || body.AccessToken == "" {
		return "", fmt.Errorf("token request: no access_token in the response (%v)", err)
	}
	return body.AccessToken, nil
}

// send sends one request; body "" sends none, tok "" no Authorization. It
// returns the response with its body read.
func (s *stack) send(ctx context.Context, client *http.Client, method, u, body, tok string) (*http.Response, []byte, error) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return nil, nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, nil, err
	}
	return resp, b, nil
}
