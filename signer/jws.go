package signer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
)

// compactSigner signs compact JWS messages with one key and a fixed
// protected header, using crypto/* directly. jws.Sign would convert the
// jwk.Key to a crypto key on every call, and for RSA that fresh key is
// validated and precomputed again each time (about a tenth of an RS256
// signature); here that happens once, in newCompactSigner.
type compactSigner struct {
	alg jwa.SignatureAlgorithm
	// prefix is the encoded protected header and the dot after it: the
	// first part of every signing input.
	prefix string
	rsa    *rsa.PrivateKey
	ec     *ecdsa.PrivateKey
	ed     ed25519.PrivateKey
}

// newCompactSigner extracts the raw private key of k (already checked by
// prepareKey to suit alg) and encodes the protected header: alg, kid and
// typ "at+jwt" (RFC 9068 §2.1), in that (sorted) order.
func newCompactSigner(k jwk.Key, alg jwa.SignatureAlgorithm) (*compactSigner, error) {
	var raw any
	if err := k.Raw(&raw); err != nil {
		return nil, fmt.Errorf("unusable key: %v", err)
	}
	s := &compactSigner{alg: alg}
	switch r := raw.(type) {
	case *rsa.PrivateKey:
		s.rsa = r
		// Precompute now, so that no signature pays for it.
		s.rsa.Precompute()
		if err := s.rsa.Validate(); err != nil {
			return nil, fmt.Errorf("unusable key: %v", err)
		}
	case *ecdsa.PrivateKey:
		s.ec = r
	case ed25519.PrivateKey:
		s.ed = r
	default:
		return nil, fmt.Errorf("unsupported key type %T", raw)
	}
	header, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{alg.String(), k.KeyID(), "at+jwt"})
	if err != nil {
		return nil, err
	}
	s.prefix = base64.RawURLEncoding.EncodeToString(header) + "."
	return s, nil
}

// sign returns the compact JWS of payload: header.payload.signature.
func (s *compactSigner) sign(payload []byte) (string, error) {
	enc := base64.RawURLEncoding
	// One buffer for the whole JWS; the signature is at most 512 bytes
	// (RSA 4096) before encoding.
	buf := make([]byte, 0, len(s.prefix)+enc.EncodedLen(len(payload))+1+enc.EncodedLen(512))
	buf = append(buf, s.prefix...)
	buf = enc.AppendEncode(buf, payload)
	input := buf
	var sig []byte
	switch {
	case s.rsa != nil:
		digest := sha256.Sum256(input)
		var err error
		if sig, err = rsa.SignPKCS1v15(rand.Reader, s.rsa, crypto.SHA256, digest[:]); err != nil {
			return "", err
		}
	case s.ec != nil:
		digest := sha256.Sum256(input)
		r, ss, err := ecdsa.Sign(rand.Reader, s.ec, digest[:])
		if err != nil {
			return "", err
		}
		// RFC 7518 §3.4: R and S as fixed-size big-endian integers,
		// concatenated (not ASN.1).
		const size = 32 // P-256, the only curve prepareKey accepts
		sig = make([]byte, 2*size)
		r.FillBytes(sig[:size])
		ss.FillBytes(sig[size:])
	case s.ed != nil:
		sig = ed25519.Sign(s.ed, input)
	default:
		return "", errors.New("no signing key")
	}
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig)
	return string(buf), nil
}
