package dpop

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
)

// publicKey is the proof's embedded jwk, checked and converted into the
// raw key the crypto packages take, with its RFC 7638 thumbprint.
type publicKey struct {
	ec         *ecdsa.PublicKey
	ed         ed25519.PublicKey
	rsa        *rsa.PublicKey
	thumbprint string
}

// privateMembers are the jwk members that carry private or symmetric key
// material (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2). RFC 9449 §4.3
// point 6: a proof whose jwk holds any of them is refused, even though
// the public part would do, because a client that leaks its private key
// in every request has no proof of possession to offer.
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// RSA modulus bounds. 2048 bits is the floor of NIST SP 800-131A; the
// ceiling keeps the cost of checking a signature bounded (no client needs
// more).
const (
	minRSABits = 2048
	maxRSABits = 8192
)

// parseJWK checks the header's "jwk" against the algorithm alg (whose spec
// is spec) and converts it. It returns the reason for refusing it, or "".
func parseJWK(raw json.RawMessage, alg string, spec algSpec) (*publicKey, string) {
	jwk, ok := parseObject(raw)
	if !ok {
		return nil, reasonJWKMissing
	}
	for _, m := range privateMembers {
		if jwk.has(m) {
			return nil, reasonJWKPrivate
		}
	}
	// RFC 7517 §4.1: kty is case-sensitive.
	if kty, _, _ := jwk.str("kty"); kty != spec.kty {
		return nil, reasonJWKType
	}
	if reason := checkUsage(jwk, alg); reason != "" {
		return nil, reason
	}
	switch spec.kty {
	case "EC":
		return parseEC(jwk, spec)
	case "OKP":
		return parseOKP(jwk, spec)
	case "RSA":
		return parseRSA(jwk)
	}
	return nil, reasonJWKType
}

// checkUsage refuses a key its owner restricted to something else (RFC
// 7517 §4.2 to §4.4): another "alg", a "use" other than "sig", "key_ops"
// without "verify".
func checkUsage(jwk object, alg string) string {
	if a, present, ok := jwk.str("alg"); present && (!ok || a != alg) {
		return reasonJWKUsage
	}
	if use, present, ok := jwk.str("use"); present && (!ok || use != "sig") {
		return reasonJWKUsage
	}
	if raw, present := jwk["key_ops"]; present {
		var ops []string
		if err := json.Unmarshal(raw, &ops); err != nil {
			return reasonJWKUsage
		}
		for _, op := range ops {
			if op == "verify" {
				return ""
			}
		}
		return reasonJWKUsage
	}
	return ""
}

// parseEC converts an EC key on the alg's curve. RFC 7518 §6.2.1.2: each
// coordinate is exactly the curve's size, so it has one encoding.
func parseEC(jwk object, spec algSpec) (*publicKey, string) {
	if crv, _, _ := jwk.str("crv"); crv != spec.crv {
		return nil, reasonJWKType
	}
	x64, x, okX := jwk.base64("x")
	y64, y, okY := jwk.base64("y")
	if !okX || !okY || len(x) != spec.size || len(y) != spec.size {
		return nil, reasonJWKInvalid
	}
	point := make([]byte, 0, 1+2*spec.size)
	point = append(append(append(point, 4), x...), y...)
	// ParseUncompressedPublicKey checks that the point is on the curve: an
	// off-curve point must never reach the ECDSA arithmetic.
	ec, err := ecdsa.ParseUncompressedPublicKey(curves[spec.crv], point)
	if err != nil {
		return nil, reasonJWKInvalid
	}
	// RFC 7638 §3.2: the required members in lexicographic order, no
	// white space. Strict base64 decoding and the fixed sizes make the
	// members as received the canonical encodings.
	tp := `{"crv":"` + spec.crv + `","kty":"EC","x":"` + x64 + `","y":"` + y64 + `"}`
	return &publicKey{ec: ec, thumbprint: thumbprint(tp)}, ""
}

// curves maps the EC "crv" names of RFC 7518 §6.2.1.1 to their curves.
var curves = map[string]elliptic.Curve{
	"P-256": elliptic.P256(),
	"P-384": elliptic.P384(),
	"P-521": elliptic.P521(),
}

// parseOKP converts an Ed25519 key (RFC 8037 §2).
func parseOKP(jwk object, spec algSpec) (*publicKey, string) {
	if crv, _, _ := jwk.str("crv"); crv != spec.crv {
		return nil, reasonJWKType
	}
	x64, x, ok := jwk.base64("x")
	if !ok || len(x) != ed25519.PublicKeySize {
		return nil, reasonJWKInvalid
	}
	tp := `{"crv":"` + spec.crv + `","kty":"OKP","x":"` + x64 + `"}`
	return &publicKey{ed: ed25519.PublicKey(x), thumbprint: thumbprint(tp)}, ""
}

// parseRSA converts an RSA key of an acceptable size. RFC 7518 §6.3.1: n
// and e use the minimum number of octets (no leading zero), so they have
// one encoding.
func parseRSA(jwk object) (*publicKey, string) {
	n64, n, okN := jwk.base64("n")
	e64, e, okE := jwk.base64("e")
	if !okN || !okE || n[0] == 0 || e[0] == 0 || len(e) > 4 {
		return nil, reasonJWKInvalid
	}
	var exp int64
	for _, b := range e {
		exp = exp<<8 | int64(b)
	}
	// An even or tiny exponent is no RSA key; above 2^31-1 the standard
	// library refuses it anyway.
	if exp < 3 || exp&1 == 0 || exp > 1<<31-1 {
		return nil, reasonJWKInvalid
	}
	mod := new(big.Int).SetBytes(n)
	if bits := mod.BitLen(); bits < minRSABits || bits > maxRSABits {
		return nil, reasonRSASize
	}
	tp := `{"e":"` + e64 + `","kty":"RSA","n":"` + n64 + `"}`
	return &publicKey{rsa: &rsa.PublicKey{N: mod, E: int(exp)}, thumbprint: thumbprint(tp)}, ""
}

// base64 returns member name, a string of unpadded base64url, and its
// decoding. The alphabet is checked first because the decoder skips '\r'
// and '\n', and the string as received goes into the thumbprint.
func (o object) base64(name string) (string, []byte, bool) {
	s, _, ok := o.str(name)
	if !ok || !isBase64URL(s) {
		return "", nil, false
	}
	b, err := b64.DecodeString(s)
	if err != nil {
		return "", nil, false
	}
	return s, b, true
}

// thumbprint returns base64url(SHA-256(canonical)), the RFC 7638 JWK
// thumbprint that RFC 9449 §6.1 puts in "cnf.jkt".
func thumbprint(canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
