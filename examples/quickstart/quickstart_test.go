package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// isolate keeps a test's environment changes and Caddy's data files out of
// the process and the home directory.
func isolate(t *testing.T) {
	t.Helper()
	for _, k := range []string{
		"PHANTOM_LISTEN", "PHANTOM_INTROSPECTION_URL", "PHANTOM_JWKS_URI", "PHANTOM_ISSUER",
		"PHANTOM_CLIENT_ID", "PHANTOM_CLIENT_SECRET", "PHANTOM_RESOURCE", "PHANTOM_UPSTREAM",
	} {
		t.Setenv(k, "")
	}
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// observed is what a test saw of the stack from the ready hook.
type observed struct {
	introspections int64
	upstream       upstreamStats
	gatewaySecret  string
	agentSecret    string
	res            *demoResult
	stack          *stack // still running until run returns
}

func observe(o *observed) func(*stack, *demoResult) {
	return func(s *stack, res *demoResult) {
		o.introspections = s.as.IntrospectionCalls()
		o.upstream = s.upstream.stats()
		o.gatewaySecret = os.Getenv("PHANTOM_CLIENT_SECRET")
		o.agentSecret = s.agentSecret
		o.res = res
		o.stack = s
	}
}

func TestRunOnce(t *testing.T) {
	isolate(t)
	var out bytes.Buffer
	var o observed
	addr := freeAddr(t)
	gateway := "http://" + addr
	err := run(context.Background(), options{listen: addr, once: true, ready: observe(&o)}, &out)
	text := out.String()
	if err != nil {
		t.Fatalf("run: %v\n%s", err, text)
	}

	for _, want := range []string{
		"gateway               " + gateway,
		"MCP URL (resource)    " + gateway + "/mcp",
		`POST /mcp  no token  401  WWW-Authenticate: Bearer `,
		`resource_metadata="` + gateway + `/.well-known/oauth-protected-resource/mcp"`,
		`scope="mcp:tools"`,
		"GET  /.well-known/oauth-protected-resource/mcp  200  application/json",
		`"resource": "` + gateway + `/mcp"`,
		"/.well-known/oauth-authorization-server  token_endpoint http://127.0.0.1:",
		"resource " + gateway + "/mcp\n",
		"initialize           phantom-token-example 1.0.0, protocol 2026-07-28",
		"tools/list           countdown, save_note, whoami",
		"tools/call countdown progress 3, 2, 1, the first ",
		` before the result "done" (SSE, streamed)`,
		"tools/call whoami    the MCP server verified the JWT it received",
		`"client_id": "agent"`,
		`"scope": "mcp:tools"`,
		"close                nothing to end: protocol 2026-07-28 has no sessions",
		"    POST server/discover 200\n",
		"    POST tools/list 200\n",
		"    POST tools/call 200\n",
		`POST tools/call save_note, scope mcp:tools  403  WWW-Authenticate: Bearer error="insufficient_scope", scope="mcp:tools mcp:write"`,
		"client credentials, scope mcp:tools mcp:write: a second opaque token",
		`tools/call save_note "saved (`,
		"6 requests, 6 with Authorization: Bearer <JWT>",
		"the MCP server never saw it",
		"introspection calls served by the AS: 2\n",
		"all checks passed",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(text, "curl") {
		t.Error("-once printed the curl lines")
	}

	// The facts behind the output.
	if o.introspections != 2 {
		t.Errorf("AS served %d introspections, want 2 (one per token)", o.introspections)
	}
	// go-sdk v1.8 speaks 2026-07-28, which has no sessions: server/discover,
	// tools/list and two tools/call: 4 requests; the step-up connection
	// server/discover and tools/call save_note: 2 more. The refused
	// save_note reaches nobody.
	if o.upstream.requests != 6 || o.upstream.jwts != 6 || o.upstream.leaked || len(o.res.mcpRequests) != 6 {
		t.Errorf("MCP server: %+v, client: %v; want 6 requests, all with a JWT, no opaque token", o.upstream, o.res.mcpRequests)
	}
	if o.res == nil || o.res.token == "" || strings.Contains(o.upstream.lastAuth, o.res.token) {
		t.Fatal("no token, or the MCP server saw it")
	}
	if aud, _ := o.res.claims["aud"].([]any); len(aud) != 1 || aud[0] != gateway+"/mcp" {
		t.Errorf("the MCP server verified aud %v, want [%s/mcp]", o.res.claims["aud"], gateway)
	}
	// Secrets and tokens stay out of the output in -once mode.
	for name, secret := range map[string]string{
		"the token": o.res.token, "the gateway secret": o.gatewaySecret, "the agent secret": o.agentSecret,
	} {
		if secret == "" || strings.Contains(text, secret) {
			t.Errorf("output contains %s (or it is empty)", name)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", text)
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestRunServesUntilCancelled(t *testing.T) {
	isolate(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	var o observed
	addr := freeAddr(t)
	gateway := "http://" + addr
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, options{listen: addr, ready: observe(&o)}, &out)
	}()

	withToken := regexp.MustCompile(`curl -si -X POST -H "Authorization: Bearer ([^"]+)" -H "Content-Type: application/json" -H "Accept: ([^"]+)" -d '([^']+)' (http://\S+)`)
	var m []string
	for deadline := time.Now().Add(30 * time.Second); m == nil; {
		select {
		case err := <-done:
			t.Fatalf("run returned before it was cancelled: %v\n%s", err, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		m = withToken.FindStringSubmatch(out.String())
		if m == nil && time.Now().After(deadline) {
			t.Fatalf("no curl line with the token:\n%s", out.String())
		}
	}
	text := out.String()
	for _, want := range []string{
		"curl -si " + gateway + "/.well-known/oauth-protected-resource/mcp\n",
		"curl -si -X POST " + gateway + "/mcp\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}

	// The printed lines work.
	resp := curl(t, http.MethodGet, gateway+"/.well-known/oauth-protected-resource/mcp", nil, "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.body, `"resource":"`+gateway+`/mcp"`) {
		t.Errorf("metadata: status %d, %s", resp.StatusCode, resp.body)
	}
	resp = curl(t, http.MethodPost, gateway+"/mcp", nil, "")
	if ch := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != http.StatusUnauthorized ||
		!strings.Contains(ch, `resource_metadata="`) || !strings.Contains(ch, `scope="mcp:tools"`) {
		t.Errorf("POST without a token: status %d, WWW-Authenticate %q", resp.StatusCode, ch)
	}
	hdr := http.Header{"Authorization": {"Bearer " + m[1]}, "Content-Type": {"application/json"}, "Accept": {m[2]}}
	resp = curl(t, http.MethodPost, m[4], hdr, m[3])
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.body, "phantom-token-example") {
		t.Errorf("initialize with the token: status %d, %s", resp.StatusCode, resp.body)
	}
	if n := o.stack.as.IntrospectionCalls(); n != 2 {
		t.Errorf("AS served %d introspections after the curl lines, want 2 (the demo's two tokens; the curl lines served from the gateway cache)", n)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop after cancel")
	}
	if o.introspections != 2 {
		t.Errorf("AS served %d introspections during the demo, want 2", o.introspections)
	}
	// After run returns, the gateway is gone.
	if resp, err := http.Get(gateway + "/.well-known/oauth-protected-resource/mcp"); err == nil {
		resp.Body.Close()
		t.Error("the gateway still answers after run returned")
	}
}

// curlResponse is a response with its body read.
type curlResponse struct {
	*http.Response
	body string
}

// curl sends one request, as the printed curl line would.
func curl(t *testing.T, method, u string, h http.Header, body string) curlResponse {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return curlResponse{Response: resp, body: string(b)}
}

// TestRunReportsFailures runs the demo with caching disabled: every call is
// introspected, and -once must say so and fail.
func TestRunReportsFailures(t *testing.T) {
	isolate(t)
	orig, err := locateCaddyfile("")
	if err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(orig)
	if err != nil {
		t.Fatal(err)
	}
	noCache := strings.Replace(string(body), "max_ttl 5m", "max_ttl 0", 1)
	if noCache == string(body) {
		t.Fatal("Caddyfile.example has no 'max_ttl 5m' line to change; update this test with the example")
	}
	path := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(path, []byte(noCache), 0o600); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	err = run(context.Background(), options{listen: freeAddr(t), config: path, once: true}, &out)
	if !errors.Is(err, errChecksFailed) {
		t.Fatalf("run = %v, want errChecksFailed\n%s", err, out.String())
	}
	for _, want := range []string{
		"introspection calls served by the AS: 7\n", // 6 forwarded requests and the refused save_note
		"FAILED",
		"the AS served 7 introspection calls, want exactly 2 (one per token)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestRunBadOptions(t *testing.T) {
	isolate(t)
	for name, opts := range map[string]options{
		"port 0":         {listen: "127.0.0.1:0", once: true},
		"no port":        {listen: "127.0.0.1", once: true},
		"missing config": {listen: freeAddr(t), config: filepath.Join(t.TempDir(), "nope"), once: true},
	} {
		if err := run(context.Background(), opts, &bytes.Buffer{}); err == nil {
			t.Errorf("%s: run succeeded", name)
		}
	}

	// A busy port is reported as such.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = run(context.Background(), options{listen: ln.Addr().String(), once: true}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "is in use") {
		t.Errorf("busy port: run = %v, want an 'is in use' error", err)
	}
}

func TestLocateCaddyfile(t *testing.T) {
	t.Chdir(t.TempDir()) // neither ../ nor ./ has one: the source-relative fallback finds it
	path, err := locateCaddyfile("")
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != caddyfileName || !filepath.IsAbs(path) {
		t.Fatalf("located %q", path)
	}

	dir := t.TempDir()
	local := filepath.Join(dir, caddyfileName)
	if err := os.WriteFile(local, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	if got, err := locateCaddyfile(""); err != nil || got != local {
		t.Fatalf("in a directory with one: %q, %v; want %q", got, err, local)
	}
}
