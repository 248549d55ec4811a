package introspect

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/phantomgate/caddy-phantom-token/internal/jwssig"
)

// keySpec is one allowed JWS algorithm: the key type it needs and how its
// signature is checked (RFC 7518 §3).
type keySpec struct {
	alg   jwa.SignatureAlgorithm
	kty   jwa.KeyType
	hash  crypto.Hash    // over the signing input; 0 for EdDSA, which hashes itself
	pss   bool           // RSASSA-PSS rather than RSASSA-PKCS1-v1_5
	curve elliptic.Curve // ES*: the one curve RFC 7518 §3.4 pairs with the alg
}

// allowedAlgs is the allow-list of signature algorithms the verifier
// accepts: asymmetric only. "none" would accept anything, and HS* would let
// whoever knows a shared secret (or can present a public key as one) mint
// tokens, so neither is ever accepted, whatever the key set contains.
var allowedAlgs = map[string]keySpec{
	"RS256": {alg: jwa.RS256, kty: jwa.RSA, hash: crypto.SHA256},
	"RS384": {alg: jwa.RS384, kty: jwa.RSA, hash: crypto.SHA384},
	"RS512": {alg: jwa.RS512, kty: jwa.RSA, hash: crypto.SHA512},
	"PS256": {alg: jwa.PS256, kty: jwa.RSA, hash: crypto.SHA256, pss: true},
	"PS384": {alg: jwa.PS384, kty: jwa.RSA, hash: crypto.SHA384, pss: true},
	"PS512": {alg: jwa.PS512, kty: jwa.RSA, hash: crypto.SHA512, pss: true},
	"ES256": {alg: jwa.ES256, kty: jwa.EC, hash: crypto.SHA256, curve: elliptic.P256()},
	"ES384": {alg: jwa.ES384, kty: jwa.EC, hash: crypto.SHA384, curve: elliptic.P384()},
	"ES512": {alg: jwa.ES512, kty: jwa.EC, hash: crypto.SHA512, curve: elliptic.P521()},
	"EdDSA": {alg: jwa.EdDSA, kty: jwa.OKP},
}

// verifyKey is one usable key of the AS key set, converted once, when the
// set is fetched, into the raw public key the crypto packages take, so that
// verifying a JWT costs a hash and one signature check and nothing else.
// Keys that may not verify signatures ("use" other than "sig", "key_ops"
// without "verify") and keys of other types (oct, X25519) are dropped at
// conversion.
type verifyKey struct {
	kid string
	kty jwa.KeyType
	alg string // the key's "alg"; "" allows every algorithm of its type
	rsa *rsa.PublicKey
	ec  *ecdsa.PublicKey
	ed  ed25519.PublicKey
}

// keySet is an immutable, parsed AS key set.
type keySet struct {
	keys []verifyKey
}

// errJWKSDocument is the one error for a JWKS that does not parse; the
// parser's message could echo document content, which the AS controls.
var errJWKSDocument = errors.New("as jwks response is not a valid jwk set")

// parseKeySet parses a JWKS document and converts its usable keys.
func parseKeySet(body []byte) (*keySet, error) {
	set, err := jwk.Parse(body)
	if err != nil {
		return nil, errJWKSDocument
	}
	ks := &keySet{keys: make([]verifyKey, 0, set.Len())}
	for i := 0; i < set.Len(); i++ {
		k, ok := set.Key(i)
		if !ok {
			continue
		}
		if use := k.KeyUsage(); use != "" && use != string(jwk.ForSignature) {
			continue
		}
		if ops := k.KeyOps(); len(ops) > 0 && !containsOp(ops, jwk.KeyOpVerify) {
			continue
		}
		vk, ok := convertKey(k)
		if !ok {
			continue
		}
		ks.keys = append(ks.keys, vk)
	}
	return ks, nil
}

// convertKey extracts the raw public key of k (the public half, should an AS
// publish a private key by mistake). It reports false for key types no
// allowed algorithm uses.
func convertKey(k jwk.Key) (verifyKey, bool) {
	vk := verifyKey{kid: k.KeyID(), alg: k.Algorithm().String()}
	pub, err := k.PublicKey()
	if err != nil {
		return vk, false
	}
	var raw any
	if err := pub.Raw(&raw); err != nil {
		return vk, false
	}
	switch p := raw.(type) {
	case *rsa.PublicKey:
		vk.kty, vk.rsa = jwa.RSA, p
	case *ecdsa.PublicKey:
		vk.kty, vk.ec = jwa.EC, p
	case ed25519.PublicKey:
		if len(p) != ed25519.PublicKeySize {
			return vk, false
		}
		vk.kty, vk.ed = jwa.OKP, p
	default:
		return vk, false
	}
	return vk, true
}

func containsOp(ops jwk.KeyOperationList, op jwk.KeyOperation) bool {
	for _, o := range ops {
		if o == op {
			return true
		}
	}
	return false
}

// candidateKeys returns the keys of set that may verify a JWS with the given
// kid and algorithm: the right key type, not bound to another algorithm
// (usage and operations were checked at conversion). With a kid, keys
// carrying that kid are preferred; when none does, keys without a kid are
// tried (kid is only a hint when the set does not use kids). Without a kid,
// every suitable key is tried.
func candidateKeys(set *keySet, kid string, spec keySpec) []*verifyKey {
	if set == nil {
		return nil
	}
	var byKid, noKid []*verifyKey
	for i := range set.keys {
		k := &set.keys[i]
		if k.kty != spec.kty || (k.alg != "" && k.alg != spec.alg.String()) {
			continue
		}
		switch {
		case kid == "" || k.kid == kid:
			// Without a kid in the JWS, every suitable key is a candidate.
			byKid = append(byKid, k)
		case k.kid == "":
			noKid = append(noKid, k)
		}
	}
	if len(byKid) > 0 {
		return byKid
	}
	return noKid
}

// verify reports whether sig is a valid spec signature by k over input,
// whose hash is digest.
func (k *verifyKey) verify(spec keySpec, input, digest, sig []byte) bool {
	switch spec.kty {
	case jwa.RSA:
		return jwssig.Verify(k.rsa, spec.hash, spec.pss, input, digest, sig)
	case jwa.EC:
		if k.ec.Curve != spec.curve {
			return false
		}
		return jwssig.Verify(k.ec, spec.hash, false, input, digest, sig)
	case jwa.OKP:
		return jwssig.Verify(k.ed, 0, false, input, digest, sig)
	}
	return false
}
