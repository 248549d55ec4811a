package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
	"github.com/modelcontextprotocol/go-sdk/auth"
)

const (
	// leeway is the clock skew tolerated on "exp" and "nbf".
	leeway = 30 * time.Second
	// jwksMinRefresh bounds how often the JWKS is fetched: by the background
	// refresher, and when a token names a key ID the cached set lacks.
	jwksMinRefresh = time.Minute
	// jwksTimeout is the default timeout of a JWKS fetch.
	jwksTimeout = 10 * time.Second
)

// jwksRetry is how long a failed JWKS fetch blocks the next forced one; a
// variable so tests can shorten it.
var jwksRetry = 2 * time.Second

// allowedAlgs are the JWS algorithms a forwarded JWT may use: asymmetric
// only, so neither "none" nor a shared-secret (HS*) signature is accepted.
var allowedAlgs = map[jwa.SignatureAlgorithm]bool{
	jwa.RS256: true, jwa.RS384: true, jwa.RS512: true,
	jwa.PS256: true, jwa.PS384: true, jwa.PS512: true,
	jwa.ES256: true, jwa.ES384: true, jwa.ES512: true,
	jwa.EdDSA: true,
}

// errJWKSUnavailable means the JWKS could not be fetched: the token may be
// fine, the server cannot tell.
var errJWKSUnavailable = errors.New("jwks unavailable")

// verifier validates forwarded JWTs.
type verifier struct {
	cfg   Config
	cache *jwk.Cache

	mu          sync.Mutex
	lastRefresh time.Time // last forced JWKS fetch
}

// newVerifier registers the JWKS in a cache bound to ctx. Nothing is fetched
// until the first token arrives.
func newVerifier(ctx context.Context, cfg Config) (*verifier, error) {
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: jwksTimeout}
	}
	cache := jwk.NewCache(ctx)
	if err := cache.Register(cfg.JWKSURL, jwk.WithHTTPClient(client), jwk.WithMinRefreshInterval(jwksMinRefresh)); err != nil {
		return nil, fmt.Errorf("mcpserver: register JWKS %s: %w", cfg.JWKSURL, err)
	}
	return &verifier{cfg: cfg, cache: cache}, nil
}

// verify validates token and returns what it carries. Errors wrap
// auth.ErrInvalidToken, or errJWKSUnavailable; none contains the token.
func (v *verifier) verify(ctx context.Context, token string) (*auth.TokenInfo, error) {
	if strings.Count(token, ".") != 2 {
		return nil, invalid("not a compact JWS")
	}
	msg, err := jws.Parse([]byte(token))
	if err != nil || len(msg.Signatures()) != 1 {
		return nil, invalid("malformed JWS")
	}
	h := msg.Signatures()[0].ProtectedHeaders()
	if !allowedAlgs[h.Algorithm()] {
		return nil, invalid(fmt.Sprintf("algorithm %q not allowed", h.Algorithm()))
	}
	if typ := h.Type(); typ != "" && !isAccessTokenType(typ) {
		return nil, invalid(fmt.Sprintf("typ %q is not at+jwt", typ))
	}

	set, err := v.keys(ctx, h.KeyID())
	if err != nil {
		return nil, err
	}
	tok, err := jwt.Parse([]byte(token),
		jwt.WithKeySet(set, jws.WithInferAlgorithmFromKey(true)),
		jwt.WithValidate(true),
		jwt.WithAcceptableSkew(leeway),
		jwt.WithIssuer(v.cfg.Issuer),
		jwt.WithRequiredClaim(jwt.ExpirationKey),
		jwt.WithValidator(jwt.ValidatorFunc(v.validateAudience)),
	)
	if err != nil {
		return nil, invalid(err.Error())
	}

	var claims map[string]any
	if err := json.Unmarshal(msg.Payload(), &claims); err != nil {
		return nil, invalid("payload is not a JSON object")
	}
	info := tokenInfo(tok, claims)
	// Kept for the token exchange of the my_data tool (the JWT is the
	// subject token); never logged or returned.
	info.Extra[rawTokenKey] = token
	return info, nil
}

// keys returns the JWKS. When kid is not in the cached set, the set is
// fetched again, at most once per jwksMinRefresh, so a key rotation at the
// authorization server is picked up without letting tokens with made-up key
// IDs hammer it. A failed fetch is retried at most once per jwksRetry.
func (v *verifier) keys(ctx context.Context, kid string) (jwk.Set, error) {
	set, err := v.cache.Get(ctx, v.cfg.JWKSURL)
	if err != nil {
		// The cache does not retry a failed first fetch before its
		// background refresher runs again; do it here.
		set, err = v.refresh(ctx, jwksRetry)
		if set == nil && err == nil {
			err = errors.New("fetched too recently")
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errJWKSUnavailable, err)
		}
	}
	if _, ok := set.LookupKeyID(kid); ok || kid == "" {
		return set, nil
	}
	fresh, err := v.refresh(ctx, jwksMinRefresh)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errJWKSUnavailable, err)
	}
	if fresh == nil {
		return set, nil
	}
	return fresh, nil
}

// refresh fetches the JWKS unless the last forced fetch was less than gap
// ago; then it returns nil and no error.
func (v *verifier) refresh(ctx context.Context, gap time.Duration) (jwk.Set, error) {
	v.mu.Lock()
	due := time.Since(v.lastRefresh) >= gap
	if due {
		v.lastRefresh = time.Now()
	}
	v.mu.Unlock()
	if !due {
		return nil, nil
	}
	return v.cache.Refresh(ctx, v.cfg.JWKSURL)
}

// validateAudience requires an "aud" value naming the configured resource.
func (v *verifier) validateAudience(_ context.Context, tok jwt.Token) jwt.ValidationError {
	for _, aud := range tok.Audience() {
		if sameResource(aud, v.cfg.Resource) {
			return nil
		}
	}
	return jwt.NewValidationError(errors.New(`"aud" does not contain the resource`))
}

// sameResource compares two resource URIs: scheme and host case-insensitively,
// the rest exactly. Values that are not URLs must be equal.
func sameResource(a, b string) bool {
	if a == b {
		return true
	}
	ua, errA := url.Parse(a)
	ub, errB := url.Parse(b)
	if errA != nil || errB != nil || ua.Host == "" || ub.Host == "" {
		return false
	}
	return strings.EqualFold(ua.Scheme, ub.Scheme) && strings.EqualFold(ua.Host, ub.Host) &&
		ua.EscapedPath() == ub.EscapedPath() && ua.RawQuery == ub.RawQuery && ua.Fragment == ub.Fragment
}

// isAccessTokenType reports whether a JOSE "typ" names an RFC 9068 access
// token: "at+jwt" or "application/at+jwt", in any case.
func isAccessTokenType(typ string) bool {
	typ = strings.ToLower(typ)
	return typ == "at+jwt" || typ == "application/at+jwt"
}

// tokenInfo converts a verified token into what the SDK hands to tools.
func tokenInfo(tok jwt.Token, claims map[string]any) *auth.TokenInfo {
	info := &auth.TokenInfo{
		Expiration: tok.Expiration(),
		UserID:     tok.Subject(),
		Extra:      map[string]any{claimsKey: claims},
	}
	if info.UserID == "" {
		info.UserID, _ = claims["client_id"].(string)
	}
	switch s := claims["scope"].(type) {
	case string:
		info.Scopes = strings.Fields(s)
	case []any: // "scp"-style arrays under "scope"
		for _, x := range s {
			if str, ok := x.(string); ok {
				info.Scopes = append(info.Scopes, str)
			}
		}
	}
	return info
}

// invalid returns an error wrapping auth.ErrInvalidToken with a reason.
func invalid(reason string) error {
	return fmt.Errorf("%w: %s", auth.ErrInvalidToken, reason)
}
