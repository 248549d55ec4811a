package caddymodule

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// The miss-path benchmarks time one whole ServeHTTP of a never-seen token:
// the cache lookup, the introspection over real loopback HTTP (keep-alive)
// to an in-process AS stub, parsing and verifying its reply, obtaining the
// upstream JWT, and storing the entry. The stub answers from precomputed
// bodies so that as little as possible of the time is its own; it runs in
// this process, so its (small) share is in the figures. cpu-ns/op is the
// process's CPU time per miss, the steadier figure on a shared machine.
// Run them with
//
//	go test -run '^$' -bench ServeHTTPMiss -benchmem ./caddymodule

const missIssuer = "https://as.example.com"

// missAS is the stub AS of the miss benchmarks: an RS256 key published at
// /jwks, and one precomputed answer per endpoint.
type missAS struct {
	srv   *httptest.Server
	key   *rsa.PrivateKey
	calls atomic.Int64

	jwt         string // the RS256 access-token JWT every active answer carries
	jsonPlain   []byte // RFC 7662, no JWT member
	jsonWithJWT []byte // RFC 7662 with the JWT in "phantom_token"
	exchange    []byte // RFC 8693 token endpoint reply

	mu      sync.Mutex
	rfc9701 string // signed introspection response, re-signed when stale
	signed  time.Time
}

func newMissAS(tb testing.TB) *missAS {
	tb.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	as := &missAS{key: key}
	now := time.Now()
	claims := map[string]any{
		"iss": missIssuer, "sub": "bench-user", "client_id": "agent", "aud": benchResource,
		"scope": "mcp:tools openid profile", "iat": now.Unix(), "exp": now.Add(24 * time.Hour).Unix(),
		"jti": "bench-jti",
	}
	as.jwt = as.sign(tb, "at+jwt", claims)

	introspection := map[string]any{"active": true, "token_type": "Bearer"}
	for k, v := range claims {
		introspection[k] = v
	}
	as.jsonPlain = mustJSON(tb, introspection)
	introspection["phantom_token"] = as.jwt
	as.jsonWithJWT = mustJSON(tb, introspection)
	as.exchange = mustJSON(tb, map[string]any{
		"access_token": as.jwt, "issued_token_type": "urn:ietf:params:oauth:token-type:jwt",
		"token_type": "Bearer", "expires_in": 3600,
	})

	enc := base64.RawURLEncoding.EncodeToString
	jwks := mustJSON(tb, map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "kid": "bench-as-1", "alg": "RS256", "use": "sig",
		"n": enc(key.N.Bytes()), "e": enc(big.NewInt(int64(key.E)).Bytes()),
	}}})

	answer := func(w http.ResponseWriter, r *http.Request, mediaType string, body []byte) {
		as.calls.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", mediaType)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(jwks)
	})
	mux.HandleFunc("/introspect/jwt", func(w http.ResponseWriter, r *http.Request) {
		answer(w, r, "application/jwt", []byte(as.jwt))
	})
	mux.HandleFunc("/introspect/json", func(w http.ResponseWriter, r *http.Request) {
		answer(w, r, "application/json", as.jsonPlain)
	})
	mux.HandleFunc("/introspect/json-jwt", func(w http.ResponseWriter, r *http.Request) {
		answer(w, r, "application/json", as.jsonWithJWT)
	})
	mux.HandleFunc("/introspect/rfc9701", func(w http.ResponseWriter, r *http.Request) {
		answer(w, r, "application/token-introspection+jwt", []byte(as.rfc9701Reply(tb, introspection)))
	})
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		answer(w, r, "application/json", as.exchange)
	})
	as.srv = httptest.NewServer(mux)
	tb.Cleanup(as.srv.Close)
	return as
}

// rfc9701Reply returns the signed introspection response, re-signed every
// few seconds so that its iat stays within the gateway's allowed skew
// however long the benchmark runs, without signing on every call.
func (as *missAS) rfc9701Reply(tb testing.TB, introspection map[string]any) string {
	as.mu.Lock()
	defer as.mu.Unlock()
	if now := time.Now(); now.Sub(as.signed) > 10*time.Second {
		ti := make(map[string]any, len(introspection))
		for k, v := range introspection {
			ti[k] = v
		}
		delete(ti, "phantom_token")
		as.rfc9701 = as.sign(tb, "token-introspection+jwt", map[string]any{
			"iss": missIssuer, "aud": "gateway", "iat": now.Unix(), "token_introspection": ti,
		})
		as.signed = now
	}
	return as.rfc9701
}

// sign makes a compact RS256 JWS of claims with the AS key.
func (as *missAS) sign(tb testing.TB, typ string, claims map[string]any) string {
	enc := base64.RawURLEncoding.EncodeToString
	input := enc(mustJSON(tb, map[string]string{"alg": "RS256", "typ": typ, "kid": "bench-as-1"})) +
		"." + enc(mustJSON(tb, claims))
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(nil, as.key, crypto.SHA256, sum[:])
	if err != nil {
		tb.Fatal(err)
	}
	return input + "." + enc(sig)
}

func mustJSON(tb testing.TB, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// writeSigningKey writes a fresh gateway signing key of the given kind
// ("RS256" or "ES256") as a PKCS#8 PEM file and returns its path.
func writeSigningKey(tb testing.TB, alg string) string {
	tb.Helper()
	var key any
	var err error
	switch alg {
	case "RS256":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		tb.Fatalf("unknown signing alg %q", alg)
	}
	if err != nil {
		tb.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(tb.TempDir(), "sign.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// missFormats are the sub-benchmarks: each configures h for one way of
// obtaining the upstream JWT. Every JWT from the AS is verified against
// its JWKS (as_jwks_uri), as a production route would.
var missFormats = []struct {
	name      string
	configure func(tb testing.TB, h *Handler, as *missAS)
}{
	{"jwt", func(_ testing.TB, h *Handler, as *missAS) {
		h.IntrospectionEndpoint = as.srv.URL + "/introspect/jwt"
	}},
	{"json+jwt_claim", func(_ testing.TB, h *Handler, as *missAS) {
		h.IntrospectionEndpoint = as.srv.URL + "/introspect/json-jwt"
		h.IntrospectionFormat, h.JWTClaim = "json", "phantom_token"
	}},
	{"json+sign_ES256", func(tb testing.TB, h *Handler, as *missAS) {
		h.IntrospectionEndpoint = as.srv.URL + "/introspect/json"
		h.IntrospectionFormat = "json"
		h.Sign = &SignConfig{Issuer: "https://gw.example.com", Key: writeSigningKey(tb, "ES256")}
	}},
	{"json+sign_RS256", func(tb testing.TB, h *Handler, as *missAS) {
		h.IntrospectionEndpoint = as.srv.URL + "/introspect/json"
		h.IntrospectionFormat = "json"
		h.Sign = &SignConfig{Issuer: "https://gw.example.com", Key: writeSigningKey(tb, "RS256")}
	}},
	{"rfc9701+sign_ES256", func(tb testing.TB, h *Handler, as *missAS) {
		h.IntrospectionEndpoint = as.srv.URL + "/introspect/rfc9701"
		h.IntrospectionFormat = "rfc9701"
		h.Sign = &SignConfig{Issuer: "https://gw.example.com", Key: writeSigningKey(tb, "ES256")}
	}},
	{"json+token_exchange", func(_ testing.TB, h *Handler, as *missAS) {
		h.IntrospectionEndpoint = as.srv.URL + "/introspect/json"
		h.IntrospectionFormat = "json"
		h.TokenExchange = &TokenExchangeConfig{Endpoint: as.srv.URL + "/token"}
	}},
}

// missHandler provisions a handler of one format against as.
func missHandler(tb testing.TB, as *missAS, configure func(testing.TB, *Handler, *missAS)) *Handler {
	tb.Helper()
	h := &Handler{
		ClientID:             "gateway",
		ClientSecret:         "s3cret",
		ASJWKSURI:            as.srv.URL + "/jwks",
		Issuer:               missIssuer,
		Resource:             benchResource,
		AuthorizationServers: []string{missIssuer},
		RequiredScopes:       []string{"mcp:tools"},
		// The default cache size, as the load harness's miss route: a
		// much larger one (the hit benchmarks' 1 GiB) makes ristretto's
		// frequency sketch so large that page faults on its first touches
		// dominate a short run.
	}
	configure(tb, h, as)
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	if err := h.Provision(ctx); err != nil {
		cancel()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = h.Cleanup()
		cancel()
	})
	return h
}

// missTokens numbers the benchmarks' tokens process-wide, so that no
// sub-benchmark (nor a -count repetition sharing a pooled cache) ever
// sees a token twice.
var missTokens atomic.Int64

// BenchmarkServeHTTPMiss is one cache miss per iteration, per format.
// The first request of each sub-benchmark, outside the timed loop, opens
// the keep-alive connections and fetches the AS JWKS, which later misses
// reuse.
func BenchmarkServeHTTPMiss(b *testing.B) {
	as := newMissAS(b)
	for _, f := range missFormats {
		b.Run(f.name, func(b *testing.B) {
			h := missHandler(b, as, f.configure)
			br := newBenchRequest(false)
			next := func() string { return "Bearer miss-token-" + strconv.FormatInt(missTokens.Add(1), 10) }
			br.serve(b, h, next()) // warm: connections, JWKS
			start := as.calls.Load()
			b.ReportAllocs()
			b.ResetTimer()
			cpu := processCPU()
			n := 0
			for b.Loop() {
				br.serve(b, h, next())
				n++
			}
			b.StopTimer()
			// The gateway's and the in-process AS's CPU together: the
			// figure the load harness's "CPU per request" corresponds to.
			b.ReportMetric(float64(processCPU()-cpu)/float64(n), "cpu-ns/op")
			// One introspection per miss, plus one exchange call when
			// exchanging.
			want := int64(n)
			if h.exchanger != nil {
				want *= 2
			}
			if got := as.calls.Load() - start; got != want {
				b.Fatalf("AS calls = %d, want %d (every iteration must miss)", got, want)
			}
			if auth := br.r.Header.Get("Authorization"); len(auth) < 100 {
				b.Fatalf("upstream Authorization %q is not a JWT", auth)
			}
		})
	}
}
