package introspect

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// Test fixtures. The token and secret are distinctive so a leak into an
// error message is unmistakable.
const (
	testToken    = "opaque-TOKEN-3f9a8b7c6d5e"
	testClientID = "gateway"
	testSecret   = "s3cr3t-SECRET-a1b2c3"
	testIssuer   = "https://as.example.com"
)

var (
	keysOnce sync.Once
	rsaKey1  *rsa.PrivateKey
	rsaKey2  *rsa.PrivateKey
	ecKey    *ecdsa.PrivateKey
	edKey    ed25519.PrivateKey
)

// testKeys generates the signing keys once for the whole package run (RSA
// generation is the slow part).
func testKeys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if rsaKey1, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if rsaKey2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if _, edKey, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
	})
}

// publicJWK builds a public JWK with the given kid and alg ("" = unset).
func publicJWK(t testing.TB, priv crypto.Signer, kid, alg string) jwk.Key {
	t.Helper()
	k, err := jwk.FromRaw(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	if kid != "" {
		if err := k.Set(jwk.KeyIDKey, kid); err != nil {
			t.Fatal(err)
		}
	}
	if alg != "" {
		if err := k.Set(jwk.AlgorithmKey, jwa.SignatureAlgorithm(alg)); err != nil {
			t.Fatal(err)
		}
	}
	return k
}

// keySetJSON serializes public keys as a JWKS document.
func keySetJSON(t testing.TB, keys ...jwk.Key) []byte {
	t.Helper()
	set := jwk.NewSet()
	for _, k := range keys {
		if err := set.AddKey(k); err != nil {
			t.Fatal(err)
		}
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signJWT signs claims with key (a crypto private key, or []byte for HS*)
// and the given header parameters (kid "" = no kid).
func signJWT(t testing.TB, alg string, key any, kid string, claims map[string]any, extraHeaders map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	hdr := jws.NewHeaders()
	if kid != "" {
		_ = hdr.Set(jws.KeyIDKey, kid)
	}
	_ = hdr.Set(jws.TypeKey, "at+jwt")
	for k, v := range extraHeaders {
		if err := hdr.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	out, err := jws.Sign(payload, jws.WithKey(jwa.SignatureAlgorithm(alg), key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// rawJWS assembles a compact JWS from arbitrary header/payload JSON and a
// signature segment, for shapes no library would produce.
func rawJWS(header, payload, sig string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc([]byte(payload)) + "." + sig
}

// asRequest is what the fake AS saw.
type asRequest struct {
	Method string
	Path   string
	Header http.Header
	Body   string
}

// fakeAS is an httptest server standing in for the authorization server.
type fakeAS struct {
	*httptest.Server
	mu       sync.Mutex
	requests []asRequest
	hits     atomic.Int32
}

func newFakeAS(t testing.TB, h http.HandlerFunc) *fakeAS {
	t.Helper()
	f := &fakeAS{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		var sb strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := r.Body.Read(buf)
			sb.Write(buf[:n])
			if err != nil {
				break
			}
		}
		f.mu.Lock()
		f.requests = append(f.requests, asRequest{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: sb.String()})
		f.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAS) lastRequest(t testing.TB) asRequest {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) == 0 {
		t.Fatal("the AS received no request")
	}
	return f.requests[len(f.requests)-1]
}

func (f *fakeAS) allRequests() []asRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]asRequest(nil), f.requests...)
}

// reply returns a handler answering with a fixed status, headers and body.
func reply(status int, body string, headers ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Add(headers[i], headers[i+1])
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

// withContentType returns reply's header pairs: Content-Type ctype first
// when ctype is set, then extra.
func withContentType(ctype string, extra ...string) []string {
	if ctype == "" {
		return extra
	}
	return append([]string{"Content-Type", ctype}, extra...)
}

// closedAddr returns a loopback host:port nothing listens on, so a
// connection to it is refused.
func closedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// wantErrContaining fails unless err is an error whose message contains
// want.
func wantErrContaining(t testing.TB, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want %q", err, want)
	}
}

// configCase is one row of a constructor's validation table: mod (nil for
// none) adjusts a valid base configuration, and wantErr is a substring of
// the expected error, "" when construction must succeed.
type configCase[C any] struct {
	name    string
	mod     func(*C)
	wantErr string
}

// runConfigCases builds every case's configuration with build, as a
// subtest. A success is then checked by ok, a failure must contain wantErr
// and is then checked by failed (either check may be nil).
func runConfigCases[C, T any](t *testing.T, base C, cases []configCase[C], build func(C) (T, error), ok func(*testing.T, T), failed func(*testing.T, error)) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			if tt.mod != nil {
				tt.mod(&cfg)
			}
			got, err := build(cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("constructor: %v", err)
				}
				if ok != nil {
					ok(t, got)
				}
				return
			}
			wantErrContaining(t, err, tt.wantErr)
			if failed != nil {
				failed(t, err)
			}
		})
	}
}

// newTestClient builds a Client for srv with test credentials; mod may
// adjust the config.
func newTestClient(t testing.TB, endpoint string, mod func(*Config)) *Client {
	t.Helper()
	cfg := Config{Endpoint: endpoint, ClientID: testClientID, ClientSecret: testSecret}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// wantKind asserts that err is an *Error of the given kind (and status when
// status >= 0), and that its message leaks none of the secrets.
func wantKind(t testing.TB, err error, kind ErrorKind, status int, secrets ...string) *Error {
	t.Helper()
	if err == nil {
		t.Fatalf("want %s error, got nil", kind)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("want *Error, got %T: %v", err, err)
	}
	if e.Kind != kind {
		t.Fatalf("kind = %s, want %s (err: %v)", e.Kind, kind, err)
	}
	if status >= 0 && e.Status != status {
		t.Fatalf("status = %d, want %d (err: %v)", e.Status, status, err)
	}
	assertNoLeak(t, err, secrets...)
	return e
}

// assertNoLeak fails when the error message contains any secret, or is not
// lowercase-initial / ends with a period (the project's error style).
func assertNoLeak(t testing.TB, err error, secrets ...string) {
	t.Helper()
	msg := err.Error()
	for _, s := range append([]string{testToken, testSecret}, secrets...) {
		if s != "" && strings.Contains(msg, s) {
			t.Fatalf("error message leaks a secret: %q", msg)
		}
	}
	if msg == "" || strings.HasSuffix(msg, ".") || (msg[0] >= 'A' && msg[0] <= 'Z') {
		t.Fatalf("error message style: %q", msg)
	}
}
