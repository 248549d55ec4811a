package caddymodule_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// mcpOpsSite has per-operation rules, an implied scope, a small max_body,
// and passes the operation placeholders upstream.
const mcpOpsSite = `
	phantom_token {
		introspection_endpoint {AS}/introspect
		client_id gateway
		client_secret s3cret
		as_jwks_uri {AS}/jwks
		resource ` + resource + `
		authorization_server {AS}
		required_scopes mcp:tools
		mcp_operation tools/call get_weather {
			scopes weather:read
		}
		mcp_operation tools/call delete_* {
			scopes files:write
		}
		mcp_operation resources/read file:///private/* {
			scopes files:read
		}
		mcp_operation prompts/get {
			scopes prompts:read offline_access
		}
		scope_implies mcp:admin files:write files:read
		max_body 1KiB
	}
	reverse_proxy {UPSTREAM} {
		header_up X-MCP-Method {http.auth.mcp.method}
		header_up X-MCP-Name {http.auth.mcp.name}
	}
`

// post sends a JSON-RPC body with the token and extra headers.
func (g *gateway) post(t *testing.T, token, body string, headers ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, g.url+"/mcp", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
		noteAuthorization("Bearer " + token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func call(name string) string {
	return `{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"` + name + `","arguments":{}}}`
}

func TestMCPOperationScopes(t *testing.T) {
	as, up := newStubAS(t), newRecorder(t)
	g := startCaddy(t, as, up, mcpOpsSite)
	as.active(t, "ops-reader", map[string]any{"scope": "mcp:tools weather:read"})
	as.active(t, "ops-admin", map[string]any{"scope": "mcp:tools mcp:admin"})
	as.active(t, "ops-bare", map[string]any{"scope": "openid"})

	// A granted operation reaches the upstream byte for byte, with its
	// Content-Length, the JWT, and the operation placeholders.
	body := call("get_weather")
	resp, _ := g.post(t, "ops-reader", body)
	if resp.StatusCode != 200 {
		t.Fatalf("get_weather with weather:read: %d", resp.StatusCode)
	}
	got := up.last(t)
	up.mu.Lock()
	gotBody := up.bodies[len(up.bodies)-1]
	up.mu.Unlock()
	if gotBody != body || got.ContentLength != int64(len(body)) {
		t.Fatalf("upstream body %q (Content-Length %d), want %q (%d)", gotBody, got.ContentLength, body, len(body))
	}
	if got.Header.Get("X-MCP-Method") != "tools/call" || got.Header.Get("X-MCP-Name") != "get_weather" {
		t.Errorf("placeholders upstream: method %q name %q", got.Header.Get("X-MCP-Method"), got.Header.Get("X-MCP-Name"))
	}
	if !strings.HasPrefix(got.Header.Get("Authorization"), "Bearer eyJ") {
		t.Errorf("upstream Authorization %q, want the JWT", got.Header.Get("Authorization"))
	}

	for _, c := range []struct {
		token, body string
		status      int
		scope       string // the challenge's scope parameter on 403
	}{
		{"ops-reader", call("delete_file"), 403, "mcp:tools files:write"},
		{"ops-reader", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, 200, ""},
		{"ops-reader", call("other_tool"), 200, ""}, // no rule: required_scopes only
		{"ops-reader", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///private/a.txt"}}`, 403, "mcp:tools files:read"},
		{"ops-reader", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///public/a.txt"}}`, 200, ""},
		{"ops-reader", `{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"p"}}`, 403, "mcp:tools prompts:read"},
		{"ops-admin", call("delete_file"), 200, ""}, // mcp:admin implies files:write
		{"ops-admin", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///private/a.txt"}}`, 200, ""},
		{"ops-admin", call("get_weather"), 403, "mcp:tools weather:read"},
		// Lacking required_scopes too: the challenge names every scope
		// the operation needs, the granted ones included.
		{"ops-bare", call("get_weather"), 403, "mcp:tools weather:read"},
		{"ops-bare", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, 403, "mcp:tools"},
		// A notification and a client's JSON-RPC response need only
		// required_scopes.
		{"ops-reader", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, 200, ""},
		{"ops-reader", `{"jsonrpc":"2.0","id":9,"result":{}}`, 200, ""},
		{"ops-bare", `{"jsonrpc":"2.0","id":9,"result":{}}`, 403, "mcp:tools"},
	} {
		before := up.count()
		resp, _ := g.post(t, c.token, c.body)
		if resp.StatusCode != c.status {
			t.Errorf("%s %s: %d, want %d", c.token, c.body, resp.StatusCode, c.status)
			continue
		}
		if c.status != 200 {
			if up.count() != before {
				t.Errorf("%s %s: forwarded although refused", c.token, c.body)
			}
			want := `error="insufficient_scope", scope="` + c.scope + `"`
			if ch := resp.Header.Get("WWW-Authenticate"); !strings.Contains(ch, want) || !strings.Contains(ch, "resource_metadata=") || strings.Contains(ch, "offline_access") {
				t.Errorf("%s %s: challenge %q, want it to contain %q and resource_metadata, never offline_access", c.token, c.body, ch, want)
			}
		}
	}

	// No token: 401 before any body is read, nothing forwarded.
	before := up.count()
	if resp, _ := g.post(t, "", call("get_weather")); resp.StatusCode != 401 || up.count() != before {
		t.Fatalf("no token: %d, forwarded %d", resp.StatusCode, up.count()-before)
	}
	// GET is not classified: required_scopes alone decide.
	if resp, _ := g.do(t, http.MethodGet, "/mcp", "Authorization", "Bearer ops-bare"); resp.StatusCode != 403 {
		t.Fatalf("GET with a token lacking required_scopes: %d", resp.StatusCode)
	}
	if resp, _ := g.do(t, http.MethodGet, "/mcp", "Authorization", "Bearer ops-reader"); resp.StatusCode != 200 {
		t.Fatalf("GET with required_scopes: %d", resp.StatusCode)
	}
}

func TestMCPOperationRequestChecks(t *testing.T) {
	as, up := newStubAS(t), newRecorder(t)
	g := startCaddy(t, as, up, mcpOpsSite)
	as.active(t, "ops-all", map[string]any{"scope": "mcp:tools weather:read mcp:admin prompts:read"})
	const sentinel = "=?base64?Z2V0X3dlYXRoZXI=?=" // get_weather
	for _, c := range []struct {
		name    string
		body    string
		headers []string
		status  int
		rpcErr  bool // a JSON-RPC -32020 body
	}{
		{"headers that match", call("get_weather"), []string{"Mcp-Method", "tools/call", "Mcp-Name", "get_weather", "MCP-Protocol-Version", "2026-07-28"}, 200, false},
		{"sentinel name that matches", call("get_weather"), []string{"Mcp-Method", "tools/call", "Mcp-Name", sentinel}, 200, false},
		{"method mismatch", call("get_weather"), []string{"Mcp-Method", "tools/list"}, 400, true},
		{"name mismatch", call("delete_file"), []string{"Mcp-Method", "tools/call", "Mcp-Name", "get_weather"}, 400, true},
		{"sentinel name mismatch", call("delete_file"), []string{"Mcp-Method", "tools/call", "Mcp-Name", sentinel}, 400, true},
		{"bad sentinel", call("get_weather"), []string{"Mcp-Name", "=?base64?not base64?="}, 400, true},
		{"missing headers at 2026-07-28", call("get_weather"), []string{"MCP-Protocol-Version", "2026-07-28"}, 400, true},
		{"missing name at 2026-07-28", call("get_weather"), []string{"Mcp-Method", "tools/call", "MCP-Protocol-Version", "2026-07-28"}, 400, true},
		{"old client without headers", call("get_weather"), []string{"MCP-Protocol-Version", "2025-06-18"}, 200, false},
		{"batch", "[" + call("get_weather") + "]", nil, 400, false},
		{"not JSON", "tools/call get_weather", nil, 400, false},
		{"empty body", "", nil, 400, false},
		{"null", "null", nil, 400, false},
		{"no jsonrpc member", `{"id":1,"method":"tools/list"}`, nil, 400, false},
		{"case-variant method", `{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call","params":{"name":"delete_file"}}`, nil, 400, false},
		{"duplicate name", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_weather","name":"delete_file"}}`, nil, 400, false},
		{"too large", call(strings.Repeat("x", 1100)), nil, 413, false},
	} {
		before := up.count()
		resp, body := g.post(t, "ops-all", c.body, c.headers...)
		if resp.StatusCode != c.status {
			t.Errorf("%s: %d, want %d (%s)", c.name, resp.StatusCode, c.status, body)
			continue
		}
		if c.status != 200 && up.count() != before {
			t.Errorf("%s: forwarded although refused", c.name)
		}
		if c.rpcErr {
			var reply struct {
				JSONRPC string          `json:"jsonrpc"`
				ID      json.RawMessage `json:"id"`
				Error   struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if resp.Header.Get("Content-Type") != "application/json" || json.Unmarshal([]byte(body), &reply) != nil ||
				reply.JSONRPC != "2.0" || string(reply.ID) != "42" || reply.Error.Code != -32020 || reply.Error.Message == "" {
				t.Errorf("%s: reply %q (%s), want a JSON-RPC -32020 error for id 42", c.name, body, resp.Header.Get("Content-Type"))
			}
		}
	}

	// A chunked body is classified and forwarded whole.
	body := call("get_weather")
	req, _ := http.NewRequest(http.MethodPost, g.url+"/mcp", io.MultiReader(strings.NewReader(body[:10]), strings.NewReader(body[10:])))
	req.Header.Set("Authorization", "Bearer ops-all")
	req.ContentLength = -1 // chunked
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	up.mu.Lock()
	last := up.bodies[len(up.bodies)-1]
	up.mu.Unlock()
	if resp.StatusCode != 200 || last != body {
		t.Fatalf("chunked: %d, upstream got %q", resp.StatusCode, last)
	}
	// A chunked body past max_body: 413.
	req, _ = http.NewRequest(http.MethodPost, g.url+"/mcp", strings.NewReader(call(strings.Repeat("y", 2000))))
	req.Header.Set("Authorization", "Bearer ops-all")
	req.ContentLength = -1
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 413 {
		t.Fatalf("chunked past max_body: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

// The metadata publishes required_scopes and every rule's scopes when
// scopes_supported is not configured, never offline_access nor the broad
// scopes that appear only in scope_implies.
func TestMCPOperationScopesSupported(t *testing.T) {
	as, up := newStubAS(t), newRecorder(t)
	g := startCaddy(t, as, up, mcpOpsSite)
	resp, body := g.do(t, http.MethodGet, "/.well-known/oauth-protected-resource/mcp")
	if resp.StatusCode != 200 {
		t.Fatalf("metadata: %d", resp.StatusCode)
	}
	var md struct {
		ScopesSupported []string `json:"scopes_supported"`
	}
	if err := json.Unmarshal([]byte(body), &md); err != nil {
		t.Fatal(err)
	}
	want := []string{"mcp:tools", "weather:read", "files:write", "files:read", "prompts:read"}
	if strconv.Quote(strings.Join(md.ScopesSupported, " ")) != strconv.Quote(strings.Join(want, " ")) {
		t.Fatalf("scopes_supported = %v, want %v", md.ScopesSupported, want)
	}
}
