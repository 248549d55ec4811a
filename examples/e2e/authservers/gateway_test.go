package authservers

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	_ "github.com/phantomgate/caddy-phantom-token/caddymodule"
	"github.com/phantomgate/caddy-phantom-token/examples/mcpserver"
)

// gateway is Caddy running one README block in front of the example MCP
// server, plus a metrics site. Caddy is process-global: tests here never
// run in parallel.
type gateway struct {
	addr        string // 127.0.0.1:PORT
	url         string // http://127.0.0.1:PORT
	resource    string // the MCP endpoint through the gateway: url + "/mcp"
	metricsAddr string // Caddy's metrics site, another loopback port
	upstream    *recorder
	upstreamURL string
	client      *http.Client // for raw requests
	loaded      bool
}

// newGateway picks the gateway's loopback addresses. Nothing listens until
// load.
func newGateway(t *testing.T) *gateway {
	t.Helper()
	addr := freeLoopbackAddr(t)
	tr := &http.Transport{Proxy: nil}
	t.Cleanup(tr.CloseIdleConnections)
	return &gateway{
		addr:        addr,
		url:         "http://" + addr,
		resource:    "http://" + addr + "/mcp",
		metricsAddr: freeLoopbackAddr(t),
		client:      &http.Client{Transport: tr, Timeout: 15 * time.Second},
	}
}

// gatewayJWKSURL is where the sign block publishes the gateway's keys (the
// default sign.jwks_path).
func (g *gateway) gatewayJWKSURL() string { return g.url + "/.well-known/jwks.json" }

// startMCPServer starts the example MCP server, trusting JWTs from issuer
// signed by a key of jwksURL, behind a recorder.
func (g *gateway) startMCPServer(t *testing.T, jwksURL, issuer string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h, err := mcpserver.New(ctx, mcpserver.Config{JWKSURL: jwksURL, Issuer: issuer, Resource: g.resource})
	if err != nil {
		t.Fatalf("creating the MCP server: %v", err)
	}
	g.upstream = &recorder{}
	mux := http.NewServeMux()
	mux.Handle("/mcp", g.upstream.wrap(h))
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	g.upstreamURL = srv.URL
}

// siteTemplate wraps a README block: the gateway site, proxying to the MCP
// server with the upstream's own Host (the go-sdk's DNS-rebinding
// protection) and unbuffered SSE, and a separate loopback site serving
// Caddy's metrics. Nothing here is part of the block under test.
const siteTemplate = `{
	admin off
	auto_https off
	persist_config off
	log default {
		level ERROR
	}
}

http://{GATEWAY_ADDR} {
	bind 127.0.0.1

{BLOCK}

	reverse_proxy {UPSTREAM} {
		header_up Host {upstream_hostport}
		flush_interval -1
	}
}

http://{METRICS_ADDR} {
	bind 127.0.0.1
	metrics
}
`

// load adapts the site around block with the environment the test has set
// and (re)loads Caddy with it. A reload keeps the listeners; the module's
// metrics carry on.
func (g *gateway) load(t *testing.T, block string) {
	t.Helper()
	if g.upstream == nil {
		t.Fatal("startMCPServer must run before load")
	}
	// The block is indented one level, as inside a site; its text is
	// otherwise the README's.
	indented := "\t" + strings.ReplaceAll(block, "\n", "\n\t")
	cfg := strings.NewReplacer(
		"{GATEWAY_ADDR}", g.addr,
		"{METRICS_ADDR}", g.metricsAddr,
		"{UPSTREAM}", strings.TrimPrefix(g.upstreamURL, "http://"),
		"{BLOCK}", indented,
	).Replace(siteTemplate)
	cfgJSON, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cfg), nil)
	if err != nil {
		t.Fatalf("adapting the Caddyfile: %v\n%s", err, cfg)
	}
	for _, w := range warnings {
		// The README aligns the values of its blocks for reading, which
		// `caddy fmt` would collapse; that warning is expected.
		if !strings.Contains(w.Message, "input is not formatted") {
			t.Logf("Caddyfile warning: %s", w.String())
		}
	}
	if err := caddy.Load(cfgJSON, true); err != nil {
		t.Fatalf("loading the Caddy config: %v\n%s", err, cfg)
	}
	if !g.loaded {
		g.loaded = true
		// Registered after the AS and MCP server cleanups, so it runs
		// before them.
		t.Cleanup(func() { _ = caddy.Stop() })
	}
}

// ---------------------------------------------------------------------------
// Raw requests

const initializeMessage = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"authservers-raw","version":"1.0.0"}}}`

// postInitialize sends an MCP initialize with a bearer token through the
// gateway, as a raw HTTP POST.
func (g *gateway) postInitialize(t *testing.T, token string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, g.resource, strings.NewReader(initializeMessage))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", g.resource, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s: reading the body: %v", g.resource, err)
	}
	return resp, body
}

// ---------------------------------------------------------------------------
// Metrics

// metricsSnapshot holds the module's counters at one moment.
type metricsSnapshot struct {
	requests       map[string]float64 // caddy_phantom_token_requests_total by result
	introspections map[string]float64 // introspection_duration_seconds_count by outcome
}

// introspectionTotal is the number of introspection calls, all outcomes.
func (m metricsSnapshot) introspectionTotal() float64 {
	var n float64
	for _, v := range m.introspections {
		n += v
	}
	return n
}

// metrics scrapes the module's collectors from the metrics site. They are
// process-wide and survive reloads: compare two snapshots.
func (g *gateway) metrics(t *testing.T) metricsSnapshot {
	t.Helper()
	u := "http://" + g.metricsAddr + "/metrics"
	resp, err := g.client.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
	snap := metricsSnapshot{requests: map[string]float64{}, introspections: map[string]float64{}}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, labels, value, ok := parseSample(line)
		if !ok {
			continue
		}
		switch name {
		case "caddy_phantom_token_requests_total":
			snap.requests[labels["result"]] = value
		case "caddy_phantom_token_introspection_duration_seconds_count":
			snap.introspections[labels["outcome"]] = value
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading %s: %v", u, err)
	}
	return snap
}

// parseSample parses one line of the Prometheus text format:
// name{label="value",...} number. The label values read here never hold
// quotes or commas.
func parseSample(line string) (name string, labels map[string]string, value float64, ok bool) {
	sp := strings.LastIndexByte(line, ' ')
	if sp < 0 {
		return "", nil, 0, false
	}
	v, err := strconv.ParseFloat(line[sp+1:], 64)
	if err != nil {
		return "", nil, 0, false
	}
	series := line[:sp]
	labels = map[string]string{}
	name = series
	if i := strings.IndexByte(series, '{'); i >= 0 {
		name = series[:i]
		for _, kv := range strings.Split(strings.TrimSuffix(series[i+1:], "}"), ",") {
			if k, val, found := strings.Cut(kv, "="); found {
				labels[k] = strings.Trim(val, `"`)
			}
		}
	}
	return name, labels, v, true
}

// ---------------------------------------------------------------------------
// The go-sdk MCP client

// bearerTransport adds "Authorization: Bearer <token>" to every request, as
// an MCP client holding an opaque token does.
type bearerTransport struct {
	base  http.RoundTripper
	token string
}

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

// connect opens an MCP session through the gateway with the go-sdk client.
func (g *gateway) connect(ctx context.Context, t *testing.T, token string) (*mcp.ClientSession, error) {
	t.Helper()
	base := &http.Transport{Proxy: nil}
	t.Cleanup(base.CloseIdleConnections)
	transport := &mcp.StreamableClientTransport{
		Endpoint:   g.resource,
		HTTPClient: &http.Client{Transport: bearerTransport{base: base, token: token}, Timeout: 15 * time.Second},
		MaxRetries: -1, // a failure is a finding, not something to retry
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "authservers-e2e", Version: "1.0.0"}, nil)
	return client.Connect(ctx, transport, nil)
}

// whoami calls the whoami tool and returns the claims the MCP server
// verified.
func whoami(ctx context.Context, cs *mcp.ClientSession) (map[string]any, error) {
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
	var claims map[string]any
	if err := json.Unmarshal([]byte(text.Text), &claims); err != nil {
		return nil, fmt.Errorf("whoami text is not a JSON object: %v", err)
	}
	return claims, nil
}

// ---------------------------------------------------------------------------
// The upstream recorder

// upstreamRequest is what the MCP server received, and its answer.
type upstreamRequest struct {
	Method        string
	Authorization []string
	SessionID     string
	Status        int
}

// recorder wraps the MCP handler and records every request reaching it.
type recorder struct {
	mu   sync.Mutex
	reqs []*upstreamRequest
}

func (rec *recorder) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ur := &upstreamRequest{
			Method:        r.Method,
			Authorization: r.Header.Values("Authorization"),
			SessionID:     r.Header.Get("Mcp-Session-Id"),
		}
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, ur)
		rec.mu.Unlock()
		sw := &statusWriter{ResponseWriter: w, rec: rec, ur: ur}
		next.ServeHTTP(sw, r)
		sw.setStatus(http.StatusOK)
	})
}

// since returns a copy of the requests from index i on.
func (rec *recorder) since(i int) []upstreamRequest {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var out []upstreamRequest
	for _, r := range rec.reqs[min(i, len(rec.reqs)):] {
		out = append(out, *r)
	}
	return out
}

func (rec *recorder) count() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.reqs)
}

// statusWriter records the status and keeps streaming working.
type statusWriter struct {
	http.ResponseWriter
	rec *recorder
	ur  *upstreamRequest
}

func (w *statusWriter) setStatus(code int) {
	w.rec.mu.Lock()
	defer w.rec.mu.Unlock()
	if w.ur.Status == 0 {
		w.ur.Status = code
	}
}

func (w *statusWriter) WriteHeader(code int) {
	if code >= 200 {
		w.setStatus(code)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.setStatus(http.StatusOK)
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	w.setStatus(http.StatusOK)
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ---------------------------------------------------------------------------
// JWTs as the MCP server received them

// forwardedJWT is the decoded (not verified: the MCP server did that) header
// and payload of a JWT.
type forwardedJWT struct {
	raw    string
	header map[string]any
	claims map[string]any
}

// decodeJWT decodes a compact JWS; ok is false when it is not one.
func decodeJWT(compact string) (forwardedJWT, bool) {
	parts := strings.Split(compact, ".")
	if len(parts) != 3 {
		return forwardedJWT{}, false
	}
	j := forwardedJWT{raw: compact}
	for i, dst := range []*map[string]any{&j.header, &j.claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil || json.Unmarshal(b, dst) != nil {
			return forwardedJWT{}, false
		}
	}
	return j, true
}

// audience normalizes an "aud" claim to a list.
func audience(v any) []string {
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

// ---------------------------------------------------------------------------
// Keys and addresses

// writeECKey writes a new P-256 private key as PKCS#8 PEM into dir.
func writeECKey(t *testing.T, dir, name string) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return writePKCS8(t, dir, name, k)
}

// writeRSAKey writes a new RSA 2048 private key as PKCS#8 PEM into dir and
// returns the path and the key.
func writeRSAKey(t *testing.T, dir, name string) (string, *rsa.PrivateKey) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return writePKCS8(t, dir, name, k), k
}

func writePKCS8(t *testing.T, dir, name string, key any) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
