package mcpserver_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/phantomgate/caddy-phantom-token/examples/mcpserver"
)

const (
	testIssuer   = "https://as.example.com"
	testResource = "https://mcp.example.com/mcp"
)

// keyIssuer is a test authorization server: ES256 keys and a JWKS endpoint.
type keyIssuer struct {
	mu      sync.Mutex
	keys    map[string]jwk.Key // kid → private key
	fetches atomic.Int64
	down    atomic.Bool
	srv     *httptest.Server
}

func newKeyIssuer(t *testing.T) *keyIssuer {
	t.Helper()
	ki := &keyIssuer{keys: map[string]jwk.Key{}}
	ki.addKey(t, "k1")
	ki.srv = httptest.NewServer(http.HandlerFunc(ki.serveJWKS))
	t.Cleanup(ki.srv.Close)
	return ki
}

// addKey generates an ES256 key. Its public JWK carries no "alg", as many
// authorization servers publish them.
func (ki *keyIssuer) addKey(t *testing.T, kid string) jwk.Key {
	t.Helper()
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := jwk.FromRaw(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := key.Set(jwk.KeyIDKey, kid); err != nil {
		t.Fatal(err)
	}
	ki.mu.Lock()
	ki.keys[kid] = key
	ki.mu.Unlock()
	return key
}

func (ki *keyIssuer) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	ki.fetches.Add(1)
	if ki.down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	set := jwk.NewSet()
	ki.mu.Lock()
	for _, k := range ki.keys {
		pub, _ := k.PublicKey()
		_ = set.AddKey(pub)
	}
	ki.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(set)
}

func (ki *keyIssuer) jwksURL() string { return ki.srv.URL + "/jwks" }

// claims are the default claims of a test token.
func claims() map[string]any {
	now := time.Now()
	return map[string]any{
		"iss":       testIssuer,
		"aud":       []string{testResource},
		"sub":       "agent",
		"client_id": "agent",
		"scope":     "mcp:tools",
		"iat":       now.Unix(),
		"exp":       now.Add(time.Hour).Unix(),
		"jti":       "jti-1",
	}
}

// sign signs claims with key kid, JOSE typ (none when ""), algorithm ES256.
func (ki *keyIssuer) sign(t *testing.T, kid, typ string, c map[string]any) string {
	t.Helper()
	ki.mu.Lock()
	key := ki.keys[kid]
	ki.mu.Unlock()
	return signWith(t, jwa.ES256, key, typ, c)
}

// signWith signs c as a compact JWS with alg and key; the JOSE header gets
// typ unless it is "", and the key's kid.
func signWith(t *testing.T, alg jwa.SignatureAlgorithm, key any, typ string, c map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	hdrs := jws.NewHeaders()
	if typ != "" {
		_ = hdrs.Set(jws.TypeKey, typ)
	}
	if k, ok := key.(jwk.Key); ok && k.KeyID() != "" {
		_ = hdrs.Set(jws.KeyIDKey, k.KeyID())
	}
	signed, err := jws.Sign(payload, jws.WithKey(alg, key, jws.WithProtectedHeaders(hdrs)))
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return string(signed)
}

// startServer serves mcpserver.New at /mcp on a loopback httptest server.
func startServer(t *testing.T, ki *keyIssuer) *httptest.Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h, err := mcpserver.New(ctx, mcpserver.Config{JWKSURL: ki.jwksURL(), Issuer: testIssuer, Resource: testResource})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// bearer is an http.RoundTripper that adds "Authorization: Bearer <token>".
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// connect opens an MCP client session with token.
func connect(t *testing.T, endpoint, token string, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	return connectVersion(t, endpoint, token, opts, "")
}

// connectVersion is connect at protocol version (the SDK's latest if "").
func connectVersion(t *testing.T, endpoint, token string, opts *mcp.ClientOptions, version string) *mcp.ClientSession {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "1.0.0"}, opts)
	transport := &mcp.StreamableClientTransport{
		Endpoint:   endpoint,
		HTTPClient: &http.Client{Transport: bearer{token: token, next: http.DefaultTransport}},
		MaxRetries: -1,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := client.Connect(ctx, transport, &mcp.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

func base64URL(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
