package demoas_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/phantomgate/caddy-phantom-token/examples/demoas"
)

func TestAuthorizationCodeFlow(t *testing.T) {
	s := startConfig(t, loginConfig())
	clientID := registerPublic(t, s)
	f := newFlow(clientID)

	// The page shows the client, the resource and the scopes, and has the
	// elements browser automation uses.
	resp, page := get(t, f.url(s))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d:\n%s", resp.StatusCode, page)
	}
	for h, want := range map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"X-Frame-Options":         "DENY",
		"Content-Security-Policy": "frame-ancestors 'none'",
		"Cache-Control":           "no-store",
	} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Error("the authorize page allows cross-origin reads")
	}
	for _, want := range []string{
		`id="client"`, `<strong id="client-name">Test &lt;MCP&gt; Client</strong>`,
		`<code id="client-id">` + clientID + `</code>`,
		`id="resource"`, `<strong id="resource-name">Demo MCP server</strong>`,
		`<code id="resource-url">` + mcpResource + `</code>`,
		`<ul id="scopes">`, `<li><code>mcp:tools</code></li>`,
		`<input id="username" name="username"`, `<input id="password" name="password" type="password"`,
		`<button id="allow" type="submit" name="decision" value="allow">`,
		`<button id="deny" type="submit" name="decision" value="deny"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(page, "mcp:admin") || strings.Contains(page, "<MCP>") {
		t.Errorf("page shows an unrequested scope or unescaped input:\n%s", page)
	}

	// Log in, follow the redirect, redeem the code.
	resp, _ = submit(t, s, page, allow())
	q := redirectParams(t, resp, publicRedir)
	if q.Get("state") != f.state || q.Get("code") == "" {
		t.Fatalf("redirect query %v", q)
	}
	code := q.Get("code")
	before := time.Now().Unix()
	status, tr := redeem(t, s, f, code, "", "", url.Values{"resource": {mcpResource}})
	if status != http.StatusOK {
		t.Fatalf("token: status %d, %v", status, tr)
	}
	at, _ := tr["access_token"].(string)
	if at == "" || strings.Count(at, ".") == 2 || !strings.EqualFold(tr["token_type"].(string), "bearer") || tr["scope"] != "mcp:tools" {
		t.Fatalf("token response %v", tr)
	}
	if tr["refresh_token"] == nil {
		t.Errorf("no refresh token for a client registered for the refresh_token grant")
	}

	m := introspectJSON(t, s, at)
	for k, v := range map[string]any{
		"active": true, "sub": userName, "client_id": clientID, "scope": "mcp:tools", "iss": s.Issuer,
	} {
		if m[k] != v {
			t.Errorf("introspection %s = %v, want %v", k, m[k], v)
		}
	}
	if aud := strs(m["aud"]); len(aud) != 1 || aud[0] != mcpResource {
		t.Errorf("aud = %v", m["aud"])
	}
	if exp, _ := m["exp"].(float64); int64(exp) < before+3590 || int64(exp) > before+3610 {
		t.Errorf("exp = %v, want about an hour from now", m["exp"])
	}
	if m["act"] != nil {
		t.Errorf("act = %v for a token that was not exchanged", m["act"])
	}
	jt, err := jwt.Parse([]byte(introspectJWT(t, s, at)), jwt.WithKeySet(s.PublicKeys()),
		jwt.WithValidate(true), jwt.WithIssuer(s.Issuer), jwt.WithAudience(mcpResource), jwt.WithSubject(userName))
	if err != nil {
		t.Fatalf("introspection JWT: %v", err)
	}
	if v, _ := jt.Get("client_id"); v != clientID {
		t.Errorf("JWT client_id = %v", v)
	}
	if v, _ := jt.Get("scope"); v != "mcp:tools" {
		t.Errorf("JWT scope = %v", v)
	}

	t.Run("refresh", func(t *testing.T) {
		form := url.Values{
			"grant_type":    {"refresh_token"},
			"refresh_token": {tr["refresh_token"].(string)},
			"client_id":     {clientID},
			"resource":      {mcpResource},
		}
		resp, body := post(t, s.URL+demoas.TokenPath, "", "", form, "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		nt := tokenField(t, body, "access_token")
		m := introspectJSON(t, s, nt)
		if m["sub"] != userName || m["scope"] != "mcp:tools" || strings.Join(strs(m["aud"]), " ") != mcpResource {
			t.Fatalf("refreshed token %v", m)
		}
		// Refreshing with another resource is refused.
		form.Set("refresh_token", tokenField(t, body, "refresh_token"))
		form.Set("resource", apiResource)
		resp, body = post(t, s.URL+demoas.TokenPath, "", "", form, "")
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "invalid_target") {
			t.Fatalf("other resource: status %d: %s", resp.StatusCode, body)
		}
	})
	// Last: reusing a code revokes the tokens issued for it (fosite).
	t.Run("the code cannot be used twice", func(t *testing.T) {
		status, m := redeem(t, s, f, code, "", "", nil)
		if status != http.StatusBadRequest || m["error"] != "invalid_grant" {
			t.Fatalf("status %d, %v", status, m)
		}
	})
}

func TestAuthorizeAnswers(t *testing.T) {
	s := startConfig(t, loginConfig())
	clientID := registerPublic(t, s)

	for _, tc := range []struct {
		name   string
		form   url.Values
		status int    // page status; 0 for a redirect
		error  string // the redirect's error, or text the page shows
	}{
		{"wrong password", url.Values{"username": {userName}, "password": {"nope"}, "decision": {"allow"}}, http.StatusOK, "Wrong username or password."},
		{"unknown user", url.Values{"username": {"bob"}, "password": {userPassword}, "decision": {"allow"}}, http.StatusOK, "Wrong username or password."},
		{"no decision", url.Values{"username": {userName}, "password": {userPassword}}, http.StatusBadRequest, "Choose Allow or Deny."},
		{"deny", url.Values{"decision": {"deny"}}, 0, "access_denied"},
		{"deny with credentials", url.Values{"username": {userName}, "password": {userPassword}, "decision": {"deny"}}, 0, "access_denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFlow(clientID)
			_, page := get(t, f.url(s))
			resp, body := submit(t, s, page, tc.form)
			if tc.status == 0 {
				q := redirectParams(t, resp, publicRedir)
				if q.Get("error") != tc.error || q.Get("state") != f.state || q.Get("code") != "" {
					t.Fatalf("redirect query %v", q)
				}
				return
			}
			if resp.StatusCode != tc.status || resp.Header.Get("Location") != "" {
				t.Fatalf("status %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
			}
			if !strings.Contains(body, `id="error"`) || !strings.Contains(body, tc.error) || !strings.Contains(body, `id="password"`) {
				t.Fatalf("page:\n%s", body)
			}
			if strings.Contains(body, userPassword) {
				t.Fatal("the page echoes the password")
			}
		})
	}
}

func TestAuthorizeRequestErrors(t *testing.T) {
	s := startConfig(t, loginConfig())
	clientID := registerPublic(t, s)

	for _, tc := range []struct {
		name   string
		change func(*flow)
		error  string // the error redirected to the client; "" with page
		page   string // the error shown on a page instead (no redirect)
	}{
		{"plain PKCE", func(f *flow) { f.method = "plain"; f.challenge = f.verifier }, "invalid_request", ""},
		{"no PKCE method", func(f *flow) { f.method = "" }, "invalid_request", ""},
		{"no PKCE", func(f *flow) { f.method = "-" }, "invalid_request", ""},
		{"unknown resource", func(f *flow) { f.resources = []string{otherResource} }, "invalid_target", ""},
		{"resource differing by a slash", func(f *flow) { f.resources = []string{mcpResource + "/"} }, "invalid_target", ""},
		{"two resources", func(f *flow) { f.resources = []string{mcpResource, apiResource} }, "invalid_target", ""},
		{"no resource with two configured", func(f *flow) { f.resources = nil }, "invalid_target", ""},
		{"only scopes of another resource", func(f *flow) { f.scope = "api:read" }, "invalid_scope", ""},
		{"only unknown scopes", func(f *flow) { f.scope = "openid offline_access" }, "invalid_scope", ""},
		{"response type token", func(f *flow) { f.extra = url.Values{"response_type": {"token"}} }, "unsupported_response_type", ""},
		{"unknown client", func(f *flow) { f.clientID = "nobody" }, "", "invalid_client"},
		{"no client", func(f *flow) { f.clientID = "" }, "", "invalid_client"},
		{"unregistered redirect URI", func(f *flow) { f.redirectURI = "https://evil.example.com/cb" }, "", "invalid_request"},
		{"redirect URI with another path", func(f *flow) { f.redirectURI = "http://127.0.0.1:9999/other" }, "", "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFlow(clientID)
			tc.change(&f)
			resp, body := get(t, f.url(s))
			if tc.page != "" {
				if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" ||
					!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, tc.page) {
					t.Fatalf("status %d, Location %q, body:\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
				}
				return
			}
			loc, err := url.Parse(resp.Header.Get("Location"))
			if err != nil || resp.StatusCode/100 != 3 || !strings.HasPrefix(loc.String(), publicRedir) {
				t.Fatalf("status %d, Location %q, body:\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
			}
			q := loc.Query()
			if loc.Fragment != "" { // implicit response types answer in the fragment
				q, _ = url.ParseQuery(loc.Fragment)
			}
			if q.Get("error") != tc.error || q.Get("code") != "" {
				t.Fatalf("redirect %s, want error %s", loc, tc.error)
			}
		})
	}
}

func TestAuthorizeScopes(t *testing.T) {
	s := startConfig(t, loginConfig())
	clientID := registerPublic(t, s)
	for _, tc := range []struct{ requested, granted string }{
		{"mcp:tools", "mcp:tools"},
		{"-", "mcp:tools mcp:admin"},
		{"mcp:admin mcp:tools", "mcp:tools mcp:admin"},
		{"mcp:tools openid offline_access", "mcp:tools"},
		{"mcp:tools api:read", "mcp:tools"},
	} {
		t.Run(tc.requested, func(t *testing.T) {
			f := newFlow(clientID)
			f.scope = tc.requested
			_, page := get(t, f.url(s))
			for _, sc := range []string{"mcp:tools", "mcp:admin", "api:read", "openid", "offline_access"} {
				shown := strings.Contains(page, "<li><code>"+sc+"</code></li>")
				if want := strings.Contains(" "+tc.granted+" ", " "+sc+" "); shown != want {
					t.Errorf("page shows %s: %v, want %v", sc, shown, want)
				}
			}
			tr := loginToken(t, s, f)
			if tr["scope"] != tc.granted {
				t.Fatalf("scope %v, want %s", tr["scope"], tc.granted)
			}
			if m := introspectJSON(t, s, tr["access_token"].(string)); m["scope"] != tc.granted {
				t.Fatalf("introspected scope %v", m["scope"])
			}
		})
	}

	t.Run("the only resource is the default", func(t *testing.T) {
		cfg := loginConfig()
		cfg.Resources = cfg.Resources[:1]
		cfg.Exchanges = nil
		s := startConfig(t, cfg)
		f := newFlow(registerPublic(t, s))
		f.resources = nil
		m := introspectJSON(t, s, loginToken(t, s, f)["access_token"].(string))
		if strings.Join(strs(m["aud"]), " ") != mcpResource {
			t.Fatalf("aud %v", m["aud"])
		}
	})
}

func TestTokenRequestErrors(t *testing.T) {
	s := startConfig(t, loginConfig())
	clientID := registerPublic(t, s)
	other := registerPublic(t, s)

	for _, tc := range []struct {
		name   string
		change func(f *flow, form url.Values)
		status int
		error  string
	}{
		{"wrong verifier", func(f *flow, _ url.Values) { f.verifier = newVerifier() }, http.StatusBadRequest, "invalid_grant"},
		{"no verifier", func(f *flow, form url.Values) { form.Set("code_verifier", "") }, http.StatusBadRequest, "invalid_grant"},
		{"verifier equal to the challenge", func(f *flow, form url.Values) { form.Set("code_verifier", s256(f.verifier)) }, http.StatusBadRequest, "invalid_grant"},
		{"another resource", func(_ *flow, form url.Values) { form.Set("resource", apiResource) }, http.StatusBadRequest, "invalid_target"},
		{"another redirect URI", func(f *flow, form url.Values) { form.Set("redirect_uri", localRedir) }, http.StatusBadRequest, "invalid_grant"},
		{"another client", func(_ *flow, form url.Values) { form.Set("client_id", other) }, http.StatusBadRequest, "invalid_grant"},
		{"unknown client", func(_ *flow, form url.Values) { form.Set("client_id", "nobody") }, http.StatusUnauthorized, "invalid_client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFlow(clientID)
			code := authorize(t, s, f)
			form := url.Values{}
			tc.change(&f, form)
			status, m := redeem(t, s, f, code, "", "", form)
			if status != tc.status || m["error"] != tc.error {
				t.Fatalf("status %d, %v; want %d %s", status, m, tc.status, tc.error)
			}
		})
	}
}

func TestLoopbackRedirectPorts(t *testing.T) {
	s := startConfig(t, loginConfig())
	status, reg := register(t, s, map[string]any{
		"redirect_uris":              []string{"http://127.0.0.1/callback", "http://localhost:7777/cb", "http://[::1]:1234/cb", "https://app.example.com/cb"},
		"token_endpoint_auth_method": "none",
	})
	if status != http.StatusCreated {
		t.Fatalf("register: %d %v", status, reg)
	}
	clientID := reg["client_id"].(string)

	for _, tc := range []struct {
		redirect string
		ok       bool
	}{
		{"http://127.0.0.1:5555/callback", true},
		{"http://127.0.0.1/callback", true},
		{"http://localhost:61234/cb", true},
		{"http://localhost:7777/cb", true},
		{"http://localhost/cb", true},
		{"http://[::1]:4321/cb", true},
		{"http://localhost:61234/other", false},
		{"http://localhost:61234/cb?x=1", false},
		{"http://127.0.0.1:5555/cb", false},        // the 127.0.0.1 URI's path is /callback
		{"http://127.0.0.2:5555/callback", false},  // another host
		{"https://localhost:7777/cb", false},       // another scheme
		{"https://app.example.com:8443/cb", false}, // not loopback: exact match only
	} {
		t.Run(tc.redirect, func(t *testing.T) {
			f := newFlow(clientID)
			f.redirectURI = tc.redirect
			if !tc.ok {
				resp, body := get(t, f.url(s))
				if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
					t.Fatalf("status %d, Location %q:\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
				}
				return
			}
			code := authorize(t, s, f)
			if status, m := redeem(t, s, f, code, "", "", nil); status != http.StatusOK {
				t.Fatalf("token: status %d, %v", status, m)
			}
		})
	}
}

func TestAuthorizeWithoutUsers(t *testing.T) {
	s := start(t, time.Hour)
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		req, _ := http.NewRequest(method, s.URL+demoas.AuthorizationPath+"?"+newFlow("agent").query().Encode(), nil)
		resp, err := noRedirects.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", method, resp.StatusCode)
		}
	}
	if status, _ := postJSON(t, s.URL+demoas.RegistrationPath, `{"redirect_uris":["http://127.0.0.1/cb"]}`); status != http.StatusNotFound {
		t.Errorf("registration without users: status %d, want 404", status)
	}
}

func tokenField(t *testing.T, body []byte, field string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	v, _ := m[field].(string)
	if v == "" {
		t.Fatalf("no %s in %s", field, body)
	}
	return v
}
