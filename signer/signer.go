// Package signer issues the RFC 9068 access-token JWTs the gateway forwards
// upstream when the authorization server only answers RFC 7662 JSON (Hydra,
// most servers): the gateway signs a JWT from the introspection result with
// its own key and publishes the public keys as a JWKS. It imports no Caddy.
package signer

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
)

// DefaultLifetime bounds a signed JWT when Config.Lifetime is zero.
const DefaultLifetime = 5 * time.Minute

// ErrExpired is returned by [Signer.Sign] when the token's exp has been
// reached (to the second the JWT can express): the token is expired, which
// callers must treat as an inactive token, not as a failure.
var ErrExpired = errors.New("the token has already expired")

// Config configures a Signer.
type Config struct {
	// Issuer is the "iss" of every JWT. Required.
	Issuer string
	// Key is the private signing key: RSA (RS256), EC P-256 (ES256) or
	// Ed25519 (EdDSA). Required. A missing "kid" is set to the key's
	// RFC 7638 thumbprint.
	Key jwk.Key
	// Previous is an optional earlier key, published in the JWKS only, so
	// that JWTs it signed keep verifying upstream during a key rotation.
	Previous jwk.Key
	// Lifetime bounds each JWT; it never outlives the opaque token either.
	// Default: DefaultLifetime.
	Lifetime time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Signer signs access-token JWTs and serves the matching JWKS.
type Signer struct {
	issuer   string
	key      jwk.Key
	alg      jwa.SignatureAlgorithm
	jws      *compactSigner
	lifetime time.Duration
	now      func() time.Time
	jwks     []byte
}

// Claims is what the JWT says about the token it stands for.
type Claims struct {
	Subject   string    // "sub"; the client id when empty (client credentials)
	ClientID  string    // "client_id"
	Scope     string    // "scope", space-separated
	Audience  []string  // "aud": the resource the token is for
	ExpiresAt time.Time // the opaque token's expiry; zero if it has none
	// JKT and X5TS256 are the opaque token's binding ("cnf"."jkt", RFC
	// 9449; "cnf"."x5t#S256", RFC 8705), copied into the JWT's "cnf" so
	// the upstream sees what the gateway enforced; empty when unbound.
	JKT, X5TS256 string
}

// confirmation is the "cnf" claim (RFC 7800).
type confirmation struct {
	JKT     string `json:"jkt,omitempty"`
	X5TS256 string `json:"x5t#S256,omitempty"`
}

// New validates cfg and precomputes the JWT header and the JWKS. It does no
// I/O: keys are loaded by the caller.
func New(cfg Config) (*Signer, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("issuer is required")
	}
	if cfg.Key == nil {
		return nil, errors.New("key is required")
	}
	if cfg.Lifetime < 0 {
		return nil, errors.New("lifetime must not be negative")
	}
	s := &Signer{issuer: cfg.Issuer, lifetime: cfg.Lifetime, now: cfg.Now}
	if s.lifetime == 0 {
		s.lifetime = DefaultLifetime
	}
	if s.now == nil {
		s.now = time.Now
	}
	var err error
	if s.key, s.alg, err = prepareKey(cfg.Key, true); err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	set := jwk.NewSet()
	if err := addPublic(set, s.key, s.alg); err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	if cfg.Previous != nil {
		prev, prevAlg, err := prepareKey(cfg.Previous, false)
		if err != nil {
			return nil, fmt.Errorf("previous key: %w", err)
		}
		if prev.KeyID() == s.key.KeyID() {
			return nil, errors.New("previous key: has the same kid as the current key")
		}
		if err := addPublic(set, prev, prevAlg); err != nil {
			return nil, fmt.Errorf("previous key: %w", err)
		}
	}
	if s.jwks, err = json.Marshal(set); err != nil {
		return nil, fmt.Errorf("encoding the JWKS: %w", err)
	}
	if s.jws, err = newCompactSigner(s.key, s.alg); err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	return s, nil
}

// prepareKey checks the key type, derives the algorithm, and sets a kid.
// The key is cloned so the caller's copy is never modified.
func prepareKey(k jwk.Key, mustBePrivate bool) (jwk.Key, jwa.SignatureAlgorithm, error) {
	var raw any
	if err := k.Raw(&raw); err != nil {
		return nil, "", fmt.Errorf("unusable key: %v", err)
	}
	var alg jwa.SignatureAlgorithm
	private := true
	switch r := raw.(type) {
	case *rsa.PrivateKey:
		if r.N.BitLen() < 2048 {
			return nil, "", errors.New("RSA keys must have at least 2048 bits")
		}
		alg = jwa.RS256
	case *ecdsa.PrivateKey:
		if r.Curve != elliptic.P256() {
			return nil, "", errors.New("EC keys must use curve P-256 (ES256)")
		}
		alg = jwa.ES256
	case ed25519.PrivateKey:
		alg = jwa.EdDSA
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		private = false
		switch raw.(type) {
		case *rsa.PublicKey:
			alg = jwa.RS256
		case *ecdsa.PublicKey:
			alg = jwa.ES256
		default:
			alg = jwa.EdDSA
		}
	default:
		return nil, "", fmt.Errorf("unsupported key type %T: use RSA (RS256), EC P-256 (ES256) or Ed25519 (EdDSA)", raw)
	}
	if mustBePrivate && !private {
		return nil, "", errors.New("a private key is required to sign")
	}
	clone, err := jwk.FromRaw(raw)
	if err != nil {
		return nil, "", fmt.Errorf("unusable key: %v", err)
	}
	kid := k.KeyID()
	if kid == "" {
		if err := jwk.AssignKeyID(clone); err != nil {
			return nil, "", fmt.Errorf("computing the key id: %v", err)
		}
	} else {
		_ = clone.Set(jwk.KeyIDKey, kid)
	}
	return clone, alg, nil
}

func addPublic(set jwk.Set, k jwk.Key, alg jwa.SignatureAlgorithm) error {
	pub, err := k.PublicKey()
	if err != nil {
		return err
	}
	_ = pub.Set(jwk.AlgorithmKey, alg)
	_ = pub.Set(jwk.KeyUsageKey, jwk.ForSignature)
	return set.AddKey(pub)
}

// GenerateEphemeralKey makes a P-256 key for demos. JWTs it signs stop
// verifying when the process restarts, and every instance has its own.
func GenerateEphemeralKey() (jwk.Key, error) {
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return jwk.FromRaw(raw)
}

// payload is the RFC 9068 claim set, in a fixed order.
type payload struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	ClientID string `json:"client_id,omitempty"`
	Audience any    `json:"aud"`
	Scope    string `json:"scope,omitempty"`
	IssuedAt int64  `json:"iat"`
	Expiry   int64  `json:"exp"`
	JWTID    string `json:"jti"`
	// Cnf is a pointer so an unbound token's JWT has no "cnf" at all.
	Cnf *confirmation `json:"cnf,omitempty"`
}

// Sign issues a JWT for c, valid until the earlier of now+lifetime and
// the opaque token's expiry, and returns it with that expiry.
func (s *Signer) Sign(c Claims) (string, time.Time, error) {
	now := s.now()
	exp := now.Add(s.lifetime)
	if !c.ExpiresAt.IsZero() && c.ExpiresAt.Before(exp) {
		exp = c.ExpiresAt
	}
	if time.Unix(exp.Unix(), 0).Compare(now) <= 0 {
		// exp is whole seconds in the JWT: a token in the last second of
		// its life would get a JWT that is already expired.
		return "", time.Time{}, ErrExpired
	}
	sub := c.Subject
	if sub == "" {
		sub = c.ClientID
	}
	if sub == "" {
		return "", time.Time{}, errors.New("the token has neither sub nor client_id")
	}
	if len(c.Audience) == 0 {
		return "", time.Time{}, errors.New("an audience is required")
	}
	var aud any = c.Audience
	if len(c.Audience) == 1 {
		aud = c.Audience[0]
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", time.Time{}, err
	}
	p := payload{
		Issuer: s.issuer, Subject: sub, ClientID: c.ClientID, Audience: aud, Scope: c.Scope,
		IssuedAt: now.Unix(), Expiry: exp.Unix(), JWTID: base64.RawURLEncoding.EncodeToString(id[:]),
	}
	if c.JKT != "" || c.X5TS256 != "" {
		p.Cnf = &confirmation{JKT: c.JKT, X5TS256: c.X5TS256}
	}
	body, err := json.Marshal(p)
	if err != nil {
		return "", time.Time{}, err
	}
	signed, err := s.jws.sign(body)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("signing: %v", err)
	}
	// exp is whole seconds in the JWT; report what the JWT says.
	return signed, time.Unix(exp.Unix(), 0), nil
}

// KeyID returns the kid of the current signing key; a cache of signed
// JWTs must be keyed by it, so a new key never serves JWTs of an old one.
func (s *Signer) KeyID() string { return s.key.KeyID() }

// JWKS returns the public key set (current key first, then the previous
// one) as JSON.
func (s *Signer) JWKS() []byte { return s.jwks }
