package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/phantomgate/caddy-phantom-token/examples/demoas"
)

// walkResult is what the walkthrough found: its failed expectations, and
// the facts the tests look at.
type walkResult struct {
	failures []string
	agent    myDataCall
	users    map[string]myDataCall
	pages    map[string]string // user → the login page's text
	tokens   []string          // every access token a client got
}

func (r *walkResult) fail(format string, a ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, a...))
}

// walk is one run of the walkthrough.
type walk struct {
	s   *stack
	out io.Writer
	res *walkResult
	// http follows no redirects: the walkthrough reads them.
	http *http.Client
	step int
}

func (w *walk) p(format string, a ...any) { fmt.Fprintf(w.out, format+"\n", a...) }

// heading prints the next step's title.
func (w *walk) heading(format string, a ...any) {
	w.step++
	w.p("%d. %s", w.step, fmt.Sprintf(format, a...))
}

// walkthrough runs the scripted tour: discovery, a headless agent, two users
// logging in, and which token travelled where. It prints what it does and
// what failed.
func (s *stack) walkthrough(ctx context.Context, out io.Writer) *walkResult {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	w := &walk{
		s: s, out: out,
		res: &walkResult{users: map[string]myDataCall{}, pages: map[string]string{}},
		http: &http.Client{Timeout: 15 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
	}
	w.p("The example deployment, scripted")
	w.p("  gateway               %s  (MCP server at /mcp, API at /api)", s.origin)
	w.p("  authorization server  %s", s.as.URL)
	w.p("")
	w.discovery(ctx)
	w.headlessAgent(ctx)
	for _, u := range demoUsers {
		w.user(ctx, u)
	}
	w.usersApart()
	w.audiences(ctx)
	w.p("")
	w.p("introspection calls served by the AS: %d", s.as.IntrospectionCalls())
	if len(w.res.failures) == 0 {
		w.p("all checks passed")
	} else {
		w.p("FAILED")
		for _, f := range w.res.failures {
			w.p("  - %s", f)
		}
	}
	return w.res
}

// discovery is what every MCP client does first.
func (w *walk) discovery(ctx context.Context) {
	s := w.s
	w.heading("discovery")
	resp, _, err := w.send(ctx, http.MethodPost, s.mcpURL, "", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	if err != nil {
		w.res.fail("POST /mcp without a token: %v", err)
		return
	}
	challenge := resp.Header.Get("WWW-Authenticate")
	w.p("  POST /mcp  no token  %d  WWW-Authenticate: %s", resp.StatusCode, challenge)
	metadataURL := s.origin + "/.well-known/oauth-protected-resource/mcp"
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(challenge, `resource_metadata="`+metadataURL+`"`) {
		w.res.fail("POST /mcp without a token: %d %q, want 401 naming %s", resp.StatusCode, challenge, metadataURL)
	}
	var prm struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
	}
	if err := w.getJSON(ctx, metadataURL, &prm); err != nil || prm.Resource != s.mcpURL || !slices.Equal(prm.AuthorizationServers, []string{s.as.Issuer}) {
		w.res.fail("protected resource metadata: %+v, %v", prm, err)
	}
	w.p("  GET  /.well-known/oauth-protected-resource/mcp  resource %s, authorization_servers %v", prm.Resource, prm.AuthorizationServers)
	// The API route publishes its own document: the MCP server, as the
	// API's client, could discover it the same way.
	var apiPRM struct {
		Resource        string   `json:"resource"`
		ScopesSupported []string `json:"scopes_supported"`
	}
	if err := w.getJSON(ctx, s.origin+"/.well-known/oauth-protected-resource/api", &apiPRM); err != nil ||
		apiPRM.Resource != s.apiURL || !slices.Equal(apiPRM.ScopesSupported, []string{apiScope}) {
		w.res.fail("the API's protected resource metadata: %+v, %v", apiPRM, err)
	}
	w.p("  GET  /.well-known/oauth-protected-resource/api  resource %s, scopes_supported %v", apiPRM.Resource, apiPRM.ScopesSupported)
	var asm map[string]any
	if err := w.getJSON(ctx, s.as.URL+demoas.MetadataPath, &asm); err != nil {
		w.res.fail("authorization server metadata: %v", err)
		return
	}
	for key, want := range map[string]any{
		"authorization_endpoint":                s.as.URL + demoas.AuthorizationPath,
		"registration_endpoint":                 s.as.URL + demoas.RegistrationPath,
		"client_id_metadata_document_supported": true,
	} {
		if asm[key] != want {
			w.res.fail("AS metadata %s = %v, want %v", key, asm[key], want)
		}
	}
	if !containsAny(asm["code_challenge_methods_supported"], "S256") {
		w.res.fail("AS metadata code_challenge_methods_supported = %v, want S256", asm["code_challenge_methods_supported"])
	}
	w.p("  GET  %s%s  authorization code + PKCE (S256), registration, Client ID Metadata Documents", s.as.URL, demoas.MetadataPath)
	w.p("")
}

// headlessAgent is an agent with its own credentials: client credentials
// for the MCP URL, then my_data.
func (w *walk) headlessAgent(ctx context.Context) {
	s := w.s
	w.heading("a headless agent (client credentials)")
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {mcpScope}, "resource": {s.mcpURL}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.as.URL+demoas.TokenPath, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(agentClientID, s.agentSecret)
	if err := doJSON(w.http, req, http.StatusOK, &tok); err != nil || tok.AccessToken == "" {
		w.res.fail("client credentials token: %v", err)
		return
	}
	w.res.tokens = append(w.res.tokens, tok.AccessToken)
	w.p("  token       %s", describeToken(tok.AccessToken))
	call, err := s.callMyData(ctx, tok.AccessToken)
	if err != nil {
		w.res.fail("headless agent: %v", err)
		return
	}
	w.res.agent = call
	w.p("  tools/list  %s", strings.Join(call.tools, ", "))
	w.p("  my_data     %s", compactJSON(call.data))
	w.wantData("the headless agent", call.data, agentClientID, agentNotes)
	w.p("")
}

// user logs one demo user in and calls my_data with their token.
func (w *walk) user(ctx context.Context, u demoUser) {
	s := w.s
	w.heading("%s logs in (authorization code + PKCE, dynamic client registration)", u.name)
	login, err := s.loginUser(ctx, w.http, u)
	if err != nil {
		w.res.fail("%s: %v", u.name, err)
		return
	}
	w.res.tokens = append(w.res.tokens, login.token)
	w.res.pages[u.name] = login.page
	w.p("  registered client %s; the login page shows the client, %s and %s; consented", login.clientID, s.mcpURL, mcpScope)
	if !strings.Contains(login.page, s.mcpURL) || !strings.Contains(login.page, mcpScope) || !strings.Contains(login.page, login.clientID) {
		w.res.fail("%s: the login page does not show the client, the resource and the scope: %q", u.name, login.page)
	}
	w.p("  token       %s", describeToken(login.token))
	call, err := s.callMyData(ctx, login.token)
	if err != nil {
		w.res.fail("%s: %v", u.name, err)
		return
	}
	w.res.users[u.name] = call
	w.p("  my_data     %s", compactJSON(call.data))
	w.wantData(u.name, call.data, u.name, u.notes)
	w.p("")
}

// wantData checks a my_data result: the user and their notes.
func (w *walk) wantData(who string, data map[string]any, user string, notes []string) {
	want := map[string]any{"user": user, "notes": toAny(notes)}
	if !reflect.DeepEqual(data, want) {
		w.res.fail("%s: my_data returned %s, want %s", who, compactJSON(data), compactJSON(want))
	}
}

// usersApart checks that no user's call returned another user's data.
func (w *walk) usersApart() {
	for name, call := range w.res.users {
		if got, _ := call.data["user"].(string); got != name {
			w.res.fail("%s's token returned %v's data", name, call.data["user"])
		}
	}
}

// audiences shows which token travelled where, and that each one is refused
// where it does not belong.
func (w *walk) audiences(ctx context.Context) {
	s := w.s
	w.heading("which token travelled where")
	mcpJWTs := w.wantJWTs("the MCP server", s.mcpSeen.requests(), s.mcpURL)
	apiJWTs := w.wantJWTs("the API", s.apiSeen.requests(), s.apiURL)
	for _, jwt := range apiJWTs {
		if slices.Contains(mcpJWTs, jwt) {
			w.res.fail("the API received a JWT the MCP server received")
		}
	}
	var exchanged []string
	for _, r := range s.mcpOut.requests() {
		if r.url == s.apiMeURL {
			if isJWT(r.token) || r.token == "" {
				w.res.fail("the MCP server called the API without an opaque token")
			}
			exchanged = append(exchanged, r.token)
		}
	}
	w.p("  the MCP server received %d requests, each with a JWT for %s, never an opaque token", len(s.mcpSeen.requests()), s.mcpURL)
	w.p("  it called the API through the gateway %d times with opaque tokens it got by token exchange (RFC 8693)", len(exchanged))
	w.p("  the API received %d requests, each with a JWT for %s, never the MCP server's", len(apiJWTs), s.apiURL)
	for _, tok := range w.res.tokens {
		if isJWT(tok) {
			w.res.fail("a client received a JWT")
		}
		for _, r := range append(s.mcpSeen.requests(), s.apiSeen.requests()...) {
			if r.token == tok {
				w.res.fail("a client's opaque token reached the MCP server or the API")
			}
		}
	}
	w.p("  the clients received %d access tokens, all opaque", len(w.res.tokens))
	if len(exchanged) == 0 || len(mcpJWTs) == 0 || len(w.res.tokens) < 2 {
		w.res.fail("nothing to check the audiences with (exchanged %d, MCP JWTs %d, client tokens %d)", len(exchanged), len(mcpJWTs), len(w.res.tokens))
		return
	}
	refusals := []struct {
		what, method, url, token string
	}{
		{"a client's token for the MCP server, on the API route", http.MethodGet, s.apiMeURL, w.res.tokens[len(w.res.tokens)-1]},
		{"the MCP server's exchanged API token, on the MCP route", http.MethodPost, s.mcpURL, exchanged[0]},
		{"a JWT the MCP server received, sent to the API directly", http.MethodGet, "http://" + s.apiDirect + "/api/me", mcpJWTs[0]},
	}
	for _, r := range refusals {
		body := ""
		if r.method == http.MethodPost {
			body = `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`
		}
		resp, _, err := w.send(ctx, r.method, r.url, r.token, body)
		if err != nil {
			w.res.fail("%s: %v", r.what, err)
			continue
		}
		challenge := resp.Header.Get("WWW-Authenticate")
		w.p("  refused: %s  %d  %s", r.what, resp.StatusCode, challenge)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(challenge, `error="invalid_token"`) {
			w.res.fail("%s: %d %q, want 401 invalid_token", r.what, resp.StatusCode, challenge)
		}
	}
}

// wantJWTs checks that every request a component received carried a JWT
// whose audience is its own, and returns the distinct JWTs.
func (w *walk) wantJWTs(who string, reqs []seenRequest, audience string) []string {
	var out []string
	for _, r := range reqs {
		claims, ok := jwtClaims(r.token)
		if !ok {
			w.res.fail("%s received %s %s without a JWT", who, r.method, r.url)
			continue
		}
		if !containsAny(claims["aud"], audience) {
			w.res.fail("%s received a JWT for %v, want %s", who, claims["aud"], audience)
		}
		if !slices.Contains(out, r.token) {
			out = append(out, r.token)
		}
	}
	return out
}

// send makes one request through w.http with an optional bearer token.
func (w *walk) send(ctx context.Context, method, u, token, body string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, strings.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
	}
	resp, err := w.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, b, nil
}

func (w *walk) getJSON(ctx context.Context, u string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	return doJSON(w.http, req, http.StatusOK, into)
}

// jwtClaims decodes (without verifying: the receiver did) a JWT's payload.
func jwtClaims(tok string) (map[string]any, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, false
	}
	var claims map[string]any
	return claims, json.Unmarshal(raw, &claims) == nil
}

func isJWT(tok string) bool {
	_, ok := jwtClaims(tok)
	return ok
}

// containsAny reports whether v (a string or a JSON array) contains want.
func containsAny(v any, want string) bool {
	switch v := v.(type) {
	case string:
		return v == want
	case []any:
		return slices.Contains(v, any(want))
	}
	return false
}

// describeToken says what a token is without showing it.
func describeToken(tok string) string {
	kind := "opaque"
	if isJWT(tok) {
		kind = "a JWT (!)"
	}
	return fmt.Sprintf("%s, %d characters", kind, len(tok))
}

func compactJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
