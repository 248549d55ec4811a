package demoas_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/phantomgate/caddy-phantom-token/examples/demoas"
)

const (
	userName     = "alice"
	userPassword = "alice-password"
	apiResource  = "https://api.example.com/v1"
	mcpServerID  = "mcp-server"
	mcpSecret    = "mcp-server-secret"
	publicRedir  = "http://127.0.0.1:9999/callback"
	localRedir   = "http://localhost:7777/cb"
)

// loginConfig is a server with a user, two resources and an exchange from
// the MCP resource to the API.
func loginConfig() demoas.Config {
	return demoas.Config{
		Clients: []demoas.Client{
			{ID: gatewayID, Secret: gatewaySecret},
			{ID: agentID, Secret: agentSecret, Scopes: []string{"mcp:tools"}, Audience: []string{audience}},
			{ID: mcpServerID, Secret: mcpSecret},
		},
		Users: []demoas.User{{Username: userName, Password: userPassword, Name: "Alice"}},
		Resources: []demoas.Resource{
			{URL: mcpResource, Name: "Demo MCP server", Scopes: []string{"mcp:tools", "mcp:admin"}},
			{URL: apiResource, Name: "Downstream API", Scopes: []string{"api:read", "api:write"}},
		},
		Exchanges: []demoas.Exchange{{
			Client: mcpServerID,
			From:   mcpResource,
			To:     apiResource,
			Scopes: map[string][]string{
				"mcp:tools": {"api:read"},
				"mcp:admin": {"api:read", "api:write"},
			},
		}},
		TokenLifetime: time.Hour,
	}
}

func startConfig(t *testing.T, cfg demoas.Config) *demoas.Server {
	t.Helper()
	s, err := demoas.Start(cfg)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// noRedirects is a client that returns redirects instead of following them.
var noRedirects = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       10 * time.Second,
}

// register registers a client by RFC 7591 and returns the response.
func register(t *testing.T, s *demoas.Server, meta map[string]any) (int, map[string]any) {
	t.Helper()
	body, _ := json.Marshal(meta)
	return postJSON(t, s.URL+demoas.RegistrationPath, string(body))
}

// postJSON posts a JSON body and decodes the JSON answer, if any.
func postJSON(t *testing.T, u, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(u, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// registerPublic registers a public client with publicRedir and localRedir.
func registerPublic(t *testing.T, s *demoas.Server) string {
	t.Helper()
	status, m := register(t, s, map[string]any{
		"client_name":                "Test <MCP> Client",
		"redirect_uris":              []string{publicRedir, localRedir},
		"token_endpoint_auth_method": "none",
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
	})
	if status != http.StatusCreated {
		t.Fatalf("register: status %d, %v", status, m)
	}
	return m["client_id"].(string)
}

// flow is one authorization request.
type flow struct {
	clientID, redirectURI string
	verifier              string
	method                string // code_challenge_method; "-" for none
	challenge             string // default: S256 of verifier
	scope                 string // "-" for none
	resources             []string
	state                 string
	extra                 url.Values
}

func newVerifier() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func s256(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// newFlow is a valid request for the MCP resource with scope mcp:tools.
func newFlow(clientID string) flow {
	return flow{
		clientID:    clientID,
		redirectURI: publicRedir,
		verifier:    newVerifier(),
		method:      "S256",
		scope:       "mcp:tools",
		resources:   []string{mcpResource},
		state:       "state-1234567890",
	}
}

func (f flow) query() url.Values {
	q := url.Values{
		"response_type": {"code"},
		"client_id":     {f.clientID},
		"redirect_uri":  {f.redirectURI},
		"state":         {f.state},
		"resource":      f.resources,
	}
	if f.method != "-" {
		q.Set("code_challenge_method", f.method)
		ch := f.challenge
		if ch == "" {
			ch = s256(f.verifier)
		}
		q.Set("code_challenge", ch)
	}
	if f.scope != "-" {
		q.Set("scope", f.scope)
	}
	for k, v := range f.extra {
		q[k] = v
	}
	return q
}

func (f flow) url(s *demoas.Server) string {
	return s.URL + demoas.AuthorizationPath + "?" + f.query().Encode()
}

// get sends a GET without following redirects.
func get(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	resp, err := noRedirects.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

var actionRE = regexp.MustCompile(`<form method="post" action="([^"]*)"`)

// submit posts the login form of page (served by s) with form.
func submit(t *testing.T, s *demoas.Server, page string, form url.Values) (*http.Response, string) {
	t.Helper()
	m := actionRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no form in page:\n%s", page)
	}
	action := html.UnescapeString(m[1])
	if !strings.HasPrefix(action, demoas.AuthorizationPath+"?") {
		t.Fatalf("form action %q", action)
	}
	resp, err := noRedirects.Post(s.URL+action, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func allow() url.Values {
	return url.Values{"username": {userName}, "password": {userPassword}, "decision": {"allow"}}
}

// redirectParams checks resp redirects to f's redirect URI and returns the
// query parameters.
func redirectParams(t *testing.T, resp *http.Response, redirectURI string) url.Values {
	t.Helper()
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("status %d, want a redirect", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirectURI {
		t.Fatalf("redirected to %s, want %s", loc, redirectURI)
	}
	return loc.Query()
}

// authorize runs f through the page and returns the code.
func authorize(t *testing.T, s *demoas.Server, f flow) string {
	t.Helper()
	resp, page := get(t, f.url(s))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("authorize page: status %d:\n%s", resp.StatusCode, page)
	}
	resp, body := submit(t, s, page, allow())
	q := redirectParams(t, resp, f.redirectURI)
	if q.Get("code") == "" || q.Get("state") != f.state {
		t.Fatalf("redirect query %v, body %s", q, body)
	}
	return q.Get("code")
}

// redeem exchanges a code; user/pass != "" authenticates the client with
// client_secret_basic, else client_id goes in the body.
func redeem(t *testing.T, s *demoas.Server, f flow, code, user, pass string, extra url.Values) (int, map[string]any) {
	t.Helper()
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"code_verifier": {f.verifier},
		"redirect_uri":  {f.redirectURI},
	}
	if user == "" {
		form.Set("client_id", f.clientID)
	}
	for k, v := range extra {
		form[k] = v
	}
	resp, body := post(t, s.URL+demoas.TokenPath, user, pass, form, "")
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("token response %q: %v", body, err)
	}
	return resp.StatusCode, m
}

// loginToken runs the whole flow and returns the access token response.
func loginToken(t *testing.T, s *demoas.Server, f flow) map[string]any {
	t.Helper()
	status, m := redeem(t, s, f, authorize(t, s, f), "", "", nil)
	if status != http.StatusOK {
		t.Fatalf("token: status %d, %v", status, m)
	}
	return m
}

// introspectJWT returns the JWT introspection of tok.
func introspectJWT(t *testing.T, s *demoas.Server, tok string) string {
	t.Helper()
	resp, body := post(t, s.URL+demoas.IntrospectionPath, gatewayID, gatewaySecret, url.Values{"token": {tok}}, "application/jwt")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("introspect: status %d: %s", resp.StatusCode, body)
	}
	return string(body)
}

func strs(v any) []string {
	list, _ := v.([]any)
	var out []string
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
