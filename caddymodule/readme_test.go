package caddymodule_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

var caddyfileBlock = regexp.MustCompile("(?s)```caddyfile\n(phantom_token \\{.*?\n\\})\n```")

// Every complete phantom_token block in the README and the docs, tested
// against a real server or not, adapts: an operator who copies one gets no
// syntax error.
func TestReadmeConfigsAdapt(t *testing.T) {
	pages, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	var data []byte
	for _, page := range append([]string{"../README.md"}, pages...) {
		b, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, b...)
	}
	blocks := caddyfileBlock.FindAllStringSubmatch(string(data), -1)
	if len(blocks) < 9 {
		t.Fatalf("found %d phantom_token blocks in the README and docs/, want at least 9", len(blocks))
	}
	for _, b := range blocks {
		for _, env := range []string{"AS_ADMIN_URL", "AS_ISSUER", "GATEWAY_ISSUER", "MCP_RESOURCE"} {
			t.Setenv(env, "https://"+strings.ToLower(env)+".example.com")
		}
		for _, env := range []string{"GATEWAY_CLIENT_ID", "GATEWAY_SIGNING_KEY", "GATEWAY_CLIENT_KEY"} {
			t.Setenv(env, "/etc/"+strings.ToLower(env))
		}
		site := ":8080 {\n" + b[1] + "\nreverse_proxy 127.0.0.1:9000\n}\n"
		if _, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(site), nil); err != nil {
			t.Errorf("README block does not adapt: %v\n%s", err, b[1])
		}
	}
}
