package jwssig

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"math/big"
	"testing"
)

// Each key type verifies its own signature and nothing else: a flipped
// byte, an ASN.1-encoded or truncated ES256 signature, a nil or unknown
// key all fail.
func TestVerify(t *testing.T) {
	input := []byte("header.payload")
	d256 := Digest(crypto.SHA256, input)

	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	r, s, _ := ecdsa.Sign(rand.Reader, ec, d256)
	ecSig := append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	asn1Sig, _ := ecdsa.SignASN1(rand.Reader, ec, d256)

	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	edSig := ed25519.Sign(edPriv, input)

	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	pkcs, _ := rsa.SignPKCS1v15(rand.Reader, rk, crypto.SHA256, d256)
	pss, _ := rsa.SignPSS(rand.Reader, rk, crypto.SHA256, d256, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})

	flip := func(b []byte) []byte { c := append([]byte(nil), b...); c[len(c)/2] ^= 1; return c }
	for _, c := range []struct {
		name string
		key  crypto.PublicKey
		hash crypto.Hash
		pss  bool
		sig  []byte
		want bool
	}{
		{"ES256", &ec.PublicKey, crypto.SHA256, false, ecSig, true},
		{"ES256 flipped", &ec.PublicKey, crypto.SHA256, false, flip(ecSig), false},
		{"ES256 ASN.1", &ec.PublicKey, crypto.SHA256, false, asn1Sig, false},
		{"ES256 short", &ec.PublicKey, crypto.SHA256, false, ecSig[:63], false},
		{"EdDSA", edPub, 0, false, edSig, true},
		{"EdDSA flipped", edPub, 0, false, flip(edSig), false},
		{"RS256", &rk.PublicKey, crypto.SHA256, false, pkcs, true},
		{"RS256 as PS256", &rk.PublicKey, crypto.SHA256, true, pkcs, false},
		{"PS256", &rk.PublicKey, crypto.SHA256, true, pss, true},
		{"PS256 flipped", &rk.PublicKey, crypto.SHA256, true, flip(pss), false},
		{"nil RSA key", (*rsa.PublicKey)(nil), crypto.SHA256, false, pkcs, false},
		{"unknown key type", big.NewInt(1), crypto.SHA256, false, pkcs, false},
	} {
		digest := Digest(c.hash, input)
		if got := Verify(c.key, c.hash, c.pss, input, digest, c.sig); got != c.want {
			t.Errorf("%s: Verify = %v, want %v", c.name, got, c.want)
		}
	}
	if Digest(0, input) != nil {
		t.Error("Digest(0) is not nil")
	}
}
