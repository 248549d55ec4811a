// Package jwssig checks JWS signatures (RFC 7518 §3, RFC 8037 §3.1) with
// the standard library, for the packages that choose the algorithm and
// the key themselves: introspect (a key of the AS's key set) and dpop (the
// key a proof carries). Keeping the signature math in one place keeps the
// two from drifting apart.
package jwssig

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"math/big"
)

// Digest hashes the signing input with h (SHA-256, -384 or -512); nil for
// any other h, such as 0 for EdDSA, which hashes the input itself.
func Digest(h crypto.Hash, input []byte) []byte {
	switch h {
	case crypto.SHA256:
		d := sha256.Sum256(input)
		return d[:]
	case crypto.SHA384:
		d := sha512.Sum384(input)
		return d[:]
	case crypto.SHA512:
		d := sha512.Sum512(input)
		return d[:]
	}
	return nil
}

// Verify reports whether sig is a valid signature by key over input, whose
// Digest(hash, input) is digest (passed in so that a caller trying several
// keys hashes once):
//
//   - *rsa.PublicKey: RSASSA-PKCS1-v1_5, or RSASSA-PSS when pss, with the
//     salt as long as the hash (RFC 7518 §3.5);
//   - *ecdsa.PublicKey: R and S as fixed-length big-endian integers,
//     concatenated, not ASN.1 (RFC 7518 §3.4); the caller checks that the
//     curve is the algorithm's;
//   - ed25519.PublicKey: EdDSA over input (RFC 8037 §3.1).
//
// Any other key, or a nil one, verifies nothing.
func Verify(key crypto.PublicKey, hash crypto.Hash, pss bool, input, digest, sig []byte) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k == nil || hash == 0 {
			return false
		}
		if pss {
			opts := rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: hash}
			return rsa.VerifyPSS(k, hash, digest, sig, &opts) == nil
		}
		return rsa.VerifyPKCS1v15(k, hash, digest, sig) == nil
	case *ecdsa.PublicKey:
		if k == nil || k.Curve == nil || digest == nil {
			return false
		}
		size := (k.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			return false
		}
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		return ecdsa.Verify(k, digest, r, s)
	case ed25519.PublicKey:
		return len(k) == ed25519.PublicKeySize && ed25519.Verify(k, input, sig)
	}
	return false
}
