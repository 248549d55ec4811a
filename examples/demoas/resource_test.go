package demoas_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/phantomgate/caddy-phantom-token/examples/demoas"
)

const (
	mcpResource   = "http://127.0.0.1:8080/mcp"
	otherResource = "https://other.example.com/mcp"
)

// tokenFor requests a client-credentials token with form and returns the
// status and the decoded body.
func tokenFor(t *testing.T, s *demoas.Server, id, secret string, form url.Values) (int, map[string]any) {
	t.Helper()
	form.Set("grant_type", "client_credentials")
	resp, body := post(t, s.URL+demoas.TokenPath, id, secret, form, "")
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("token response %q: %v", body, err)
	}
	return resp.StatusCode, m
}

// audOf introspects tok (JSON and JWT) and returns its audience; both must
// agree.
func audOf(t *testing.T, s *demoas.Server, tok string) []string {
	t.Helper()
	var fromJSON []string
	if list, ok := introspectJSON(t, s, tok)["aud"].([]any); ok {
		for _, a := range list {
			fromJSON = append(fromJSON, a.(string))
		}
	}
	_, body := post(t, s.URL+demoas.IntrospectionPath, gatewayID, gatewaySecret, url.Values{"token": {tok}}, "application/jwt")
	jt, err := jwt.Parse(body, jwt.WithKeySet(s.PublicKeys()))
	if err != nil {
		t.Fatalf("introspection JWT: %v", err)
	}
	if strings.Join(jt.Audience(), " ") != strings.Join(fromJSON, " ") {
		t.Fatalf("JWT aud %v, JSON aud %v", jt.Audience(), fromJSON)
	}
	return fromJSON
}

func TestResourceIndicators(t *testing.T) {
	s := start(t, time.Hour)
	if err := s.AddClient(demoas.Client{ID: "mcp-agent", Secret: "mcp-secret", Scopes: []string{"mcp:tools"}, Resources: []string{mcpResource}}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddClient(demoas.Client{ID: "any", Secret: "any-secret", Scopes: []string{"mcp:tools"}}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name       string
		id, secret string
		form       url.Values
		aud        string // space-separated; "" for none
		err        string // expected OAuth error, "" for success
	}{
		{"restricted client, its resource", "mcp-agent", "mcp-secret", url.Values{"resource": {mcpResource}}, mcpResource, ""},
		{"restricted client, no resource", "mcp-agent", "mcp-secret", url.Values{}, mcpResource, ""},
		{"restricted client, another resource", "mcp-agent", "mcp-secret", url.Values{"resource": {otherResource}}, "", "invalid_target"},
		{"restricted client, one allowed one not", "mcp-agent", "mcp-secret", url.Values{"resource": {mcpResource, otherResource}}, "", "invalid_target"},
		{"restricted client, resource differing in case", "mcp-agent", "mcp-secret", url.Values{"resource": {strings.ToUpper(mcpResource)}}, "", "invalid_target"},
		{"unrestricted client, one resource", "any", "any-secret", url.Values{"resource": {otherResource}}, otherResource, ""},
		{"unrestricted client, two resources", "any", "any-secret", url.Values{"resource": {mcpResource, otherResource}}, mcpResource + " " + otherResource, ""},
		{"unrestricted client, no resource", "any", "any-secret", url.Values{}, "", ""},
		{"relative resource", "any", "any-secret", url.Values{"resource": {"/mcp"}}, "", "invalid_target"},
		{"empty resource", "any", "any-secret", url.Values{"resource": {""}}, "", "invalid_target"},
		{"resource with a fragment", "any", "any-secret", url.Values{"resource": {mcpResource + "#x"}}, "", "invalid_target"},
		{"resource and audience", agentID, agentSecret, url.Values{"resource": {mcpResource}, "audience": {audience}}, audience + " " + mcpResource, ""},
		{"audience only (fosite)", agentID, agentSecret, url.Values{"audience": {audience}}, audience, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, m := tokenFor(t, s, tc.id, tc.secret, tc.form)
			if tc.err != "" {
				if status != http.StatusBadRequest || m["error"] != tc.err {
					t.Fatalf("status %d, %v; want 400 %s", status, m, tc.err)
				}
				return
			}
			if status != http.StatusOK {
				t.Fatalf("status %d, %v", status, m)
			}
			if got := strings.Join(audOf(t, s, m["access_token"].(string)), " "); got != tc.aud {
				t.Fatalf("aud [%s], want [%s]", got, tc.aud)
			}
		})
	}

	t.Run("client authentication comes first", func(t *testing.T) {
		status, m := tokenFor(t, s, "mcp-agent", "wrong", url.Values{"resource": {otherResource}})
		if status != http.StatusUnauthorized || m["error"] != "invalid_client" {
			t.Fatalf("status %d, %v; want 401 invalid_client", status, m)
		}
	})
}

// TestTypeScriptSDKTokenRequest sends the token request the MCP TypeScript
// SDK's ClientCredentialsProvider sends: client_secret_basic with the ID and
// secret not form-encoded, scope and resource in the body.
func TestTypeScriptSDKTokenRequest(t *testing.T) {
	s := start(t, time.Hour)
	if err := s.AddClient(demoas.Client{ID: "ts-client", Secret: "ts_secret-0123456789", Scopes: []string{"mcp:tools"}}); err != nil {
		t.Fatal(err)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"mcp:tools"}, "resource": {mcpResource}}
	for _, method := range []string{"client_secret_basic", "client_secret_post"} {
		t.Run(method, func(t *testing.T) {
			f := url.Values{}
			for k, v := range form {
				f[k] = v
			}
			if method == "client_secret_post" {
				f.Set("client_id", "ts-client")
				f.Set("client_secret", "ts_secret-0123456789")
			}
			req, _ := http.NewRequest(http.MethodPost, s.URL+demoas.TokenPath, strings.NewReader(f.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Accept", "application/json")
			if method == "client_secret_basic" {
				req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("ts-client:ts_secret-0123456789")))
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var tr map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, %v, %v", resp.StatusCode, tr, err)
			}
			if tr["token_type"] != "bearer" && tr["token_type"] != "Bearer" || tr["scope"] != "mcp:tools" {
				t.Fatalf("token response %v", tr)
			}
			if aud := audOf(t, s, tr["access_token"].(string)); len(aud) != 1 || aud[0] != mcpResource {
				t.Fatalf("aud %v", aud)
			}
		})
	}
}

func TestAddClient(t *testing.T) {
	s := start(t, time.Hour)
	for name, c := range map[string]demoas.Client{
		"duplicate":       {ID: agentID, Secret: "x"},
		"empty id":        {Secret: "x"},
		"empty secret":    {ID: "new"},
		"bad resource":    {ID: "new", Secret: "x", Resources: []string{"/relative"}},
		"fragment in res": {ID: "new", Secret: "x", Resources: []string{mcpResource + "#f"}},
	} {
		if err := s.AddClient(c); err == nil {
			t.Errorf("%s: AddClient succeeded", name)
		}
	}

	// Clients added while tokens are being issued: no data race, and each
	// can get a token right away.
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			token(t, s, "mcp:tools")
		}()
		go func() {
			defer wg.Done()
			id, secret := fmt.Sprintf("client-%d", i), fmt.Sprintf("secret-%d", i)
			if err := s.AddClient(demoas.Client{ID: id, Secret: secret, Scopes: []string{"extra"}}); err != nil {
				t.Error(err)
				return
			}
			if status, m := tokenFor(t, s, id, secret, url.Values{}); status != http.StatusOK || m["scope"] != "extra" {
				t.Errorf("%s: status %d, %v", id, status, m)
			}
		}()
	}
	wg.Wait()

	_, m := getJSON(t, s.URL+demoas.MetadataPath)
	if fmt.Sprint(m["scopes_supported"]) != "[extra mcp:admin mcp:tools]" {
		t.Errorf("scopes_supported %v", m["scopes_supported"])
	}
}
