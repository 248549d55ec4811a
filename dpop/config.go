package dpop

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Defaults applied by [New] to zero-valued fields.
const (
	// DefaultMaxAge is how old a proof's iat may be. RFC 9449 §11.1
	// suggests a short window: a proof is made for one request and sent
	// at once, so a minute covers a slow client.
	DefaultMaxAge = 60 * time.Second
	// DefaultLeeway is how far in the future iat may be, for client clocks
	// that run ahead.
	DefaultLeeway = 5 * time.Second
)

// Config is how proofs are checked; zero values are defaults.
type Config struct {
	// Algorithms are the JWS algorithms a proof may be signed with:
	// ES256, ES384, ES512, EdDSA (Ed25519), PS256, PS384, PS512, RS256,
	// RS384, RS512. Default ES256, EdDSA and PS256. "none" and the HMAC
	// algorithms are refused even if listed: a proof is signed with a
	// private key.
	Algorithms []string
	// MaxAge is how old a proof's iat may be. Default DefaultMaxAge.
	MaxAge time.Duration
	// Leeway is how far in the future a proof's iat may be; pass the
	// gateway's clock leeway. Default DefaultLeeway. It also lets a nonce
	// issued by a node whose clock runs ahead be accepted.
	Leeway time.Duration
	// Nonces, when set, turns server nonces on (RFC 9449 §9): every proof
	// must then carry a current nonce from this source, else Verify fails
	// with use_dpop_nonce. Nil: nonces are neither required nor checked.
	Nonces *NonceSource
	// Replay records the jti of every accepted proof. Required.
	Replay ReplayCache
	// Now is the clock. Default time.Now; tests replace it.
	Now func() time.Time
}

// Verifier checks DPoP proofs. It is safe for concurrent use.
type Verifier struct {
	algs   map[string]algSpec
	maxAge time.Duration
	leeway time.Duration
	nonces *NonceSource
	replay ReplayCache
	now    func() time.Time
}

// New checks cfg, applies its defaults and returns a Verifier. An error
// names the field at fault. New does no I/O.
func New(cfg Config) (*Verifier, error) {
	v := &Verifier{
		algs:   make(map[string]algSpec),
		maxAge: cfg.MaxAge,
		leeway: cfg.Leeway,
		nonces: cfg.Nonces,
		replay: cfg.Replay,
		now:    cfg.Now,
	}
	algs := cfg.Algorithms
	if len(algs) == 0 {
		algs = defaultAlgs
	}
	for _, a := range algs {
		if strings.EqualFold(a, "none") || strings.HasPrefix(strings.ToUpper(a), "HS") {
			return nil, fmt.Errorf("algorithms: %q is not allowed: DPoP proofs are signed with a private key", a)
		}
		spec, ok := supportedAlgs[a]
		if !ok {
			return nil, fmt.Errorf("algorithms: %q is not supported (supported: ES256 ES384 ES512 EdDSA PS256 PS384 PS512 RS256 RS384 RS512)", a)
		}
		v.algs[a] = spec
	}
	switch {
	case v.maxAge < 0:
		return nil, errors.New("max_age: must not be negative")
	case v.maxAge == 0:
		v.maxAge = DefaultMaxAge
	}
	switch {
	case v.leeway < 0:
		return nil, errors.New("leeway: must not be negative")
	case v.leeway == 0:
		v.leeway = DefaultLeeway
	}
	if v.nonces != nil && len(v.nonces.key) < minNonceKeyLen {
		return nil, fmt.Errorf("nonces: the key must be at least %d bytes", minNonceKeyLen)
	}
	if v.replay == nil {
		return nil, errors.New("replay: a replay cache is required: without one a captured proof can be replayed")
	}
	if v.now == nil {
		v.now = time.Now
	}
	return v, nil
}
