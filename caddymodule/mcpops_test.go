package caddymodule

import (
	"reflect"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalCaddyfileMCPOperations(t *testing.T) {
	d := caddyfile.NewTestDispenser(`phantom_token {
		required_scopes mcp:tools
		mcp_operation tools/call get_weather {
			scopes weather:read
		}
		mcp_operation tools/call delete_* {
			scopes files:write files:audit
		}
		mcp_operation prompts/get {
			scopes prompts:read
		}
		scope_implies mcp:admin files:write files:read
		scope_implies mcp:admin files:audit
		scope_implies files:write files:read
		max_body 64KiB
	}`)
	var h Handler
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	wantOps := []MCPOperation{
		{Method: "tools/call", Name: "get_weather", Scopes: []string{"weather:read"}},
		{Method: "tools/call", Name: "delete_*", Scopes: []string{"files:write", "files:audit"}},
		{Method: "prompts/get", Scopes: []string{"prompts:read"}},
	}
	wantImplies := map[string][]string{"mcp:admin": {"files:write", "files:read", "files:audit"}, "files:write": {"files:read"}}
	if !reflect.DeepEqual(h.MCPOperations, wantOps) || !reflect.DeepEqual(h.ScopeImplies, wantImplies) || h.MaxBody != 64<<10 {
		t.Fatalf("got %+v %v %d", h.MCPOperations, h.ScopeImplies, h.MaxBody)
	}
}

func TestUnmarshalCaddyfileMCPOperationErrors(t *testing.T) {
	for _, tc := range []struct{ input, wantErr string }{
		{"mcp_operation {\nscopes a\n}", "mcp_operation: expected <JSON-RPC method> [<name pattern>]"},
		{"mcp_operation tools/call a b {\nscopes a\n}", "mcp_operation: expected <JSON-RPC method> [<name pattern>]"},
		{"mcp_operation tools/call", "mcp_operation tools/call: a block with scopes <scope>... is required"},
		{"mcp_operation tools/call {\nscopes\n}", "scopes: expected <scope>..."},
		{"mcp_operation tools/call {\nscope a\n}", "mcp_operation tools/call: unknown subdirective 'scope'"},
		{"mcp_operation tools/call {\nscopes a\nscopes b\n}", "duplicate subdirective 'scopes'"},
		{"scope_implies mcp:admin", "scope_implies: expected <broad scope> <narrow scope>..."},
		{"max_body lots", "max_body: expected a positive size"},
		{"max_body 1KiB\nmax_body 2KiB", "duplicate subdirective 'max_body'"},
	} {
		d := caddyfile.NewTestDispenser("phantom_token {\n" + tc.input + "\n}")
		var h Handler
		if err := h.UnmarshalCaddyfile(d); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%q: error = %v, want it to contain %q", tc.input, err, tc.wantErr)
		}
	}
}

func TestProvisionMCPErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		set     func(h *Handler)
		wantErr string
	}{
		{"no method", func(h *Handler) { h.MCPOperations = []MCPOperation{{Scopes: []string{"a"}}} }, "mcp_operations[0].method: required"},
		{"no scopes", func(h *Handler) { h.MCPOperations = []MCPOperation{{Method: "tools/call"}} }, "mcp_operation tools/call: scopes: required"},
		{"pattern on tools/list", func(h *Handler) {
			h.MCPOperations = []MCPOperation{{Method: "tools/list", Name: "x", Scopes: []string{"a"}}}
		}, "mcp_operation tools/list x: a name pattern applies only to tools/call, prompts/get and resources/read"},
		{"invalid pattern", func(h *Handler) {
			h.MCPOperations = []MCPOperation{{Method: "tools/call", Name: "get_?", Scopes: []string{"a"}}}
		}, "mcp_operation tools/call get_?: invalid pattern: only '*' is a wildcard"},
		{"bad scope", func(h *Handler) {
			h.MCPOperations = []MCPOperation{{Method: "tools/call", Scopes: []string{`a"b`}}}
		}, `scopes: "a\"b" is not a scope token`},
		{"empty implies", func(h *Handler) { h.ScopeImplies = map[string][]string{"a": nil} }, "scope_implies: expected <broad scope> <narrow scope>..."},
		{"max_body without rules", func(h *Handler) { h.MaxBody = 10 }, "max_body: only used with mcp_operation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := validHandler()
			tc.set(h)
			if err := provision(t, h); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

// Implication is transitive, and a cycle terminates.
func TestScopeSatisfiers(t *testing.T) {
	sat := scopeSatisfiers(map[string][]string{
		"mcp:admin":   {"files:write"},
		"files:write": {"files:read"},
		"files:read":  {"mcp:admin"}, // a cycle
		"other":       {"files:read"},
	})
	got := sat("files:read")
	want := []string{"files:read", "files:write", "other", "mcp:admin"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("satisfiers of files:read = %v, want %v", got, want)
	}
	needs := needsFor([]string{"files:read", "weather:read"}, sat)
	for _, c := range []struct {
		scope string
		ok    bool
	}{
		{"files:read weather:read", true},
		{"mcp:admin weather:read", true},
		{"other weather:read", true},
		{"mcp:admin", false},
		{"files:reader weather:read", false},
	} {
		if got := satisfied(c.scope, needs); got != c.ok {
			t.Errorf("satisfied(%q) = %v, want %v", c.scope, got, c.ok)
		}
	}
}
