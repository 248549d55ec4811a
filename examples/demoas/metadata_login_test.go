package demoas_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/phantomgate/caddy-phantom-token/examples/demoas"
)

func list(v any) string { return strings.Join(strs(v), " ") }

func TestMetadataWithUsers(t *testing.T) {
	s := startConfig(t, loginConfig())
	_, m := getJSON(t, s.URL+demoas.MetadataPath)
	for k, want := range map[string]string{
		"response_types_supported":              "code",
		"grant_types_supported":                 "client_credentials authorization_code refresh_token urn:ietf:params:oauth:grant-type:token-exchange",
		"code_challenge_methods_supported":      "S256",
		"token_endpoint_auth_methods_supported": "client_secret_basic client_secret_post none",
		"scopes_supported":                      "api:read api:write mcp:admin mcp:tools",
		// Introspection and revocation stay for confidential clients.
		"introspection_endpoint_auth_methods_supported": "client_secret_basic client_secret_post",
	} {
		if got := list(m[k]); got != want {
			t.Errorf("%s = [%s], want [%s]", k, got, want)
		}
	}
	if m["registration_endpoint"] != s.URL+demoas.RegistrationPath || m["client_id_metadata_document_supported"] != true ||
		m["authorization_endpoint"] != s.URL+demoas.AuthorizationPath {
		t.Errorf("metadata %v", m)
	}
	if strings.Contains(list(m["scopes_supported"]), "offline_access") {
		t.Error("offline_access is advertised")
	}
}

func TestMetadataExchangesOnly(t *testing.T) {
	cfg := loginConfig()
	cfg.Users = nil
	s := startConfig(t, cfg)
	_, m := getJSON(t, s.URL+demoas.MetadataPath)
	if got := list(m["grant_types_supported"]); got != "client_credentials urn:ietf:params:oauth:grant-type:token-exchange" {
		t.Errorf("grant_types_supported = [%s]", got)
	}
	if list(m["response_types_supported"]) != "" || m["registration_endpoint"] != nil || m["code_challenge_methods_supported"] != nil ||
		m["client_id_metadata_document_supported"] != nil || list(m["token_endpoint_auth_methods_supported"]) != "client_secret_basic client_secret_post" {
		t.Errorf("metadata %v", m)
	}
	// Token exchange works without users: the MCP server exchanges a token
	// another client got by client credentials.
	if err := s.AddClient(demoas.Client{ID: "svc", Secret: "svc-secret", Scopes: []string{"mcp:tools"}, Resources: []string{mcpResource}}); err != nil {
		t.Fatal(err)
	}
	resp, body := post(t, s.URL+demoas.TokenPath, "svc", "svc-secret", url.Values{"grant_type": {"client_credentials"}}, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	subjectJWT := introspectJWT(t, s, tokenField(t, body, "access_token"))
	status, tr, _ := exchange(t, s, mcpServerID, mcpSecret, url.Values{"subject_token": {subjectJWT}, "subject_token_type": {typeJWT}})
	if status != http.StatusOK || tr["scope"] != "api:read" {
		t.Fatalf("exchange: status %d, %v", status, tr)
	}

	resp, e := getJSON(t, s.URL+demoas.AuthorizationPath+"?response_type=code")
	if resp.StatusCode != http.StatusBadRequest || e["error"] != "unsupported_response_type" {
		t.Errorf("authorize: %d %v", resp.StatusCode, e)
	}
}

func TestStartValidatesLoginConfig(t *testing.T) {
	for name, change := range map[string]func(*demoas.Config){
		"users without resources":       func(c *demoas.Config) { c.Resources = nil; c.Exchanges = nil },
		"user without password":         func(c *demoas.Config) { c.Users = append(c.Users, demoas.User{Username: "bob"}) },
		"user without username":         func(c *demoas.Config) { c.Users = append(c.Users, demoas.User{Password: "x"}) },
		"duplicate user":                func(c *demoas.Config) { c.Users = append(c.Users, c.Users[0]) },
		"relative resource":             func(c *demoas.Config) { c.Resources[0].URL = "/mcp" },
		"resource with a fragment":      func(c *demoas.Config) { c.Resources[0].URL += "#x" },
		"duplicate resource":            func(c *demoas.Config) { c.Resources = append(c.Resources, c.Resources[0]) },
		"scope with a space":            func(c *demoas.Config) { c.Resources[0].Scopes = []string{"a b"} },
		"exchange without client":       func(c *demoas.Config) { c.Exchanges[0].Client = "" },
		"exchange to an unknown target": func(c *demoas.Config) { c.Exchanges[0].To = otherResource },
		"exchange from a relative URI":  func(c *demoas.Config) { c.Exchanges[0].From = "mcp" },
		"exchange to a foreign scope":   func(c *demoas.Config) { c.Exchanges[0].Scopes["mcp:tools"] = []string{"mcp:admin"} },
	} {
		cfg := loginConfig()
		change(&cfg)
		if s, err := demoas.Start(cfg); err == nil {
			_ = s.Close()
			t.Errorf("%s: Start succeeded", name)
		}
	}
}
