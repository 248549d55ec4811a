package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/phantomgate/caddy-phantom-token/examples/demoas"
	"github.com/phantomgate/caddy-phantom-token/examples/internal/nodeclient"
)

// freeAddr returns a loopback address with a port nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestWalkthrough runs `go run ./deployment -once` in process: discovery,
// the headless agent, two users logging in (Go's HTTP client in place of
// the browser), and which token travelled where. Every check passes, and the
// facts behind the output hold.
func TestWalkthrough(t *testing.T) {
	var out bytes.Buffer
	var res *walkResult
	var s *stack
	err := run(context.Background(), options{listen: freeAddr(t), asListen: "127.0.0.1:0", once: true}, &out,
		func(st *stack, r *walkResult) { s, res = st, r })
	t.Log("\n" + out.String())
	if err != nil || res == nil {
		t.Fatalf("run = %v", err)
	}
	text := out.String()
	for _, want := range []string{
		"POST /mcp  no token  401",
		"authorization code + PKCE (S256), registration, Client ID Metadata Documents",
		`my_data     {"notes":["Nightly report is ready"],"user":"agent"}`,
		`my_data     {"notes":["Buy milk","Book the dentist"],"user":"alice"}`,
		`my_data     {"notes":["Fix the roof"],"user":"bob"}`,
		"refused: a client's token for the MCP server, on the API route  401",
		"refused: the MCP server's exchanged API token, on the MCP route  401",
		"refused: a JWT the MCP server received, sent to the API directly  401",
		"all checks passed",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if !slices.Contains(res.agent.tools, "my_data") || !slices.Contains(res.agent.tools, "whoami") {
		t.Errorf("tools %v", res.agent.tools)
	}
	if len(res.tokens) != 3 {
		t.Errorf("the clients got %d tokens, want 3 (agent, alice, bob)", len(res.tokens))
	}
	for _, secret := range []string{s.agentSecret, s.mcpServerSecret} {
		if strings.Contains(text, secret) {
			t.Error("-once printed a secret")
		}
	}
	for _, tok := range res.tokens {
		if strings.Contains(text, tok) {
			t.Error("-once printed a token")
		}
	}
}

// TestWalkthroughFails: the walkthrough notices when a user gets data that
// is not theirs, and names it.
func TestWalkthroughFails(t *testing.T) {
	s, err := startStack(options{listen: freeAddr(t), asListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	var out bytes.Buffer
	w := &walk{s: s, out: &out, res: &walkResult{users: map[string]myDataCall{}, pages: map[string]string{}},
		http: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	// bob logs in, but the walkthrough expects other notes for him.
	w.user(context.Background(), demoUser{name: "bob", password: demoUsers[1].password, notes: []string{"someone else's"}})
	if len(w.res.failures) != 1 || !strings.Contains(w.res.failures[0], `my_data returned {"notes":["Fix the roof"],"user":"bob"}`) {
		t.Errorf("failures %q, want the unexpected data named", w.res.failures)
	}
}

// browserReport is what browser-login.mjs prints.
type browserReport struct {
	ClientID string `json:"clientId"`
	Page     struct {
		Client, Resource, Scopes string
	} `json:"page"`
	Tools       []string                `json:"tools"`
	MyData      map[string]any          `json:"myData"`
	TokenIsJWT  bool                    `json:"tokenIsJWT"`
	TokenLength int                     `json:"tokenLength"`
	Trace       []nodeclient.TraceEntry `json:"trace"`
}

// TestBrowserLogin: user-facing agents. The npm MCP SDK client with its
// OAuth client provider runs the authorization code flow with PKCE; Debian's
// Chromium (driven by playwright-core) logs the user in and consents on the
// authorization server's page. alice's client registers with a Client ID
// Metadata Document (served over TLS, as the SDK requires https), bob's by
// dynamic client registration. Each gets an opaque token, lists the tools
// and gets their own data from the API through my_data.
func TestBrowserLogin(t *testing.T) {
	nodeclient.Require(t)
	nodeclient.RequireChromium(t)

	callback := freeAddr(t)
	_, callbackPort, _ := net.SplitHostPort(callback)
	redirect := "http://" + callback + "/callback"
	var cimdFetches atomic.Int64
	var cimdURL string
	cimd := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/clients/browser-e2e.json" {
			http.NotFound(w, r)
			return
		}
		cimdFetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"client_id":                  cimdURL,
			"client_name":                "Browser e2e agent",
			"redirect_uris":              []string{redirect},
			"grant_types":                []string{"authorization_code"},
			"response_types":             []string{"code"},
			"token_endpoint_auth_method": "none",
		})
	}))
	defer cimd.Close()
	cimdURL = cimd.URL + "/clients/browser-e2e.json"

	s, err := startStack(options{listen: freeAddr(t), asListen: "127.0.0.1:0", metadataClient: cimd.Client()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()

	for _, c := range []struct {
		mode string
		user demoUser
	}{
		{"cimd", demoUsers[0]},
		{"dcr", demoUsers[1]},
	} {
		t.Run(c.mode+" "+c.user.name, func(t *testing.T) {
			mcpBefore, apiBefore := len(s.mcpSeen.requests()), len(s.apiSeen.requests())
			args := []string{s.mcpURL, c.mode, c.user.name, c.user.password, callbackPort}
			if c.mode == "cimd" {
				args = append(args, cimdURL)
			}
			var rep browserReport
			nodeclient.RunJSON(t, &rep, "browser-login.mjs", args...)
			t.Logf("client %s; the page showed client %q, resource %q, scopes %q; my_data %v; %d requests",
				rep.ClientID, rep.Page.Client, rep.Page.Resource, rep.Page.Scopes, rep.MyData, len(rep.Trace))

			want := map[string]any{"user": c.user.name, "notes": toAny(c.user.notes)}
			if !reflect.DeepEqual(rep.MyData, want) {
				t.Errorf("my_data = %v, want %v", rep.MyData, want)
			}
			if !slices.Contains(rep.Tools, "my_data") {
				t.Errorf("tools %v", rep.Tools)
			}
			if rep.TokenIsJWT || rep.TokenLength == 0 {
				t.Errorf("the client's token: JWT %v, length %d; want an opaque token", rep.TokenIsJWT, rep.TokenLength)
			}
			// The page showed the client, the resource and the scope.
			if !strings.Contains(rep.Page.Client, rep.ClientID) || rep.Page.Resource == "" || !strings.Contains(rep.Page.Resource, s.mcpURL) || !strings.Contains(rep.Page.Scopes, mcpScope) {
				t.Errorf("login page showed %+v (client id %s)", rep.Page, rep.ClientID)
			}
			s.wantFlow(t, rep, c.mode)
			if c.mode == "cimd" {
				if rep.ClientID != cimdURL || cimdFetches.Load() == 0 {
					t.Errorf("client id %q, metadata document fetched %d times; want %s, fetched", rep.ClientID, cimdFetches.Load(), cimdURL)
				}
				if !strings.Contains(rep.Page.Client, "Browser e2e agent") {
					t.Errorf("the page does not show the document's client_name: %q", rep.Page.Client)
				}
			}
			// The MCP server and the API saw this user's JWTs, each with its
			// own audience.
			s.wantSubjects(t, "the MCP server", s.mcpSeen.requests()[mcpBefore:], s.mcpURL, c.user.name)
			s.wantSubjects(t, "the API", s.apiSeen.requests()[apiBefore:], s.apiURL, c.user.name)
		})
	}
}

// wantFlow checks the SDK's requests: discovery from the 401, registration
// (dcr only), the code redeemed with PKCE for the MCP resource, and MCP
// requests that succeeded with the token.
func (s *stack) wantFlow(t *testing.T, rep browserReport, mode string) {
	t.Helper()
	steps := []struct {
		what  string
		match func(nodeclient.TraceEntry) bool
	}{
		{"401 without a token", func(e nodeclient.TraceEntry) bool {
			return e.URL == s.mcpURL && !e.Authorization && e.Status == http.StatusUnauthorized
		}},
		{"protected resource metadata", func(e nodeclient.TraceEntry) bool {
			return e.URL == s.origin+"/.well-known/oauth-protected-resource/mcp" && e.Status == http.StatusOK
		}},
		{"authorization server metadata", func(e nodeclient.TraceEntry) bool {
			return strings.HasPrefix(e.URL, s.as.URL+"/.well-known/") && e.Status == http.StatusOK
		}},
		{"the code redeemed for the MCP resource", func(e nodeclient.TraceEntry) bool {
			return e.URL == s.as.URL+demoas.TokenPath && e.Form["grant_type"] == "authorization_code" && e.Form["resource"] == s.mcpURL && e.Status == http.StatusOK
		}},
		{"tools/call my_data with the token", func(e nodeclient.TraceEntry) bool {
			return e.URL == s.mcpURL && e.Authorization && e.RPCName == "my_data" && e.Status == http.StatusOK
		}},
	}
	next := 0
	for _, st := range steps {
		i := slices.IndexFunc(rep.Trace[next:], st.match)
		if i < 0 {
			t.Fatalf("%s: step %q not found after request %d; trace %+v", mode, st.what, next, rep.Trace)
		}
		next += i + 1
	}
	registered := slices.ContainsFunc(rep.Trace, func(e nodeclient.TraceEntry) bool {
		return e.URL == s.as.URL+demoas.RegistrationPath && e.Status == http.StatusCreated
	})
	if registered != (mode == "dcr") {
		t.Errorf("%s: dynamic registration happened: %v", mode, registered)
	}
}

// wantSubjects checks that every request a component received carried a JWT
// for audience and subject user.
func (s *stack) wantSubjects(t *testing.T, who string, reqs []seenRequest, audience, user string) {
	t.Helper()
	if len(reqs) == 0 {
		t.Errorf("%s received nothing", who)
	}
	for _, r := range reqs {
		claims, ok := jwtClaims(r.token)
		if !ok || !containsAny(claims["aud"], audience) || claims["sub"] != user {
			t.Errorf("%s received %s %s with aud %v, sub %v (JWT %v); want %s, %s", who, r.method, r.url, claims["aud"], claims["sub"], ok, audience, user)
		}
	}
}

// TestREADMEShowsTheCaddyfile: the README's "The example deployment" shows
// the Caddyfile the command runs, byte for byte.
func TestREADMEShowsTheCaddyfile(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "<!-- deployment-caddyfile -->\n```caddyfile\n")
	if !ok {
		t.Fatal("README has no deployment-caddyfile block")
	}
	block, _, _ = strings.Cut(block, "```\n")
	path, err := locateCaddyfile()
	if err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if block != string(file) {
		t.Error("README's deployment Caddyfile differs from examples/deployment/Caddyfile")
	}
}

// TestBanner: without -once the command prints where everything runs, the
// demo users, the lines for real clients, and serves until stopped.
func TestBanner(t *testing.T) {
	var out bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	listen := freeAddr(t)
	err := run(ctx, options{listen: listen, asListen: "127.0.0.1:0"}, &out, func(s *stack, res *walkResult) {
		if res != nil {
			t.Error("a walkthrough ran without -once")
		}
		// Still serving: the metadata answers.
		resp, err := http.Get(s.origin + "/.well-known/oauth-protected-resource/mcp")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("metadata while serving: %v %v", resp, err)
		} else {
			resp.Body.Close()
		}
		cancel()
	})
	if err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{
		"MCP server (through the gateway)   http://" + listen + "/mcp",
		"claude mcp add --transport http phantom-demo http://" + listen + "/mcp",
		"npx @modelcontextprotocol/inspector --web --transport http --server-url http://" + listen + "/mcp",
		"alice  password " + demoUsers[0].password,
		"bob    password " + demoUsers[1].password,
		"stopping",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("banner lacks %q:\n%s", want, text)
		}
	}
}
