package dpop

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
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

	"github.com/caddyserver/caddy/v2"

	"github.com/phantomgate/caddy-phantom-token/examples/internal/dpopclient"
	"github.com/phantomgate/caddy-phantom-token/examples/internal/gatewaytest"
	"github.com/phantomgate/caddy-phantom-token/examples/internal/oidcprovider"
	"github.com/phantomgate/caddy-phantom-token/examples/mcpserver"
)

// The clients registered at oidc-provider.
const (
	scopeTools = "mcp:tools"

	gatewayID     = "gateway" // the gateway's own client, for introspection
	gatewaySecret = "gateway-secret"
	agentID       = "agent" // registered with dpop_bound_access_tokens: never gets a Bearer token
	agentSecret   = "agent-secret"
	plainID       = "plain-agent" // gets Bearer tokens
	plainSecret   = "plain-agent-secret"
)

// stack is oidc-provider, the example MCP server behind a recorder, and
// Caddy running the gateway in front of it. Caddy is process-global: tests
// here never run in parallel.
type stack struct {
	as *oidcprovider.Provider

	addr        string // the gateway, 127.0.0.1:PORT
	url         string // http://127.0.0.1:PORT: the gateway's JWT issuer
	resource    string // url + "/mcp": the resource, and the proofs' htu
	metricsAddr string
	signingKey  string // the sign block's key file

	upstream    *gatewaytest.Recorder
	upstreamURL string
	client      *http.Client // for raw requests and token requests
	caddy       gatewaytest.Caddy
}

// startStack starts oidc-provider with DPoP on (and its own nonces when
// asNonce) and the MCP server, which trusts JWTs signed by the gateway.
// Caddy starts with the first load.
func startStack(t *testing.T, asNonce bool) *stack {
	t.Helper()
	addr := gatewaytest.FreeLoopbackAddr(t)
	s := &stack{
		addr:        addr,
		url:         "http://" + addr,
		resource:    "http://" + addr + "/mcp",
		metricsAddr: gatewaytest.FreeLoopbackAddr(t),
		signingKey:  writeECKey(t),
	}
	tr := &http.Transport{Proxy: nil}
	t.Cleanup(tr.CloseIdleConnections)
	s.client = &http.Client{Transport: tr, Timeout: 15 * time.Second}

	s.as = oidcprovider.Start(t, oidcprovider.Options{
		Resource:         s.resource,
		DPoP:             true,
		DPoPRequireNonce: asNonce,
		Clients: []map[string]any{
			{"client_id": agentID, "client_secret": agentSecret, "grant_types": []string{"client_credentials"}, "dpop_bound_access_tokens": true},
			{"client_id": plainID, "client_secret": plainSecret, "grant_types": []string{"client_credentials"}},
			{"client_id": gatewayID, "client_secret": gatewaySecret},
		},
	})
	s.upstream, s.upstreamURL = gatewaytest.StartMCPServer(t, mcpserver.Config{
		JWKSURL:  s.url + "/.well-known/jwks.json", // the sign block's default jwks_path
		Issuer:   s.url,
		Resource: s.resource,
	})
	// Caddy stops before the MCP server and the AS (cleanups run last
	// first), whichever test or subtest loads it first.
	t.Cleanup(func() { _ = caddy.Stop() })
	return s
}

// siteTemplate is the oidc-provider "json + sign" gateway of
// docs/authorization-servers.md (as-config: oidc-provider-json-sign, the
// block examples/e2e/authservers runs) with {DPOP}, the route's dpop
// block, added. oidc-provider refuses to exchange a DPoP-bound subject
// token (invalid_request; see the oidcprovider package's TestDPoP), so
// token_exchange is not an option: the gateway signs the JWT it forwards,
// copying the token's cnf into it. A second loopback site serves Caddy's
// metrics.
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

	phantom_token {
		introspection_endpoint {INTROSPECTION}
		client_id ` + gatewayID + `
		client_secret ` + gatewaySecret + `
		introspection_format json
		issuer {AS_ISSUER}
		sign {
			issuer {GATEWAY_ISSUER}
			key {SIGNING_KEY}
		}
		resource {RESOURCE}
		authorization_server {AS_ISSUER}
		required_scopes ` + scopeTools + `
		cache {
			max_ttl 5m
		}
{DPOP}
	}

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

// load (re)loads Caddy with dpopBlock (a dpop block, indented as written
// inside phantom_token) on the route.
func (s *stack) load(t *testing.T, dpopBlock string) {
	t.Helper()
	indented := "\t\t" + strings.ReplaceAll(strings.TrimSpace(dpopBlock), "\n", "\n\t\t")
	cfg := strings.NewReplacer(
		"{GATEWAY_ADDR}", s.addr,
		"{METRICS_ADDR}", s.metricsAddr,
		"{INTROSPECTION}", s.as.IntrospectionURL,
		"{AS_ISSUER}", s.as.Issuer,
		"{GATEWAY_ISSUER}", s.url,
		"{SIGNING_KEY}", s.signingKey,
		"{RESOURCE}", s.resource,
		"{UPSTREAM}", strings.TrimPrefix(s.upstreamURL, "http://"),
		"{DPOP}", indented,
	).Replace(siteTemplate)
	s.caddy.Load(t, cfg, nil)
}

// dpopToken gets a client-credentials token of the agent bound to key.
func (s *stack) dpopToken(t *testing.T, key *dpopclient.Key) string {
	t.Helper()
	tok, err := dpopclient.ClientCredentials(context.Background(), s.client, key, dpopclient.TokenRequest{
		TokenURL: s.as.TokenURL, ClientID: agentID, ClientSecret: agentSecret,
		Scope: scopeTools, Resource: s.resource,
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(tok.AccessToken, ".") == 2 {
		t.Fatal("oidc-provider issued a JWT; the phantom token pattern needs an opaque token")
	}
	return tok.AccessToken
}

func newKey(t *testing.T, alg string) *dpopclient.Key {
	t.Helper()
	k, err := dpopclient.NewKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func proof(t *testing.T, k *dpopclient.Key, method, htu, token, nonce string) string {
	t.Helper()
	p, err := k.Proof(method, htu, token, nonce)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const initializeMessage = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"dpop-raw","version":"1.0.0"}}}`

// postInitialize sends an MCP initialize through the gateway with the
// given Authorization and DPoP header values (none when empty).
func (s *stack) postInitialize(t *testing.T, authorization string, proofs ...string) (*http.Response, []byte) {
	t.Helper()
	h := []string{
		"Content-Type", "application/json",
		"Accept", "application/json, text/event-stream",
		"Authorization", authorization,
	}
	for _, p := range proofs {
		h = append(h, "DPoP", p)
	}
	return gatewaytest.Do(t, s.client, http.MethodPost, s.resource, initializeMessage, h...)
}

// ---------------------------------------------------------------------------
// What the MCP server received

// forwardedJWT decodes (without verifying: the MCP server did) the
// claims of the one "Authorization: Bearer <JWT>" of r, failing the test
// when r has anything else: another scheme, the opaque token, a DPoP header.
func forwardedJWT(t *testing.T, r gatewaytest.Request, opaque string) map[string]any {
	t.Helper()
	if v := r.Header.Values("DPoP"); len(v) != 0 {
		t.Fatalf("upstream %s: got a DPoP header %q; the gateway must consume the proof", r.Method, v)
	}
	authz := r.Header.Values("Authorization")
	if len(authz) != 1 {
		t.Fatalf("upstream %s: %d Authorization headers, want 1", r.Method, len(authz))
	}
	if strings.Contains(authz[0], opaque) {
		t.Fatalf("upstream %s: the opaque token reached the MCP server", r.Method)
	}
	compact, ok := strings.CutPrefix(authz[0], "Bearer ")
	parts := strings.Split(compact, ".")
	if !ok || len(parts) != 3 {
		t.Fatalf("upstream %s: Authorization %.30q…, want Bearer <JWT>", r.Method, authz[0])
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	if err != nil || json.Unmarshal(b, &claims) != nil {
		t.Fatalf("upstream %s: the JWT payload does not decode", r.Method)
	}
	if r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden {
		t.Errorf("upstream %s: the MCP server refused the JWT (%d)", r.Method, r.Status)
	}
	return claims
}

// jkt is claims' cnf.jkt, or "".
func jkt(claims map[string]any) string {
	cnf, _ := claims["cnf"].(map[string]any)
	s, _ := cnf["jkt"].(string)
	return s
}

// ---------------------------------------------------------------------------
// Metrics

// metricsSnapshot holds the module's counters at one moment; they are
// process-wide and survive reloads: compare two snapshots.
type metricsSnapshot struct {
	requests       map[string]float64 // caddy_phantom_token_requests_total by result
	introspections float64            // introspection_duration_seconds_count, all outcomes
	rejections     map[string]float64 // sender_constraint_rejections_total by reason
}

func (s *stack) metrics(t *testing.T) metricsSnapshot {
	t.Helper()
	u := "http://" + s.metricsAddr + "/metrics"
	resp, err := s.client.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
	m := metricsSnapshot{requests: map[string]float64{}, rejections: map[string]float64{}}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			continue
		}
		series := line[:sp]
		name, labels, _ := strings.Cut(series, "{")
		label := func(k string) string {
			for _, kv := range strings.Split(strings.TrimSuffix(labels, "}"), ",") {
				if key, val, ok := strings.Cut(kv, "="); ok && key == k {
					return strings.Trim(val, `"`)
				}
			}
			return ""
		}
		switch name {
		case "caddy_phantom_token_requests_total":
			m.requests[label("result")] = v
		case "caddy_phantom_token_introspection_duration_seconds_count":
			m.introspections += v
		case "caddy_phantom_token_sender_constraint_rejections_total":
			m.rejections[label("reason")] = v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading %s: %v", u, err)
	}
	return m
}

// ---------------------------------------------------------------------------
// Keys

// writeECKey writes a new P-256 key, PKCS#8 PEM, for the sign block.
func writeECKey(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "gateway-signing.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
