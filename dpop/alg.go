package dpop

import (
	"crypto"

	"github.com/phantomgate/caddy-phantom-token/internal/jwssig"
)

// algSpec is one supported JWS algorithm (RFC 7518 §3, RFC 8037 §3.1):
// the key type and curve it needs and how its signature is checked.
type algSpec struct {
	kty  string      // "EC", "OKP" or "RSA"
	crv  string      // EC and OKP: the one curve paired with the alg
	size int         // EC: bytes of one coordinate and of R and of S
	hash crypto.Hash // over the signing input; 0 for EdDSA, which hashes itself
	pss  bool        // RSASSA-PSS rather than RSASSA-PKCS1-v1_5
}

// supportedAlgs is every algorithm Config.Algorithms may name: asymmetric
// only (RFC 9449 §4.3 point 4). "none" would accept anything, and an HMAC
// would need a secret shared with the client, which a proof of possession
// of a private key cannot use, so neither is here. Ed448 is absent because
// the standard library does not implement it.
var supportedAlgs = map[string]algSpec{
	"ES256": {kty: "EC", crv: "P-256", size: 32, hash: crypto.SHA256},
	"ES384": {kty: "EC", crv: "P-384", size: 48, hash: crypto.SHA384},
	"ES512": {kty: "EC", crv: "P-521", size: 66, hash: crypto.SHA512},
	"EdDSA": {kty: "OKP", crv: "Ed25519"},
	"PS256": {kty: "RSA", hash: crypto.SHA256, pss: true},
	"PS384": {kty: "RSA", hash: crypto.SHA384, pss: true},
	"PS512": {kty: "RSA", hash: crypto.SHA512, pss: true},
	"RS256": {kty: "RSA", hash: crypto.SHA256},
	"RS384": {kty: "RSA", hash: crypto.SHA384},
	"RS512": {kty: "RSA", hash: crypto.SHA512},
}

// defaultAlgs is Config.Algorithms when empty: one algorithm of each key
// type, the ones DPoP clients commonly use (ES256 is the only one every
// client library supports).
var defaultAlgs = []string{"ES256", "EdDSA", "PS256"}

// verify reports whether sig is a valid signature by key over input.
// The key was built for this spec by parseJWK, so its type and curve
// match.
func (spec algSpec) verify(key *publicKey, input, sig []byte) bool {
	var k crypto.PublicKey
	switch spec.kty {
	case "EC":
		if key.ec == nil {
			return false
		}
		k = key.ec
	case "OKP":
		if key.ed == nil {
			return false
		}
		k = key.ed
	case "RSA":
		if key.rsa == nil {
			return false
		}
		k = key.rsa
	default:
		return false
	}
	return jwssig.Verify(k, spec.hash, spec.pss, input, jwssig.Digest(spec.hash, input), sig)
}
