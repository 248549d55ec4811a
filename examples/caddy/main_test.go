package main

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// TestBinaryHasModule checks what this binary's imports register: the
// phantom_token handler, its Caddyfile directive, and the standard modules.
func TestBinaryHasModule(t *testing.T) {
	for _, id := range []string{"http.handlers.phantom_token", "http.handlers.reverse_proxy"} {
		if _, err := caddy.GetModule(id); err != nil {
			t.Errorf("module %s: %v", id, err)
		}
	}

	const caddyfile = `http://:8080 {
	phantom_token {
		introspection_endpoint http://127.0.0.1:9/introspect
		client_id gateway
		client_secret {env.SECRET}
	}
	reverse_proxy 127.0.0.1:9000
}`
	adapter := caddyconfig.GetAdapter("caddyfile")
	if adapter == nil {
		t.Fatal("no caddyfile adapter")
	}
	cfg, _, err := adapter.Adapt([]byte(caddyfile), nil)
	if err != nil {
		t.Fatalf("adapt: %v", err)
	}
	if !strings.Contains(string(cfg), `"handler":"phantom_token"`) {
		t.Fatalf("the phantom_token directive did not produce the handler:\n%s", cfg)
	}
}
