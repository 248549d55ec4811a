package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phantomgate/caddy-phantom-token/examples/demoas"
	"github.com/phantomgate/caddy-phantom-token/examples/internal/gatewaytest"
	"github.com/phantomgate/caddy-phantom-token/examples/mcpserver"
)

// The clients registered at the demo authorization server.
const (
	scopeTools = "mcp:tools"
	scopeWrite = "mcp:write" // save_note needs it (mcp_operation)
	scopeAdmin = "mcp:admin" // implies scopeWrite (scope_implies)

	gatewayID     = "gateway" // the gateway's own client, for introspection
	gatewaySecret = "gateway-secret"
	agentID       = "agent" // has mcp:tools and mcp:write; may get tokens for this resource or another one
	agentSecret   = "agent-secret"
	adminID       = "admin" // has mcp:tools and mcp:admin
	adminSecret   = "admin-secret"
	readerID      = "reader" // has another scope only
	readerSecret  = "reader-secret"

	resourceName = "Phantom e2e MCP server"
)

// stack is one end-to-end setup on 127.0.0.1: the demo authorization server,
// the example MCP server behind a recorder, and Caddy running the gateway.
type stack struct {
	as       *demoas.Server
	upstream *gatewaytest.Recorder

	gatewayURL    string // http://127.0.0.1:PORT
	resource      string // the MCP endpoint through the gateway: gatewayURL + "/mcp"
	metadataURL   string // its RFC 9728 metadata document
	otherResource string // another resource the agent may get tokens for
	accessLog     string // Caddy's JSON access log

	client *http.Client // plain client for raw requests, closed with the stack
}

// startStack starts everything and stops it when the test ends. Caddy is
// process-global: tests in this package must not run in parallel.
func startStack(t *testing.T) *stack {
	t.Helper()
	gwAddr := gatewaytest.FreeLoopbackAddr(t)
	s := &stack{
		gatewayURL:  "http://" + gwAddr,
		resource:    "http://" + gwAddr + "/mcp",
		metadataURL: "http://" + gwAddr + "/.well-known/oauth-protected-resource/mcp",
		// Any other resource the gateway does not serve.
		otherResource: "http://" + gwAddr + "/other-mcp",
		accessLog:     filepath.Join(t.TempDir(), "access.log"),
	}

	as, err := demoas.Start(demoas.Config{Clients: []demoas.Client{
		{ID: gatewayID, Secret: gatewaySecret},
		{ID: agentID, Secret: agentSecret, Scopes: []string{scopeTools, scopeWrite}, Resources: []string{s.resource, s.otherResource}},
		{ID: adminID, Secret: adminSecret, Scopes: []string{scopeTools, scopeAdmin}, Resources: []string{s.resource}},
		{ID: readerID, Secret: readerSecret, Scopes: []string{"docs:read"}, Resources: []string{s.resource}},
	}})
	if err != nil {
		t.Fatalf("starting the demo AS: %v", err)
	}
	t.Cleanup(func() { _ = as.Close() })
	s.as = as

	var upstreamURL string
	s.upstream, upstreamURL = gatewaytest.StartMCPServer(t, mcpserver.Config{
		JWKSURL:  as.URL + demoas.JWKSPath,
		Issuer:   as.Issuer,
		Resource: s.resource,
	})

	tr := http.DefaultTransport.(*http.Transport).Clone()
	s.client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)

	cfg := strings.NewReplacer(
		"{LISTEN_PORT}", portOf(t, gwAddr),
		"{AS}", as.URL,
		"{ISSUER}", as.Issuer,
		"{RESOURCE}", s.resource,
		"{RESOURCE_NAME}", resourceName,
		"{UPSTREAM}", strings.TrimPrefix(upstreamURL, "http://"),
		"{ACCESS_LOG}", s.accessLog,
		"{DEBUG_LOG}", debugLog.GlobalLog(),
	).Replace(caddyfileTemplate)
	stacksStarted.Add(1)
	// Loaded last, so its stop (a cleanup) runs first: Caddy stops before the
	// upstream and the AS, and before the temporary directory of the access
	// log goes.
	var c gatewaytest.Caddy
	c.Load(t, cfg, nil)
	return s
}

// caddyfileTemplate is the gateway: the Curity-style introspection of the
// demo AS, the MCP resource with its metadata and required scope, the
// per-operation rule for save_note (so every test here also runs with the
// request bodies classified), and a reverse proxy that keeps server-sent
// events unbuffered. scopes_supported is left to its default: required_scopes
// and the rules' scopes.
const caddyfileTemplate = `{
	admin off
	auto_https off
	persist_config off
	{DEBUG_LOG}
}

# No host in the site address: every Host reaches this site, so a spoofed
# Host cannot route around the gateway (and must not change the metadata).
http://:{LISTEN_PORT} {
	bind 127.0.0.1
	log {
		output file {ACCESS_LOG}
		format json
	}

	phantom_token {
		introspection_endpoint {AS}/oauth2/introspect
		client_id ` + gatewayID + `
		client_secret ` + gatewaySecret + `
		introspection_format jwt
		as_jwks_uri {AS}/.well-known/jwks.json
		issuer {ISSUER}

		resource {RESOURCE}
		authorization_server {ISSUER}
		resource_name "{RESOURCE_NAME}"
		required_scopes ` + scopeTools + `
		mcp_operation tools/call save_note {
			scopes ` + scopeWrite + `
		}
		scope_implies ` + scopeAdmin + ` ` + scopeWrite + `

		cache {
			max_ttl 5m
		}
		timeout 5s
	}

	reverse_proxy {UPSTREAM} {
		header_up Host {upstream_hostport}
		flush_interval -1
	}
}
`

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// tokenResponse is the demo AS's answer to a token request.
type tokenResponse struct {
	status int
	body   map[string]any
}

// requestToken asks the demo AS for a client-credentials token with scope
// and, if not empty, an RFC 8707 resource indicator.
func (s *stack) requestToken(t *testing.T, clientID, secret, scope, resource string) tokenResponse {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	if resource != "" {
		form.Set("resource", resource)
	}
	req, err := http.NewRequest(http.MethodPost, s.as.URL+demoas.TokenPath, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("token request: %v", err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("token response (status %d) is not JSON: %v", resp.StatusCode, err)
	}
	if tok, ok := body["access_token"].(string); ok {
		debugLog.NoteToken(tok)
	}
	return tokenResponse{status: resp.StatusCode, body: body}
}

// token returns an opaque access token for clientID, issued for resource.
func (s *stack) token(t *testing.T, clientID, secret, scope, resource string) string {
	t.Helper()
	tr := s.requestToken(t, clientID, secret, scope, resource)
	tok, _ := tr.body["access_token"].(string)
	if tr.status != http.StatusOK || tok == "" {
		t.Fatalf("token request for %s (scope %q, resource %q): status %d, error %v", clientID, scope, resource, tr.status, tr.body["error"])
	}
	if strings.Count(tok, ".") == 2 && strings.HasPrefix(tok, "ey") {
		t.Fatalf("the demo AS issued a JWT, want an opaque token")
	}
	return tok
}

// agentToken is a token the gateway must accept.
func (s *stack) agentToken(t *testing.T) string {
	t.Helper()
	return s.token(t, agentID, agentSecret, scopeTools, s.resource)
}

// do sends a raw request through the gateway. headers are name, value pairs;
// a "Host" pair sets the request's Host.
func (s *stack) do(t *testing.T, method, target, body string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	return gatewaytest.Do(t, s.client, method, target, body, headers...)
}

// postMCP sends one JSON-RPC message to the MCP endpoint through the gateway,
// as a streamable HTTP client does.
func (s *stack) postMCP(t *testing.T, message string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	h := append([]string{
		"Content-Type", "application/json",
		"Accept", "application/json, text/event-stream",
	}, headers...)
	return s.do(t, http.MethodPost, s.resource, message, h...)
}

const initializeMessage = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw-e2e","version":"1.0.0"}}}`

// accessEntry is one line of Caddy's access log.
type accessEntry struct {
	Request struct {
		Method string `json:"method"`
		URI    string `json:"uri"`
	} `json:"request"`
	Status int    `json:"status"`
	Cache  string `json:"phantom_token_cache"`
}

// accessLogEntries returns the access log so far.
func (s *stack) accessLogEntries(t *testing.T) []accessEntry {
	t.Helper()
	raw, err := os.ReadFile(s.accessLog)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var entries []accessEntry
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var e accessEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("access log line is not JSON: %v", err)
		}
		entries = append(entries, e)
	}
	return entries
}

// waitAccessLog polls the access log until cond holds (Caddy writes an entry
// just after the response), and returns the entries.
func (s *stack) waitAccessLog(t *testing.T, cond func([]accessEntry) bool) []accessEntry {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		entries := s.accessLogEntries(t)
		if cond(entries) || time.Now().After(deadline) {
			return entries
		}
		time.Sleep(20 * time.Millisecond)
	}
}
