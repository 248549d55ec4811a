package mcpserver_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/phantomgate/caddy-phantom-token/examples/mcpserver"
)

func TestMCPSessionWithValidJWT(t *testing.T) {
	ki := newKeyIssuer(t)
	srv := startServer(t, ki)
	cs := connect(t, srv.URL+"/mcp", ki.sign(t, "k1", "at+jwt", claims()), nil)
	ctx := context.Background()

	if got := cs.InitializeResult().ServerInfo.Name; got != "phantom-token-example" {
		t.Errorf("server name %q", got)
	}
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
	}
	if strings.Join(names, ",") != "countdown,save_note,whoami" {
		t.Errorf("tools %v, want countdown, save_note and whoami", names)
	}

	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "whoami"})
	if err != nil || res.IsError {
		t.Fatalf("whoami: %v %+v", err, res)
	}
	structured, ok := res.StructuredContent.(map[string]any)
	if !ok {
		t.Fatalf("structured content %T", res.StructuredContent)
	}
	text, ok := res.Content[0].(*mcp.TextContent)
	if !ok {
		t.Fatalf("content %T", res.Content[0])
	}
	var fromText map[string]any
	if err := json.Unmarshal([]byte(text.Text), &fromText); err != nil {
		t.Fatalf("text content is not JSON: %v", err)
	}
	for _, c := range []map[string]any{structured, fromText} {
		if c["sub"] != "agent" || c["iss"] != testIssuer || c["scope"] != "mcp:tools" || c["jti"] != "jti-1" {
			t.Errorf("claims %v", c)
		}
		if aud, _ := c["aud"].([]any); len(aud) != 1 || aud[0] != testResource {
			t.Errorf("aud %v", c["aud"])
		}
	}
}

// TestProtocolVersions: the go-sdk client's latest version, 2026-07-28,
// is served statelessly (no sessions in that version; discovery instead of
// initialize), older versions get a session; tools work in both.
func TestProtocolVersions(t *testing.T) {
	ki := newKeyIssuer(t)
	srv := startServer(t, ki)
	token := ki.sign(t, "k1", "at+jwt", claims())
	for _, tc := range []struct {
		version     string // asked for; "" is the SDK's latest
		want        string
		wantSession bool
	}{
		{"", "2026-07-28", false},
		{"2025-11-25", "2025-11-25", true},
		{"2025-06-18", "2025-06-18", true},
	} {
		cs := connectVersion(t, srv.URL+"/mcp", token, nil, tc.version)
		if got := cs.InitializeResult().ProtocolVersion; got != tc.want {
			t.Errorf("asked for %q: negotiated %q, want %q", tc.version, got, tc.want)
		}
		if got := cs.ID() != ""; got != tc.wantSession {
			t.Errorf("asked for %q: session id %q, want one: %v", tc.version, cs.ID(), tc.wantSession)
		}
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami"})
		if err != nil || res.IsError {
			t.Errorf("asked for %q: whoami: %v %+v", tc.version, err, res)
		}
	}
}

func TestTokenTypes(t *testing.T) {
	ki := newKeyIssuer(t)
	srv := startServer(t, ki)
	for _, typ := range []string{"", "at+jwt", "AT+JWT", "application/at+jwt", "Application/AT+JWT"} {
		if status, _ := initialize(t, srv.URL, "", ki.sign(t, "k1", typ, claims())); status != http.StatusOK {
			t.Errorf("typ %q: status %d, want 200", typ, status)
		}
	}
}

func TestRejectedTokens(t *testing.T) {
	ki := newKeyIssuer(t)
	srv := startServer(t, ki)

	with := func(k string, v any) map[string]any {
		c := claims()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	forged, _ := jwk.FromRaw(other)
	_ = forged.Set(jwk.KeyIDKey, "k1") // same kid, wrong key

	valid := ki.sign(t, "k1", "at+jwt", claims())
	parts := strings.Split(valid, ".")

	for name, token := range map[string]string{
		"bad signature":       signWith(t, jwa.ES256, forged, "at+jwt", claims()),
		"tampered payload":    parts[0] + "." + strings.Split(ki.sign(t, "k1", "at+jwt", with("sub", "admin")), ".")[1] + "." + parts[2],
		"wrong aud":           ki.sign(t, "k1", "at+jwt", with("aud", []string{"https://other.example.com/mcp"})),
		"no aud":              ki.sign(t, "k1", "at+jwt", with("aud", nil)),
		"wrong iss":           ki.sign(t, "k1", "at+jwt", with("iss", "https://evil.example.com")),
		"expired":             ki.sign(t, "k1", "at+jwt", with("exp", time.Now().Add(-2*time.Minute).Unix())),
		"no exp":              ki.sign(t, "k1", "at+jwt", with("exp", nil)),
		"not yet valid":       ki.sign(t, "k1", "at+jwt", with("nbf", time.Now().Add(time.Hour).Unix())),
		"typ JWT":             ki.sign(t, "k1", "JWT", claims()),
		"typ id token":        ki.sign(t, "k1", "application/jwt", claims()),
		"HS256":               signWith(t, jwa.HS256, []byte("a shared secret of thirty-two bytes!"), "at+jwt", claims()),
		"alg none":            unsignedToken(t),
		"opaque token":        "2YotnFZFEjr1zCsicMWpAA",
		"unknown kid":         signWith(t, jwa.ES256, withKID(t, forged, "k9"), "at+jwt", claims()),
		"JWS JSON serialized": `{"payload":"e30","signatures":[]}`,
	} {
		t.Run(name, func(t *testing.T) {
			status, h := initialize(t, srv.URL, "", token)
			if status != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", status)
			}
			if got := h.Get("WWW-Authenticate"); got != `Bearer realm="mcp", error="invalid_token"` {
				t.Fatalf("WWW-Authenticate %q", got)
			}
		})
	}

	t.Run("no token", func(t *testing.T) {
		status, h := initialize(t, srv.URL, "", "")
		if status != http.StatusUnauthorized || h.Get("WWW-Authenticate") != `Bearer realm="mcp"` {
			t.Fatalf("status %d, WWW-Authenticate %q", status, h.Get("WWW-Authenticate"))
		}
	})
	t.Run("two Authorization headers", func(t *testing.T) {
		req := initializeRequest(t, srv.URL, valid)
		req.Header.Add("Authorization", "Bearer "+valid)
		resp := do(t, req)
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d, want 400", resp.StatusCode)
		}
	})
}

func unsignedToken(t *testing.T) string {
	t.Helper()
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return strings.TrimRight(base64URL(b), "=")
	}
	return enc(map[string]string{"alg": "none", "typ": "at+jwt", "kid": "k1"}) + "." + enc(claims()) + "."
}

func withKID(t *testing.T, k jwk.Key, kid string) jwk.Key {
	t.Helper()
	c, err := k.Clone()
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Set(jwk.KeyIDKey, kid)
	return c
}

func TestKeyRotation(t *testing.T) {
	ki := newKeyIssuer(t)
	srv := startServer(t, ki)
	if status, _ := initialize(t, srv.URL, "", ki.sign(t, "k1", "at+jwt", claims())); status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	before := ki.fetches.Load()

	// The authorization server starts signing with a new key: its kid is not
	// in the cached set, so the set is fetched once more.
	ki.addKey(t, "k2")
	if status, _ := initialize(t, srv.URL, "", ki.sign(t, "k2", "at+jwt", claims())); status != http.StatusOK {
		t.Fatalf("rotated key: status %d", status)
	}
	if n := ki.fetches.Load() - before; n != 1 {
		t.Fatalf("%d JWKS fetches for the new kid, want 1", n)
	}
	// More unknown kids within the refresh interval do not fetch again.
	stranger := ki.addKey(t, "k3")
	for range 3 {
		tok := signWith(t, jwa.ES256, stranger, "at+jwt", claims())
		if status, _ := initialize(t, srv.URL, "", tok); status != http.StatusUnauthorized {
			t.Fatalf("unknown kid: status %d, want 401", status)
		}
	}
	if n := ki.fetches.Load() - before; n != 1 {
		t.Fatalf("%d JWKS fetches, want still 1", n)
	}
}

func TestJWKSUnavailable(t *testing.T) {
	defer mcpserver.SetJWKSRetry(0)()
	ki := newKeyIssuer(t)
	srv := startServer(t, ki)
	ki.down.Store(true)
	token := ki.sign(t, "k1", "at+jwt", claims())
	if status, h := initialize(t, srv.URL, "", token); status != http.StatusServiceUnavailable || h.Get("WWW-Authenticate") != "" {
		t.Fatalf("status %d, WWW-Authenticate %q; want 503 and no challenge", status, h.Get("WWW-Authenticate"))
	}
	// The JWKS is fetched again once it is back.
	ki.down.Store(false)
	if status, _ := initialize(t, srv.URL, "", token); status != http.StatusOK {
		t.Fatalf("after recovery: status %d", status)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	ctx := context.Background()
	for name, cfg := range map[string]mcpserver.Config{
		"no JWKS":       {Issuer: testIssuer, Resource: testResource},
		"relative JWKS": {JWKSURL: "/jwks", Issuer: testIssuer, Resource: testResource},
		"no issuer":     {JWKSURL: "https://as.example.com/jwks", Resource: testResource},
		"no resource":   {JWKSURL: "https://as.example.com/jwks", Issuer: testIssuer},
	} {
		if _, err := mcpserver.New(ctx, cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

// TestCountdownStreamsProgress checks that progress notifications arrive
// while the call is still running, not buffered until its result.
func TestCountdownStreamsProgress(t *testing.T) {
	ki := newKeyIssuer(t)
	srv := startServer(t, ki)

	var mu sync.Mutex
	var arrivals []time.Time
	var messages []string
	cs := connect(t, srv.URL+"/mcp", ki.sign(t, "k1", "at+jwt", claims()), &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			mu.Lock()
			defer mu.Unlock()
			arrivals = append(arrivals, time.Now())
			messages = append(messages, req.Params.Message)
			if req.Params.ProgressToken != "tok-1" || req.Params.Total != 3 {
				t.Errorf("progress %+v", req.Params)
			}
		},
	})
	params := &mcp.CallToolParams{Name: "countdown", Arguments: map[string]any{"n": 3}}
	params.SetProgressToken("tok-1")
	res, err := cs.CallTool(context.Background(), params)
	done := time.Now()
	if err != nil || res.IsError {
		t.Fatalf("countdown: %v %+v", err, res)
	}
	if text, _ := res.Content[0].(*mcp.TextContent); text == nil || text.Text != "done" {
		t.Fatalf("result %+v", res.Content)
	}

	mu.Lock()
	defer mu.Unlock()
	if strings.Join(messages, ",") != "3,2,1" {
		t.Fatalf("progress messages %v, want 3,2,1", messages)
	}
	// The first notification left the server three intervals before the
	// result; had the stream been buffered, both would arrive together.
	if gap := done.Sub(arrivals[0]); gap < 2*mcpserver.ProgressInterval {
		t.Fatalf("first progress notification arrived only %v before the result", gap)
	}

	// Arguments out of range are a tool error.
	res, err = cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "countdown", Arguments: map[string]any{"n": 99}})
	if err != nil || !res.IsError {
		t.Fatalf("n=99: %v %+v, want a tool error", err, res)
	}
}

// TestSessionBoundToSubject checks that a session created for one subject
// cannot be used with another subject's (valid) token.
func TestSessionBoundToSubject(t *testing.T) {
	ki := newKeyIssuer(t)
	srv := startServer(t, ki)
	status, h := initialize(t, srv.URL, "", ki.sign(t, "k1", "at+jwt", claims()))
	session := h.Get("Mcp-Session-Id")
	if status != http.StatusOK || session == "" {
		t.Fatalf("initialize: status %d, session %q", status, session)
	}
	c := claims()
	c["sub"] = "someone-else"
	req := initializeRequest(t, srv.URL, ki.sign(t, "k1", "at+jwt", c))
	req.Header.Set("Mcp-Session-Id", session)
	req.Body = io.NopCloser(strings.NewReader(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`))
	if resp := do(t, req); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want 403", resp.StatusCode)
	}
}

// TestHostHeader shows the SDK's DNS-rebinding protection, kept on: on a
// loopback listener a foreign Host is refused, and a reverse proxy that
// presents the upstream's own address as Host (Caddy: header_up Host
// {upstream_hostport}) is accepted.
func TestHostHeader(t *testing.T) {
	ki := newKeyIssuer(t)
	srv := startServer(t, ki)
	token := ki.sign(t, "k1", "at+jwt", claims())

	if status, _ := initialize(t, srv.URL, "mcp.example.com", token); status != http.StatusForbidden {
		t.Fatalf("foreign Host sent directly: status %d, want 403", status)
	}

	target, _ := url.Parse(srv.URL)
	proxy := func(keepHost bool) *httptest.Server {
		p := httptest.NewServer(&httputil.ReverseProxy{
			Rewrite: func(r *httputil.ProxyRequest) {
				r.SetURL(target) // Out.Host = "": the upstream's own host:port
				if keepHost {
					r.Out.Host = r.In.Host
				}
			},
			FlushInterval: -1,
		})
		t.Cleanup(p.Close)
		return p
	}
	if status, _ := initialize(t, proxy(false).URL, "mcp.example.com", token); status != http.StatusOK {
		t.Fatalf("via a proxy rewriting Host: status %d, want 200", status)
	}
	if status, _ := initialize(t, proxy(true).URL, "mcp.example.com", token); status != http.StatusForbidden {
		t.Fatalf("via a proxy keeping Host: status %d, want 403", status)
	}
}

// initializeRequest builds an MCP initialize POST to base/mcp.
func initializeRequest(t *testing.T, base, token string) *http.Request {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`
	req, err := http.NewRequest(http.MethodPost, base+"/mcp", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

// initialize sends an initialize request, with Host when set, and returns
// the status and headers.
func initialize(t *testing.T, base, host, token string) (int, http.Header) {
	t.Helper()
	req := initializeRequest(t, base, token)
	if host != "" {
		req.Host = host
	}
	resp := do(t, req)
	return resp.StatusCode, resp.Header
}

func do(t *testing.T, req *http.Request) *http.Response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// save_note checks its scope on the verified JWT itself, behind whatever
// the gateway checked.
func TestSaveNoteNeedsTheWriteScope(t *testing.T) {
	ki := newKeyIssuer(t)
	srv := startServer(t, ki)
	ctx := context.Background()
	args := map[string]any{"text": "hello"}

	reader := connect(t, srv.URL+"/mcp", ki.sign(t, "k1", "at+jwt", claims()), nil)
	res, err := reader.CallTool(ctx, &mcp.CallToolParams{Name: "save_note", Arguments: args})
	if err != nil || !res.IsError {
		t.Fatalf("save_note with scope mcp:tools: %v %+v, want a tool error", err, res)
	}

	// The write scope itself, and the admin scope that implies it.
	for _, scope := range []string{mcpserver.WriteScope, mcpserver.AdminScope} {
		c := claims()
		c["scope"] = "mcp:tools " + scope
		writer := connect(t, srv.URL+"/mcp", ki.sign(t, "k1", "at+jwt", c), nil)
		res, err = writer.CallTool(ctx, &mcp.CallToolParams{Name: "save_note", Arguments: args})
		if err != nil || res.IsError {
			t.Fatalf("save_note with %s: %v %+v", scope, err, res)
		}
		if text, ok := res.Content[0].(*mcp.TextContent); !ok || !strings.HasPrefix(text.Text, "saved (") {
			t.Fatalf("save_note with %s: result %+v", scope, res.Content)
		}
	}
}

// TestRequiredScopes: with RequiredScopes, a valid JWT without one of them
// is refused with 403 insufficient_scope naming them, before MCP sees it.
func TestRequiredScopes(t *testing.T) {
	ki := newKeyIssuer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h, err := mcpserver.New(ctx, mcpserver.Config{
		JWKSURL: ki.jwksURL(), Issuer: testIssuer, Resource: testResource, RequiredScopes: []string{"mcp:tools", "extra"},
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", h)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	c := claims() // scope "mcp:tools"
	status, hdr := initialize(t, srv.URL, "", ki.sign(t, "k1", "at+jwt", c))
	if status != http.StatusForbidden || !strings.Contains(hdr.Get("WWW-Authenticate"), `error="insufficient_scope", scope="mcp:tools extra"`) {
		t.Errorf("without extra: %d %q, want 403 insufficient_scope", status, hdr.Get("WWW-Authenticate"))
	}
	c["scope"] = "extra mcp:tools other"
	if status, _ := initialize(t, srv.URL, "", ki.sign(t, "k1", "at+jwt", c)); status != http.StatusOK {
		t.Errorf("with both: %d, want 200", status)
	}
}
