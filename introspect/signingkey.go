package introspect

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
)

// minRSABits is the smallest RSA modulus accepted for signing (RFC 7518
// §3.3 requires 2048 bits or more).
const minRSABits = 2048

// KeyAlgorithm returns the JWS algorithm a private key signs with: the
// key's own "alg" when set (it must be an asymmetric algorithm of the
// verifier's allow-list that suits the key), otherwise RS256 for RSA, ES256,
// ES384 or ES512 for P-256, P-384 or P-521, and EdDSA for Ed25519. Public
// keys, symmetric keys, RSA keys under 2048 bits and other curves are
// refused. The error never contains key material.
func KeyAlgorithm(key jwk.Key) (jwa.SignatureAlgorithm, error) {
	alg, _, err := signingKey(key)
	return alg, err
}

// signingKey validates key as a private signing key and returns its
// algorithm and raw crypto key.
func signingKey(key jwk.Key) (jwa.SignatureAlgorithm, any, error) {
	if key == nil {
		return "", nil, errors.New("no key")
	}
	var raw any
	if err := key.Raw(&raw); err != nil {
		return "", nil, errors.New("key cannot be used")
	}
	var inferred jwa.SignatureAlgorithm
	var kty jwa.KeyType
	switch k := raw.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < minRSABits {
			return "", nil, fmt.Errorf("rsa key has %d bits, want at least %d", k.N.BitLen(), minRSABits)
		}
		inferred, kty = jwa.RS256, jwa.RSA
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			inferred = jwa.ES256
		case elliptic.P384():
			inferred = jwa.ES384
		case elliptic.P521():
			inferred = jwa.ES512
		default:
			return "", nil, errors.New("ec key curve is not supported (want P-256, P-384 or P-521)")
		}
		kty = jwa.EC
	case ed25519.PrivateKey:
		inferred, kty = jwa.EdDSA, jwa.OKP
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		return "", nil, errors.New("not a private key")
	case []byte:
		return "", nil, errors.New("symmetric keys are not supported")
	default:
		return "", nil, errors.New("key type is not supported (want RSA, EC or Ed25519)")
	}

	set := key.Algorithm().String()
	if set == "" {
		return inferred, raw, nil
	}
	spec, ok := allowedAlgs[set]
	if !ok || spec.kty != kty || (kty == jwa.EC && spec.alg != inferred) {
		if len(set) > 16 {
			return "", nil, errors.New("key alg does not suit the key")
		}
		return "", nil, fmt.Errorf("key alg %q does not suit the key", set)
	}
	return spec.alg, raw, nil
}
