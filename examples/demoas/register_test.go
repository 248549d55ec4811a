package demoas_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/phantomgate/caddy-phantom-token/examples/demoas"
)

func TestRegisterPublic(t *testing.T) {
	s := startConfig(t, loginConfig())
	before := time.Now().Unix()
	status, m := register(t, s, map[string]any{
		"client_name":                "MCP Inspector",
		"redirect_uris":              []string{"http://localhost:6274/oauth/callback"},
		"token_endpoint_auth_method": "none",
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"scope":                      "mcp:tools",
		"client_uri":                 "https://github.com/modelcontextprotocol/inspector",
		"software_id":                "ignored",
	})
	if status != http.StatusCreated {
		t.Fatalf("status %d, %v", status, m)
	}
	id, _ := m["client_id"].(string)
	if id == "" || strings.Contains(id, ":") || strings.Contains(id, "/") {
		t.Errorf("client_id %q: want a non-URL ID", id)
	}
	if iat, _ := m["client_id_issued_at"].(float64); int64(iat) < before-1 {
		t.Errorf("client_id_issued_at %v", m["client_id_issued_at"])
	}
	if _, ok := m["client_secret"]; ok {
		t.Error("a public client got a secret")
	}
	for k, want := range map[string]string{
		"token_endpoint_auth_method": "none",
		"client_name":                "MCP Inspector",
		"scope":                      "mcp:tools",
		"client_uri":                 "https://github.com/modelcontextprotocol/inspector",
		"redirect_uris":              "[http://localhost:6274/oauth/callback]",
		"grant_types":                "[authorization_code refresh_token]",
		"response_types":             "[code]",
	} {
		got := m[k]
		if list, ok := got.([]any); ok {
			got = "[" + strings.Join(strs(list), " ") + "]"
		}
		if got != want {
			t.Errorf("%s = %v, want %s", k, got, want)
		}
	}

	// The registered client logs a user in, from another port.
	f := newFlow(id)
	f.redirectURI = "http://localhost:50123/oauth/callback"
	loginToken(t, s, f)
}

func TestRegisterConfidential(t *testing.T) {
	s := startConfig(t, loginConfig())
	for _, method := range []string{"", "client_secret_basic", "client_secret_post"} {
		t.Run("auth method "+method, func(t *testing.T) {
			meta := map[string]any{"redirect_uris": []string{publicRedir}}
			if method != "" {
				meta["token_endpoint_auth_method"] = method
			}
			status, m := register(t, s, meta)
			if status != http.StatusCreated {
				t.Fatalf("status %d, %v", status, m)
			}
			want := method
			if want == "" {
				want = "client_secret_basic" // RFC 7591 §2
			}
			id, _ := m["client_id"].(string)
			secret, _ := m["client_secret"].(string)
			if m["token_endpoint_auth_method"] != want || secret == "" || m["client_secret_expires_at"] != float64(0) ||
				strings.ContainsAny(secret, "%+") || strs(m["grant_types"])[0] != "authorization_code" {
				t.Fatalf("registration %v", m)
			}

			f := newFlow(id)
			code := authorize(t, s, f)
			// Without the secret the code is refused.
			if status, m := redeem(t, s, f, code, "", "", nil); status != http.StatusUnauthorized || m["error"] != "invalid_client" {
				t.Fatalf("no secret: status %d, %v", status, m)
			}
			var tr map[string]any
			if want == "client_secret_post" {
				status, tr = redeem(t, s, f, code, "", "", url.Values{"client_secret": {secret}})
			} else {
				status, tr = redeem(t, s, f, code, id, secret, nil)
			}
			if status != http.StatusOK {
				t.Fatalf("token: status %d, %v", status, tr)
			}
			if tr["refresh_token"] != nil {
				t.Error("a refresh token for a client not registered for the refresh_token grant")
			}
			if m := introspectJSON(t, s, tr["access_token"].(string)); m["client_id"] != id || m["sub"] != userName {
				t.Fatalf("introspection %v", m)
			}
		})
	}
}

func TestRegisterErrors(t *testing.T) {
	s := startConfig(t, loginConfig())
	for _, tc := range []struct {
		name, body, error string
	}{
		{"not JSON", `{"redirect_uris":`, "invalid_client_metadata"},
		{"not an object", `["http://127.0.0.1/cb"]`, "invalid_client_metadata"},
		{"redirect_uris of the wrong type", `{"redirect_uris":"http://127.0.0.1/cb"}`, "invalid_client_metadata"},
		{"no redirect_uris", `{"client_name":"x"}`, "invalid_redirect_uri"},
		{"empty redirect_uris", `{"redirect_uris":[]}`, "invalid_redirect_uri"},
		{"relative redirect URI", `{"redirect_uris":["/cb"]}`, "invalid_redirect_uri"},
		{"redirect URI with a fragment", `{"redirect_uris":["https://app.example.com/cb#x"]}`, "invalid_redirect_uri"},
		{"http redirect URI not on loopback", `{"redirect_uris":["http://app.example.com/cb"]}`, "invalid_redirect_uri"},
		{"javascript redirect URI", `{"redirect_uris":["javascript:alert(1)"]}`, "invalid_redirect_uri"},
		{"one good, one bad", `{"redirect_uris":["http://127.0.0.1/cb","http://evil.example.com/cb"]}`, "invalid_redirect_uri"},
		{"client_credentials grant", `{"redirect_uris":["http://127.0.0.1/cb"],"grant_types":["client_credentials"]}`, "invalid_client_metadata"},
		{"implicit grant", `{"redirect_uris":["http://127.0.0.1/cb"],"grant_types":["authorization_code","implicit"]}`, "invalid_client_metadata"},
		{"refresh_token only", `{"redirect_uris":["http://127.0.0.1/cb"],"grant_types":["refresh_token"]}`, "invalid_client_metadata"},
		{"response type token", `{"redirect_uris":["http://127.0.0.1/cb"],"response_types":["code","token"]}`, "invalid_client_metadata"},
		{"private_key_jwt", `{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"private_key_jwt"}`, "invalid_client_metadata"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, m := postJSON(t, s.URL+demoas.RegistrationPath, tc.body)
			if status != http.StatusBadRequest || m["error"] != tc.error || m["error_description"] == "" {
				t.Fatalf("status %d, %v; want 400 %s", status, m, tc.error)
			}
		})
	}

	t.Run("a custom-scheme redirect URI of a native app is fine", func(t *testing.T) {
		status, m := postJSON(t, s.URL+demoas.RegistrationPath, `{"redirect_uris":["com.example.app:/oauth2redirect"],"token_endpoint_auth_method":"none"}`)
		if status != http.StatusCreated {
			t.Fatalf("status %d, %v", status, m)
		}
	})
	t.Run("the client cannot choose its ID", func(t *testing.T) {
		status, m := postJSON(t, s.URL+demoas.RegistrationPath, `{"client_id":"gateway","redirect_uris":["http://127.0.0.1/cb"]}`)
		if status != http.StatusCreated || m["client_id"] == gatewayID {
			t.Fatalf("status %d, %v", status, m)
		}
		// The configured client still authenticates with its own secret.
		resp, body := post(t, s.URL+demoas.IntrospectionPath, gatewayID, gatewaySecret, url.Values{"token": {"x"}}, "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("gateway: status %d: %s", resp.StatusCode, body)
		}
	})
	t.Run("response", func(t *testing.T) {
		resp, err := http.Post(s.URL+demoas.RegistrationPath, "application/json", strings.NewReader(`{"redirect_uris":["http://127.0.0.1/cb"]}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		if resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("headers %v", resp.Header)
		}
	})
}

// TestSelfRegisteredClientsCannotIntrospect: whoever registers (or publishes
// a metadata document) must not be able to turn a user's opaque token into
// the signed JWT the gateway forwards.
func TestSelfRegisteredClientsCannotIntrospect(t *testing.T) {
	s := startConfig(t, loginConfig())
	publicID := registerPublic(t, s)
	at := loginToken(t, s, newFlow(publicID))["access_token"].(string)
	_, conf := register(t, s, map[string]any{"redirect_uris": []string{publicRedir}})

	for name, creds := range map[string][2]string{
		"public client":       {publicID, ""},
		"confidential client": {conf["client_id"].(string), conf["client_secret"].(string)},
	} {
		t.Run(name, func(t *testing.T) {
			for _, accept := range []string{"", "application/jwt"} {
				form := url.Values{"token": {at}, "client_id": {creds[0]}}
				if creds[1] != "" {
					form.Set("client_secret", creds[1])
				}
				resp, body := post(t, s.URL+demoas.IntrospectionPath, "", "", form, accept)
				if resp.StatusCode != http.StatusUnauthorized || strings.Contains(string(body), "active") {
					t.Fatalf("accept %q: status %d: %s", accept, resp.StatusCode, body)
				}
			}
		})
	}
}
