package dpop

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/url"
	"os"
	"path"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// allReasons is every Reason an *Error may carry.
var allReasons = map[string]bool{
	reasonHeaderCount: true, reasonTooLarge: true, reasonNotJWS: true, reasonHeader: true,
	reasonTyp: true, reasonAlg: true, reasonCrit: true, reasonKeyReference: true,
	reasonJWKMissing: true, reasonJWKPrivate: true, reasonJWKType: true, reasonJWKUsage: true,
	reasonJWKInvalid: true, reasonRSASize: true, reasonSignature: true, reasonPayload: true,
	reasonJTI: true, reasonHTM: true, reasonHTUInvalid: true, reasonHTU: true,
	reasonIATInvalid: true, reasonIATOld: true, reasonIATFuture: true, reasonATHMissing: true,
	reasonATH: true, reasonNonceMissing: true, reasonNonce: true, reasonReplay: true,
	reasonReplayFailure: true,
}

// FuzzVerify feeds arbitrary DPoP header values to Verify. It must never
// panic; every failure must be an *Error with a known code and one of the
// fixed reasons (so nothing of the input can reach a message); and an
// accepted proof must really be one: signed by one of the seed keys (the
// fuzzer cannot sign, so no other key can pass), verified independently
// by jwx, and carrying the claims of the request.
//
// The seed keys come from testdata: the fuzzing coordinator signs the
// seeds and its worker processes check them, so the keys must not be
// generated per process.
func FuzzVerify(f *testing.F) {
	fk := fuzzKeys(f)
	stranger, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	signers := map[string]any{} // thumbprint → private key
	for _, key := range []any{fk.ec, fk.ed, fk.rsa} {
		signers[jwxThumbprint(f, key)] = key
	}
	f.Add(signJWX(f, fk.ec, "ES256", nil))
	f.Add(signJWX(f, fk.ed, "EdDSA", nil))
	f.Add(signJWX(f, fk.rsa, "PS256", nil))
	f.Add(craft(f, fk.ec, "ES256", map[string]any{"typ": "application/DPoP+jwt"}, map[string]any{"htu": "HTTPS://MCP.example.com:443/mcp?q#f"}, nil))
	f.Add(craft(f, fk.ed, "EdDSA", map[string]any{"kid": "x"}, map[string]any{"iat": float64(testNow.Unix()) - 0.5}, nil))
	f.Add(craft(f, fk.ec, "none", nil, nil, nil))
	f.Add(craft(f, fk.ec, "ES256", map[string]any{"alg": "none"}, nil, nil))
	f.Add(craft(f, []byte("0123456789abcdef0123456789abcdef"), "HS256", map[string]any{"jwk": map[string]any{"kty": "oct", "k": "AAAA"}}, nil, nil))
	f.Add(craft(f, fk.ec, "ES256", map[string]any{"jwk": jwkOf(f, fk.ec, true)}, nil, nil))
	f.Add(craft(f, fk.ec, "ES256", nil, map[string]any{"jti": del, "ath": 1}, nil))
	f.Add(craft(f, fk.ec, "ES256", nil, nil, stranger)) // signed by another key
	f.Add("eyJhbGciOiJFUzI1NiJ9.e30.AAAA")
	f.Add("")
	f.Add("..")

	f.Fuzz(func(t *testing.T, value string) {
		v := newTestVerifier(t, Config{}) // a fresh replay cache: seeds pass every time
		req := testRequest()
		p, err := v.Verify(context.Background(), []string{value}, req)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err %v (%T) is not an *Error", err, err)
			}
			if e.Code != CodeInvalidProof && e.Code != CodeUseNonce || !allReasons[e.Reason] {
				t.Fatalf("unexpected error %q", err)
			}
			if e.Error() != "dpop: "+e.Code+": "+e.Reason {
				t.Fatalf("message %q is not code and reason", e.Error())
			}
			return
		}
		key, ok := signers[p.Thumbprint]
		if !ok {
			t.Fatalf("accepted a proof by an unknown key %s", p.Thumbprint)
		}
		checkAcceptedWithJWX(t, value, key, p, req)
	})
}

// fuzzKeySet is the keys of testdata/fuzzkeys.pem.
type fuzzKeySet struct {
	ec  *ecdsa.PrivateKey
	ed  ed25519.PrivateKey
	rsa *rsa.PrivateKey
}

func fuzzKeys(tb testing.TB) fuzzKeySet {
	tb.Helper()
	rest, err := os.ReadFile("testdata/fuzzkeys.pem")
	if err != nil {
		tb.Fatal(err)
	}
	var ks fuzzKeySet
	for {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			tb.Fatal(err)
		}
		switch k := key.(type) {
		case *ecdsa.PrivateKey:
			ks.ec = k
		case ed25519.PrivateKey:
			ks.ed = k
		case *rsa.PrivateKey:
			ks.rsa = k
		}
	}
	if ks.ec == nil || ks.ed == nil || ks.rsa == nil {
		tb.Fatal("testdata/fuzzkeys.pem lacks a key")
	}
	return ks
}

// checkAcceptedWithJWX re-verifies an accepted proof with jwx and plain
// encoding/json, independently of the package's own parsing.
func checkAcceptedWithJWX(t *testing.T, value string, key any, p Proof, req Request) {
	t.Helper()
	msg, err := jws.ParseString(value)
	if err != nil || len(msg.Signatures()) != 1 {
		t.Fatalf("accepted, but jwx cannot parse it: %v", err)
	}
	hdr := msg.Signatures()[0].ProtectedHeaders()
	alg := hdr.Algorithm()
	if alg != jwa.ES256 && alg != jwa.EdDSA && alg != jwa.PS256 {
		t.Fatalf("accepted alg %s, not in the allow-list", alg)
	}
	if !isDPoPType(hdr.Type()) {
		t.Fatalf("accepted typ %q", hdr.Type())
	}
	pub, err := jwk.PublicRawKeyOf(key)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := jws.Verify([]byte(value), jws.WithKey(alg, pub))
	if err != nil {
		t.Fatalf("accepted, but jwx refuses the signature: %v", err)
	}
	// Member names are matched exactly, as the package does (encoding/json
	// would also fill a struct field from "HTM").
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatalf("accepted payload does not decode: %v", err)
	}
	if c["htm"] != req.Method || c["ath"] != athOf(req.AccessToken) || c["jti"] != p.JTI {
		t.Fatalf("accepted claims %v do not match the request", c)
	}
	iat, ok := c["iat"].(float64)
	if !ok || iat < float64(testNow.Add(-DefaultMaxAge).Unix()) || iat > float64(testNow.Add(DefaultLeeway).Unix()) {
		t.Fatalf("accepted iat %v outside the window", c["iat"])
	}
	// htu, checked with net/url rather than the package's normaliser.
	htu, _ := c["htu"].(string)
	u, err := url.Parse(htu)
	if err != nil || !strings.EqualFold(u.Scheme, "https") || !strings.EqualFold(u.Hostname(), "mcp.example.com") ||
		(u.Port() != "" && u.Port() != "443") || u.User != nil || path.Clean(u.Path) != "/mcp" {
		t.Fatalf("accepted htu %q is not %s", htu, req.URL)
	}
}
