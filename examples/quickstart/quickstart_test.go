package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phantomgate/caddy-phantom-token/examples/echo"
)

// isolate keeps a test's environment changes and Caddy's data files out of
// the process and the home directory.
func isolate(t *testing.T) {
	t.Helper()
	for _, k := range []string{
		"PHANTOM_LISTEN", "PHANTOM_INTROSPECTION_URL", "PHANTOM_JWKS_URI", "PHANTOM_ISSUER",
		"PHANTOM_CLIENT_ID", "PHANTOM_CLIENT_SECRET", "PHANTOM_UPSTREAM",
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
	upstreamCalls  int
	lastAuth       string
	gatewaySecret  string
	res            *demoResult
}

func observe(o *observed) func(*stack, *demoResult) {
	return func(s *stack, res *demoResult) {
		o.introspections = s.as.IntrospectionCalls()
		o.upstreamCalls = s.upstream.Count()
		o.lastAuth = s.upstream.LastAuthorization()
		o.gatewaySecret = os.Getenv("PHANTOM_CLIENT_SECRET")
		o.res = res
	}
}

func TestRunOnce(t *testing.T) {
	isolate(t)
	var out bytes.Buffer
	var o observed
	addr := freeAddr(t)
	err := run(context.Background(), options{listen: addr, once: true, calls: minCalls, ready: observe(&o)}, &out)
	text := out.String()
	if err != nil {
		t.Fatalf("run: %v\n%s", err, text)
	}

	for _, want := range []string{
		"gateway               http://" + addr,
		`GET  /     no token          401  WWW-Authenticate: Bearer`,
		"not in any header or the URL: the upstream never saw it",
		"typ at+jwt",
		"signature     verified with the AS JWKS",
		`"client_id": "agent"`,
		`"scope": "mcp:tools"`,
		"introspection calls served by the AS: 1\n",
		"all checks passed",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if n := strings.Count(text, "Bearer <opaque>   200  upstream saw Bearer <JWT>"); n != minCalls {
		t.Errorf("%d successful calls in the output, want %d", n, minCalls)
	}
	if strings.Contains(text, "curl") {
		t.Error("-once printed the curl line")
	}

	// The facts behind the output.
	if o.introspections != 1 {
		t.Errorf("AS served %d introspections, want 1", o.introspections)
	}
	if o.upstreamCalls != minCalls {
		t.Errorf("upstream received %d requests, want %d (the unauthenticated one must not reach it)", o.upstreamCalls, minCalls)
	}
	scheme, cred, _ := strings.Cut(o.lastAuth, " ")
	if _, ok := echo.DecodeClaims(cred); scheme != "Bearer" || !ok {
		t.Errorf("upstream's Authorization is not a Bearer JWT")
	}
	if o.res == nil || o.res.token == "" || strings.Contains(o.lastAuth, o.res.token) {
		t.Fatal("no token, or the upstream saw it")
	}
	// Secrets and tokens stay out of the output in -once mode.
	for name, secret := range map[string]string{"the token": o.res.token, "the gateway secret": o.gatewaySecret} {
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
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, options{listen: freeAddr(t), calls: minCalls, ready: observe(&o)}, &out)
	}()

	curl := regexp.MustCompile(`curl -si -H "Authorization: Bearer ([^"]+)" (http://\S+)`)
	var m []string
	for deadline := time.Now().Add(30 * time.Second); m == nil; {
		select {
		case err := <-done:
			t.Fatalf("run returned before it was cancelled: %v\n%s", err, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		m = curl.FindStringSubmatch(out.String())
		if m == nil && time.Now().After(deadline) {
			t.Fatalf("no curl line:\n%s", out.String())
		}
	}

	// The printed line works, and is served from the gateway cache.
	req, _ := http.NewRequest(http.MethodGet, m[2], nil)
	req.Header.Set("Authorization", "Bearer "+m[1])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("the curl line's request: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the curl line's request: status %d", resp.StatusCode)
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
	if o.introspections != 1 {
		t.Errorf("AS served %d introspections during the demo, want 1", o.introspections)
	}
	// After run returns, the gateway is gone.
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Error("the gateway still answers after run returned")
	}
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
		t.Skip("Caddyfile.example has no 'max_ttl 5m' line to change")
	}
	path := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(path, []byte(noCache), 0o600); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	err = run(context.Background(), options{listen: freeAddr(t), config: path, once: true, calls: minCalls}, &out)
	if !errors.Is(err, errChecksFailed) {
		t.Fatalf("run = %v, want errChecksFailed\n%s", err, out.String())
	}
	for _, want := range []string{
		"introspection calls served by the AS: 5\n",
		"FAILED",
		"the AS served 5 introspection calls, want exactly 1",
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

func TestBindListeners(t *testing.T) {
	cfg := map[string]any{"apps": map[string]any{"http": map[string]any{"servers": map[string]any{
		"srv0": map[string]any{"listen": []any{":8080", "10.0.0.1:9090"}},
	}}}}
	if err := bindListeners(cfg, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	got := cfg["apps"].(map[string]any)["http"].(map[string]any)["servers"].(map[string]any)["srv0"].(map[string]any)["listen"].([]any)
	if got[0] != "127.0.0.1:8080" || got[1] != "10.0.0.1:9090" {
		t.Fatalf("listen = %v", got)
	}
	if err := bindListeners(map[string]any{}, "127.0.0.1"); err == nil {
		t.Fatal("a config without servers was accepted")
	}
}
