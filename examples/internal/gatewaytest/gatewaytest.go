// Package gatewaytest is the harness the end-to-end tests (examples/e2e and
// examples/e2e/authservers) share to run the phantom token gateway for real:
//
//   - Caddy in-process, loaded from a Caddyfile (with the phantom_token
//     module and Caddy's standard modules registered), on a free loopback
//     port: [FreeLoopbackAddr], [Caddy];
//   - the example MCP server (examples/mcpserver) behind a [Recorder] that
//     notes every request reaching it and the status it got:
//     [StartMCPServer];
//   - the go-sdk MCP client holding a bearer token: [Connect], [Whoami];
//   - raw HTTP requests and the claims helpers both packages check with:
//     [Do], [Audience].
//
// Caddy is process-global: tests using this package must not run in
// parallel.
package gatewaytest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile" // the Caddyfile adapter
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	_ "github.com/phantomgate/caddy-phantom-token/caddymodule" // phantom_token
	"github.com/phantomgate/caddy-phantom-token/examples/internal/procutil"
	"github.com/phantomgate/caddy-phantom-token/examples/mcpserver"
)

// FreeLoopbackAddr returns "127.0.0.1:PORT" with a port that was free a
// moment ago.
func FreeLoopbackAddr(t testing.TB) string {
	t.Helper()
	ports, err := procutil.FreeLoopbackPorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
}

// ---------------------------------------------------------------------------
// Caddy

// Caddy loads Caddyfiles into the process-global Caddy. The zero value is
// ready to use; use one per gateway.
type Caddy struct {
	loaded bool
}

// Load adapts the Caddyfile cfg and (re)loads Caddy with it; a reload keeps
// the listeners. Adapter warnings go to the test log unless skipWarning
// (which may be nil) returns true for them. A failure fails the test with
// the Caddyfile.
//
// The first Load registers caddy.Stop as a cleanup of t: register what Caddy
// proxies to (the upstream, the AS) and files it writes to before it, so
// Caddy stops first.
func (c *Caddy) Load(t testing.TB, cfg string, skipWarning func(caddyconfig.Warning) bool) {
	t.Helper()
	cfgJSON, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cfg), nil)
	if err != nil {
		t.Fatalf("adapting the Caddyfile: %v\n%s", err, cfg)
	}
	for _, w := range warnings {
		if skipWarning == nil || !skipWarning(w) {
			t.Logf("Caddyfile warning: %s", w.String())
		}
	}
	if err := caddy.Load(cfgJSON, true); err != nil {
		t.Fatalf("loading the Caddy config: %v\n%s", err, cfg)
	}
	if !c.loaded {
		c.loaded = true
		t.Cleanup(func() { _ = caddy.Stop() })
	}
}

// ---------------------------------------------------------------------------
// The MCP server upstream

// StartMCPServer starts the example MCP server with cfg, serving /mcp behind
// a new Recorder on a loopback httptest server, and returns the recorder and
// the server's URL (http://127.0.0.1:PORT). Both stop when the test ends.
func StartMCPServer(t testing.TB, cfg mcpserver.Config) (*Recorder, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h, err := mcpserver.New(ctx, cfg)
	if err != nil {
		t.Fatalf("creating the MCP server: %v", err)
	}
	rec := &Recorder{}
	mux := http.NewServeMux()
	mux.Handle("/mcp", rec.Wrap(h))
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return rec, srv.URL
}

// ---------------------------------------------------------------------------
// Raw requests

// Do sends a request with client and returns the response with its whole
// body (already closed). headers are name, value pairs; a "Host" pair sets
// the request's Host. A transport error fails the test.
func Do(t testing.TB, client *http.Client, method, target, body string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, target, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if http.CanonicalHeaderKey(headers[i]) == "Host" {
			req.Host = headers[i+1]
			continue
		}
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, target, err)
	}
	return resp, b
}

// ---------------------------------------------------------------------------
// The go-sdk MCP client

// BearerTransport adds "Authorization: Bearer <Token>" to every request, as
// an MCP client holding an opaque token does.
type BearerTransport struct {
	Base  http.RoundTripper
	Token string
}

// RoundTrip sends a clone of r with the bearer token through Base.
func (b BearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.Token)
	return b.Base.RoundTrip(r)
}

// ClientConfig says how Connect sets up the go-sdk client.
type ClientConfig struct {
	// Endpoint is the MCP endpoint through the gateway.
	Endpoint string
	// Token is the bearer token sent on every request.
	Token string
	// Name is the client's name in initialize.
	Name string
	// Base carries the requests; its idle connections are closed when the
	// test ends. Nil means a transport that never uses a proxy.
	Base *http.Transport
	// Timeout is the http.Client's timeout; zero means none.
	Timeout time.Duration
	// Options are the go-sdk client's options; may be nil.
	Options *mcp.ClientOptions
	// Wrap, if set, wraps the round tripper that adds the token, so a test
	// can see each request as sent and each response as received.
	Wrap func(http.RoundTripper) http.RoundTripper
	// ProtocolVersion is the MCP protocol version the client asks for;
	// "" is the SDK's latest (2026-07-28: no sessions).
	ProtocolVersion string
}

// Connect opens an MCP session (initialize) with the go-sdk client and the
// streamable HTTP transport. The transport never retries: a failure is a
// finding, not something to retry.
func Connect(ctx context.Context, t testing.TB, cfg ClientConfig) (*mcp.ClientSession, error) {
	t.Helper()
	base := cfg.Base
	if base == nil {
		base = &http.Transport{Proxy: nil}
	}
	t.Cleanup(base.CloseIdleConnections)
	var rt http.RoundTripper = BearerTransport{Base: base, Token: cfg.Token}
	if cfg.Wrap != nil {
		rt = cfg.Wrap(rt)
	}
	transport := &mcp.StreamableClientTransport{
		Endpoint:   cfg.Endpoint,
		HTTPClient: &http.Client{Transport: rt, Timeout: cfg.Timeout},
		MaxRetries: -1,
	}
	client := mcp.NewClient(&mcp.Implementation{Name: cfg.Name, Version: "1.0.0"}, cfg.Options)
	return client.Connect(ctx, transport, &mcp.ClientSessionOptions{ProtocolVersion: cfg.ProtocolVersion})
}

// Whoami calls the example MCP server's whoami tool and returns the claims
// the server verified.
func Whoami(ctx context.Context, cs *mcp.ClientSession) (map[string]any, error) {
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}})
	if err != nil {
		return nil, err
	}
	if res.IsError || len(res.Content) == 0 {
		return nil, fmt.Errorf("whoami: isError=%v content=%v", res.IsError, res.Content)
	}
	text, ok := res.Content[0].(*mcp.TextContent)
	if !ok {
		return nil, fmt.Errorf("whoami content is %T, want text", res.Content[0])
	}
	return WhoamiClaims(text.Text)
}

// WhoamiClaims parses the whoami tool's text: the claims the MCP server
// verified, as a JSON object.
func WhoamiClaims(text string) (map[string]any, error) {
	var claims map[string]any
	if err := json.Unmarshal([]byte(text), &claims); err != nil {
		return nil, fmt.Errorf("whoami text is not a JSON object: %v", err)
	}
	return claims, nil
}

// Audience normalizes an "aud" claim (a string or an array) to a list.
func Audience(v any) []string {
	switch a := v.(type) {
	case string:
		return []string{a}
	case []any:
		out := make([]string, 0, len(a))
		for _, e := range a {
			s, _ := e.(string)
			out = append(out, s)
		}
		return out
	}
	return nil
}
