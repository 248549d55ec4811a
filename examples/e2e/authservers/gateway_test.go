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
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/phantomgate/caddy-phantom-token/examples/internal/gatewaytest"
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
	upstream    *gatewaytest.Recorder
	upstreamURL string
	client      *http.Client // for raw requests
	caddy       gatewaytest.Caddy
}

// newGateway picks the gateway's loopback addresses. Nothing listens until
// load.
func newGateway(t *testing.T) *gateway {
	t.Helper()
	addr := gatewaytest.FreeLoopbackAddr(t)
	tr := &http.Transport{Proxy: nil}
	t.Cleanup(tr.CloseIdleConnections)
	return &gateway{
		addr:        addr,
		url:         "http://" + addr,
		resource:    "http://" + addr + "/mcp",
		metricsAddr: gatewaytest.FreeLoopbackAddr(t),
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
	g.upstream, g.upstreamURL = gatewaytest.StartMCPServer(t, mcpserver.Config{JWKSURL: jwksURL, Issuer: issuer, Resource: g.resource})
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
	// The first load registers Caddy's stop after the AS and MCP server
	// cleanups, so it runs before them. The README aligns the values of its
	// blocks for reading, which `caddy fmt` would collapse; that warning is
	// expected.
	g.caddy.Load(t, cfg, func(w caddyconfig.Warning) bool {
		return strings.Contains(w.Message, "input is not formatted")
	})
}

// ---------------------------------------------------------------------------
// Raw requests

const initializeMessage = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"authservers-raw","version":"1.0.0"}}}`

// postInitialize sends an MCP initialize with a bearer token through the
// gateway, as a raw HTTP POST.
func (g *gateway) postInitialize(t *testing.T, token string) (*http.Response, []byte) {
	t.Helper()
	return gatewaytest.Do(t, g.client, http.MethodPost, g.resource, initializeMessage,
		"Content-Type", "application/json",
		"Accept", "application/json, text/event-stream",
		"Authorization", "Bearer "+token)
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

// connect opens an MCP session through the gateway with the go-sdk client,
// at the newest protocol version that has sessions (2026-07-28 has none):
// these tests follow one token through a whole session, DELETE included.
func (g *gateway) connect(ctx context.Context, t *testing.T, token string) (*mcp.ClientSession, error) {
	t.Helper()
	return gatewaytest.Connect(ctx, t, gatewaytest.ClientConfig{
		Endpoint:        g.resource,
		Token:           token,
		Name:            "authservers-e2e",
		Timeout:         15 * time.Second,
		ProtocolVersion: "2025-11-25",
	})
}

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
