package caddymodule_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

const metadataSite = `
	phantom_token {
		introspection_endpoint {AS}/introspect
		client_id gateway
		client_secret s3cret
		resource ` + resource + `
		authorization_server https://as.example.com https://as2.example.com/tenant
		scopes_supported mcp:tools mcp:read
		resource_name "Example MCP"
		resource_documentation https://docs.example.com/mcp
		required_scopes mcp:tools
	}
	reverse_proxy {UPSTREAM}
`

// The RFC 9728 document: served by the module at the path derived from
// resource, GET and HEAD only, no token, members from config byte for byte
// whatever Host or X-Forwarded-* say.
func TestProtectedResourceMetadata(t *testing.T) {
	as, up := newStubAS(t), newRecorder(t)
	g := startCaddy(t, as, up, metadataSite)
	const path = "/.well-known/oauth-protected-resource/mcp"

	resp, body := g.do(t, http.MethodGet, path,
		"X-Forwarded-Host", "evil.example", "X-Forwarded-Proto", "http", "Forwarded", "host=evil.example")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.HasPrefix(cc, "public, max-age=") {
		t.Errorf("Cache-Control = %q, want public, max-age=…", cc)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, body)
	}
	want := map[string]any{
		"resource":                 resource,
		"authorization_servers":    []any{"https://as.example.com", "https://as2.example.com/tenant"},
		"scopes_supported":         []any{"mcp:tools", "mcp:read"},
		"bearer_methods_supported": []any{"header"},
		"resource_name":            "Example MCP",
		"resource_documentation":   "https://docs.example.com/mcp",
	}
	gotJSON, _ := json.Marshal(doc)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("document = %s\nwant       %s", gotJSON, wantJSON)
	}

	resp, body = g.do(t, http.MethodHead, path)
	if resp.StatusCode != http.StatusOK || body != "" || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("HEAD: status %d, body %q, Content-Type %q", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		resp, _ = g.do(t, method, path)
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: status %d, Allow %q; want 405 with Allow: GET, HEAD", method, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
	// Other well-known paths are not the document and need a token.
	if resp, _ = g.do(t, http.MethodGet, "/.well-known/oauth-protected-resource"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("root well-known: status %d, want 401", resp.StatusCode)
	}
	if as.calls.Load() != 0 || up.count() != 0 {
		t.Errorf("AS calls %d, upstream calls %d; want none", as.calls.Load(), up.count())
	}
}

// Empty members are omitted; bearer_methods_supported is always there; a
// root resource has its document at the bare well-known path; metadata_path
// moves the served path but not the advertised URL.
func TestProtectedResourceMetadataMinimalAndRoot(t *testing.T) {
	as, up := newStubAS(t), newRecorder(t)
	site := `
	phantom_token {
		introspection_endpoint {AS}/introspect
		client_id gateway
		client_secret s3cret
		resource https://api.example.com/
		authorization_server https://as.example.com
		metadata_path /gw/.well-known/oauth-protected-resource
	}
	reverse_proxy {UPSTREAM}
`
	g := startCaddy(t, as, up, site)
	resp, body := g.do(t, http.MethodGet, "/gw/.well-known/oauth-protected-resource")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200", resp.StatusCode)
	}
	want := `{"resource":"https://api.example.com/","authorization_servers":["https://as.example.com"],"bearer_methods_supported":["header"]}`
	if body != want {
		t.Errorf("document = %s\nwant       %s", body, want)
	}
	resp, _ = g.do(t, http.MethodGet, "/")
	wantChallenge := `Bearer resource_metadata="https://api.example.com/.well-known/oauth-protected-resource"`
	if got := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != 401 || got != wantChallenge {
		t.Errorf("challenge = %d %q, want 401 %q", resp.StatusCode, got, wantChallenge)
	}
}
