package demoas_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/phantomgate/caddy-phantom-token/examples/demoas"
)

func TestCORS(t *testing.T) {
	s := startConfig(t, loginConfig())

	for _, path := range []string{demoas.MetadataPath, demoas.OpenIDConfigurationPath, demoas.TokenPath, demoas.RegistrationPath, demoas.JWKSPath, demoas.RevocationPath} {
		t.Run("preflight "+path, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodOptions, s.URL+path, nil)
			req.Header.Set("Origin", "http://localhost:6274")
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "content-type,mcp-protocol-version")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			h := resp.Header
			if resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "*" ||
				!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
				!strings.Contains(h.Get("Access-Control-Allow-Headers"), "mcp-protocol-version") ||
				!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") {
				t.Fatalf("status %d, headers %v", resp.StatusCode, h)
			}
		})
	}

	t.Run("responses", func(t *testing.T) {
		resp, _ := getJSON(t, s.URL+demoas.MetadataPath)
		if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Error("metadata: no Access-Control-Allow-Origin")
		}
		resp, _ = post(t, s.URL+demoas.TokenPath, agentID, agentSecret, url.Values{"grant_type": {"client_credentials"}}, "")
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("token: status %d, no Access-Control-Allow-Origin", resp.StatusCode)
		}
		resp, _ = post(t, s.URL+demoas.TokenPath, agentID, "wrong", url.Values{"grant_type": {"client_credentials"}}, "")
		if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Error("token error: no Access-Control-Allow-Origin (the browser client could not read the error)")
		}
		resp, _ = post(t, s.URL+demoas.IntrospectionPath, gatewayID, gatewaySecret, url.Values{"token": {"x"}}, "")
		if resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Error("introspection allows cross-origin reads")
		}
	})
}
