package introspect

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// privateJWK wraps a private key as a jwk.Key with optional kid and alg.
func privateJWK(t testing.TB, priv crypto.Signer, kid, alg string) jwk.Key {
	t.Helper()
	k, err := jwk.FromRaw(priv)
	if err != nil {
		t.Fatal(err)
	}
	if kid != "" {
		_ = k.Set(jwk.KeyIDKey, kid)
	}
	if alg != "" {
		_ = k.Set(jwk.AlgorithmKey, jwa.SignatureAlgorithm(alg))
	}
	return k
}

// seenAssertion is what the test AS read from a verified client assertion.
type seenAssertion struct {
	alg, kid string
	claims   map[string]any
}

// assertionAS is a fake AS that verifies private_key_jwt client assertions
// with the public key, as a real AS would, and then answers with reply.
type assertionAS struct {
	*fakeAS
	mu   sync.Mutex
	seen []seenAssertion
	errs []string
}

func newAssertionAS(t *testing.T, pub crypto.PublicKey, then http.HandlerFunc) *assertionAS {
	t.Helper()
	a := &assertionAS{}
	fail := func(w http.ResponseWriter, msg string) {
		a.mu.Lock()
		a.errs = append(a.errs, msg)
		a.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
	}
	a.fakeAS = newFakeAS(t, func(w http.ResponseWriter, r *http.Request) {
		req := a.lastRequest(t)
		form, err := url.ParseQuery(req.Body)
		if err != nil {
			fail(w, "form: "+err.Error())
			return
		}
		if got := form.Get("client_assertion_type"); got != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
			fail(w, "client_assertion_type = "+got)
			return
		}
		assertion := form.Get("client_assertion")
		msg, err := jws.Parse([]byte(assertion))
		if err != nil || len(msg.Signatures()) != 1 {
			fail(w, "assertion does not parse")
			return
		}
		hdr := msg.Signatures()[0].ProtectedHeaders()
		payload, err := jws.Verify([]byte(assertion), jws.WithKey(hdr.Algorithm(), pub))
		if err != nil {
			fail(w, "assertion signature: "+err.Error())
			return
		}
		var claims map[string]any
		if err := json.Unmarshal(payload, &claims); err != nil {
			fail(w, "assertion payload")
			return
		}
		a.mu.Lock()
		a.seen = append(a.seen, seenAssertion{alg: hdr.Algorithm().String(), kid: hdr.KeyID(), claims: claims})
		a.mu.Unlock()
		then(w, r)
	})
	return a
}

func TestPrivateKeyJWT(t *testing.T) {
	testKeys(t)
	tests := []struct {
		name     string
		key      jwk.Key
		pub      crypto.PublicKey
		audience string
		wantAlg  string
		wantKid  string
	}{
		{name: "rsa inferred RS256", key: privateJWK(t, rsaKey1, "", ""), pub: rsaKey1.Public(), wantAlg: "RS256"},
		{name: "rsa with alg PS256 and kid", key: privateJWK(t, rsaKey2, "gw-key-1", "PS256"), pub: rsaKey2.Public(), wantAlg: "PS256", wantKid: "gw-key-1"},
		{name: "ec P-256 inferred ES256", key: privateJWK(t, ecKey, "ec", ""), pub: ecKey.Public(), wantAlg: "ES256", wantKid: "ec"},
		{name: "ed25519 inferred EdDSA", key: privateJWK(t, edKey, "", ""), pub: edKey.Public(), wantAlg: "EdDSA"},
		{name: "audience override", key: privateJWK(t, ecKey, "", ""), pub: ecKey.Public(), audience: testIssuer, wantAlg: "ES256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newAssertionAS(t, tt.pub, reply(http.StatusNoContent, ""))
			endpoint := as.URL + "/oauth/introspect"
			now := fixedNow
			c := newTestClient(t, endpoint, func(c *Config) {
				c.ClientAuth, c.ClientSecret, c.AssertionKey, c.AssertionAudience = PrivateKeyJWT, "", tt.key, tt.audience
				c.Now = func() time.Time { return now }
			})
			for range 2 {
				res, err := c.Introspect(context.Background(), testToken, "")
				if err != nil || res.Active {
					t.Fatalf("res=%+v err=%v", res, err)
				}
				now = now.Add(time.Second)
			}
			as.mu.Lock()
			seen, errs := as.seen, as.errs
			as.mu.Unlock()
			if len(seen) != 2 {
				t.Fatalf("AS verified %d assertions, want 2 (errors: %v)", len(seen), errs)
			}
			wantAud := endpoint
			if tt.audience != "" {
				wantAud = tt.audience
			}
			for i, s := range seen {
				if s.alg != tt.wantAlg || s.kid != tt.wantKid {
					t.Errorf("header alg=%q kid=%q, want %q %q", s.alg, s.kid, tt.wantAlg, tt.wantKid)
				}
				c := s.claims
				if c["iss"] != testClientID || c["sub"] != testClientID || c["aud"] != wantAud {
					t.Errorf("iss=%v sub=%v aud=%v", c["iss"], c["sub"], c["aud"])
				}
				iat, _ := c["iat"].(float64)
				exp, _ := c["exp"].(float64)
				if iat != float64(fixedNow.Unix()+int64(i)) || exp-iat <= 0 || exp-iat > 60 {
					t.Errorf("iat=%v exp=%v", iat, exp)
				}
				jti, _ := c["jti"].(string)
				if b, err := base64.RawURLEncoding.DecodeString(jti); err != nil || len(b) != 16 {
					t.Errorf("jti %q is not 128 random bits", jti)
				}
			}
			if seen[0].claims["jti"] == seen[1].claims["jti"] {
				t.Fatal("jti reused across requests")
			}
			for _, r := range as.allRequests() {
				form, _ := url.ParseQuery(r.Body)
				if form.Has("client_secret") || r.Header.Get("Authorization") != "" {
					t.Fatal("a secret was sent with private_key_jwt")
				}
				if form.Get("client_id") != testClientID || form.Get("token") != testToken {
					t.Fatalf("form = %v", form)
				}
			}
		})
	}
}

// Every authenticated request (each attempt, a retry included) carries a
// fresh assertion.
func TestPrivateKeyJWTAssertionNeverReused(t *testing.T) {
	testKeys(t)
	a, err := newAuthenticator(authConfig{method: PrivateKeyJWT, clientID: "gw", key: privateJWK(t, ecKey, "", ""), endpoint: "https://as.example.com/token"})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range 50 {
		f, h := url.Values{}, http.Header{}
		if err := a.apply(f, h); err != nil {
			t.Fatal(err)
		}
		s := f.Get("client_assertion")
		if seen[s] {
			t.Fatal("assertion reused")
		}
		seen[s] = true
	}
}

func TestClientAuthConfig(t *testing.T) {
	testKeys(t)
	ecPriv := privateJWK(t, ecKey, "", "")
	ecPub := publicJWK(t, ecKey, "", "")
	tlsClient := &http.Client{Transport: &http.Transport{}}
	base := Config{Endpoint: "https://as.example.com/introspect", ClientID: "gw"}
	tests := []configCase[Config]{
		{"private_key_jwt", func(c *Config) { c.ClientAuth, c.AssertionKey = PrivateKeyJWT, ecPriv }, ""},
		{"private_key_jwt without key", func(c *Config) { c.ClientAuth = PrivateKeyJWT }, "needs an assertion key"},
		{"private_key_jwt with secret", func(c *Config) { c.ClientAuth, c.AssertionKey, c.ClientSecret = PrivateKeyJWT, ecPriv, testSecret }, "client_secret is not used"},
		{"private_key_jwt with public key", func(c *Config) { c.ClientAuth, c.AssertionKey = PrivateKeyJWT, ecPub }, "assertion key: not a private key"},
		{"private_key_jwt with hmac key", func(c *Config) {
			k, _ := jwk.FromRaw([]byte(testSecret))
			c.ClientAuth, c.AssertionKey = PrivateKeyJWT, k
		}, "symmetric keys are not supported"},
		{"private_key_jwt with alg of another key type", func(c *Config) {
			c.ClientAuth, c.AssertionKey = PrivateKeyJWT, privateJWK(t, ecKey, "", "RS256")
		}, `key alg "RS256" does not suit the key`},
		{"private_key_jwt with HS256 alg", func(c *Config) {
			c.ClientAuth, c.AssertionKey = PrivateKeyJWT, privateJWK(t, rsaKey1, "", "HS256")
		}, `key alg "HS256" does not suit the key`},
		{"secret with assertion key", func(c *Config) { c.ClientSecret, c.AssertionKey = testSecret, ecPriv }, "only used with client_auth"},
		{"secret with assertion audience", func(c *Config) { c.ClientSecret, c.AssertionAudience = testSecret, testIssuer }, "only used with client_auth"},
		{"tls_client_auth with a client without certificate", func(c *Config) { c.ClientAuth, c.HTTPClient = TLSClientAuth, tlsClient }, "needs an http client that presents"},
		{"tls_client_auth without client", func(c *Config) { c.ClientAuth = TLSClientAuth }, "needs an http client that presents"},
		{"tls_client_auth with custom round tripper", func(c *Config) {
			c.ClientAuth, c.HTTPClient = TLSClientAuth, &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, nil })}
		}, ""},
		{"tls_client_auth with secret", func(c *Config) { c.ClientAuth, c.HTTPClient, c.ClientSecret = TLSClientAuth, tlsClient, testSecret }, "client_secret is not used"},
	}
	runConfigCases(t, base, tests, New, nil, func(t *testing.T, err error) { assertNoLeak(t, err) })
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A retry after a failed connection is a new request with a new assertion.
func TestPrivateKeyJWTRetryUsesFreshAssertion(t *testing.T) {
	testKeys(t)
	var mu sync.Mutex
	var assertions []string
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		b := make([]byte, 8192)
		n, _ := r.Body.Read(b)
		f, _ := url.ParseQuery(string(b[:n]))
		mu.Lock()
		defer mu.Unlock()
		assertions = append(assertions, f.Get("client_assertion"))
		if len(assertions) == 1 {
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
		}
		return &http.Response{StatusCode: http.StatusNoContent, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
	})
	c := newTestClient(t, "https://as.example.com/introspect", func(c *Config) {
		c.ClientAuth, c.ClientSecret, c.AssertionKey = PrivateKeyJWT, "", privateJWK(t, ecKey, "", "")
		c.HTTPClient = &http.Client{Transport: rt}
	})
	if _, err := c.Introspect(context.Background(), testToken, ""); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(assertions) != 2 || assertions[0] == "" || assertions[0] == assertions[1] {
		t.Fatalf("attempts carried %d assertions, equal=%v", len(assertions), len(assertions) == 2 && assertions[0] == assertions[1])
	}
}
