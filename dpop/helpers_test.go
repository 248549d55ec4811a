package dpop

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// The request every test proof is made for, unless a case says otherwise.
const (
	testMethod = "POST"
	testURL    = "https://mcp.example.com/mcp"
	testToken  = "opaque-Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp"
)

// testNow is the fixed clock of the tests.
var testNow = time.Unix(1_760_000_000, 0)

func testRequest() Request {
	return Request{Method: testMethod, URL: testURL, AccessToken: testToken}
}

// testKeys are generated once per test binary: RSA generation is slow.
type testKeySet struct {
	ec, ec2 *ecdsa.PrivateKey // P-256
	ec384   *ecdsa.PrivateKey
	ed      ed25519.PrivateKey
	rsa     *rsa.PrivateKey // 2048 bits
	rsa1024 *rsa.PrivateKey
}

var (
	keysOnce sync.Once
	keys     testKeySet
)

func testKeys(tb testing.TB) *testKeySet {
	tb.Helper()
	keysOnce.Do(func() {
		must := func(err error) {
			if err != nil {
				panic(err)
			}
		}
		var err error
		keys.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		keys.ec2, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		keys.ec384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		must(err)
		_, keys.ed, err = ed25519.GenerateKey(rand.Reader)
		must(err)
		keys.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		keys.rsa1024, err = rsa.GenerateKey(rand.Reader, 1024)
		must(err)
	})
	return &keys
}

// jwkOf returns the public JWK of a private key as a JSON object, the way
// jwx serializes it; withPrivate keeps the private members.
func jwkOf(tb testing.TB, key any, withPrivate bool) map[string]any {
	tb.Helper()
	var k jwk.Key
	var err error
	if withPrivate {
		k, err = jwk.FromRaw(key)
	} else {
		k, err = jwk.PublicKeyOf(key)
	}
	if err != nil {
		tb.Fatal(err)
	}
	b, err := json.Marshal(k)
	if err != nil {
		tb.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatal(err)
	}
	return m
}

// jwxThumbprint is jwx's RFC 7638 thumbprint of key's public half: the
// independent value Proof.Thumbprint must equal.
func jwxThumbprint(tb testing.TB, key any) string {
	tb.Helper()
	k, err := jwk.PublicKeyOf(key)
	if err != nil {
		tb.Fatal(err)
	}
	sum, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		tb.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(sum)
}

// del marks a member to remove from the default header or claims.
type delMarker struct{}

var del = delMarker{}

var jtiCounter atomic.Int64

// freshJTI returns a jti no other proof of this test binary has.
func freshJTI() string {
	return "jti-" + strconv.FormatInt(jtiCounter.Add(1), 10)
}

func athOf(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// defaultClaims are those of a valid proof for testRequest at testNow.
func defaultClaims() map[string]any {
	return map[string]any{
		"jti": freshJTI(),
		"htm": testMethod,
		"htu": testURL,
		"iat": testNow.Unix(),
		"ath": athOf(testToken),
	}
}

// merge applies overrides to base (del removes a member) and returns base.
func merge(base, overrides map[string]any) map[string]any {
	for k, v := range overrides {
		if v == del {
			delete(base, k)
		} else {
			base[k] = v
		}
	}
	return base
}

// craft builds and signs a proof by hand, so that any header can be
// produced: the header is {"typ","alg","jwk"} for key and alg with
// headerOver applied, the claims defaultClaims with claimsOver applied,
// and the signature is made by signer (key when nil) with jwx's signer for
// alg. alg "none" gives an empty signature.
func craft(tb testing.TB, key any, alg string, headerOver, claimsOver map[string]any, signer any) string {
	tb.Helper()
	header := map[string]any{"typ": "dpop+jwt", "alg": alg}
	if _, isSecret := key.([]byte); !isSecret && key != nil {
		header["jwk"] = jwkOf(tb, key, false)
	}
	merge(header, headerOver)
	return craftRaw(tb, header, merge(defaultClaims(), claimsOver), alg, signerOr(signer, key))
}

func signerOr(signer, key any) any {
	if signer != nil {
		return signer
	}
	return key
}

// craftRaw serializes header and payload (any JSON-marshalable value,
// or raw bytes as is) and signs them with key under alg.
func craftRaw(tb testing.TB, header, payload any, alg string, key any) string {
	tb.Helper()
	enc := func(v any) string {
		b, ok := v.([]byte)
		if !ok {
			var err error
			if b, err = json.Marshal(v); err != nil {
				tb.Fatal(err)
			}
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	input := enc(header) + "." + enc(payload)
	if alg == "none" {
		return input + "."
	}
	signer, err := jws.NewSigner(jwa.SignatureAlgorithm(alg))
	if err != nil {
		tb.Fatal(err)
	}
	sig, err := signer.Sign([]byte(input), key)
	if err != nil {
		tb.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// signJWX makes a proof the way a client library would: jwx builds the
// protected header (typ and the public jwk) and signs.
func signJWX(tb testing.TB, key any, alg string, claimsOver map[string]any) string {
	tb.Helper()
	pub, err := jwk.PublicKeyOf(key)
	if err != nil {
		tb.Fatal(err)
	}
	hdrs := jws.NewHeaders()
	if err := hdrs.Set(jws.TypeKey, "dpop+jwt"); err != nil {
		tb.Fatal(err)
	}
	if err := hdrs.Set(jws.JWKKey, pub); err != nil {
		tb.Fatal(err)
	}
	payload, err := json.Marshal(merge(defaultClaims(), claimsOver))
	if err != nil {
		tb.Fatal(err)
	}
	out, err := jws.Sign(payload, jws.WithKey(jwa.SignatureAlgorithm(alg), key, jws.WithProtectedHeaders(hdrs)))
	if err != nil {
		tb.Fatal(err)
	}
	return string(out)
}

// newTestVerifier returns a Verifier at testNow with a memory replay cache
// on the same clock; cfg's other fields are kept.
func newTestVerifier(tb testing.TB, cfg Config) *Verifier {
	tb.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return testNow }
	}
	if cfg.Replay == nil {
		cfg.Replay = newMemoryReplayCache(1000, cfg.Now)
	}
	v, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// failingCache is a ReplayCache whose store is down.
type failingCache struct{ err error }

func (c failingCache) Seen(context.Context, string, time.Time) (bool, error) { return false, c.err }

var errStoreDown = errors.New("redis: connection refused")
