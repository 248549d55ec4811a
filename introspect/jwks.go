package introspect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// JWKS fetching parameters.
const (
	// jwksMinRefreshInterval is the shortest time between scheduled
	// refreshes of the key set, even when the JWKS response asks for less.
	jwksMinRefreshInterval = 5 * time.Minute
	// jwksRefreshWindow is how often the jwk.Cache looks for due refreshes.
	jwksRefreshWindow = time.Minute
	// jwksForcedRefreshInterval rate-limits refreshes forced by an unknown
	// kid (or by a key set that could not be fetched yet): a flood of JWTs
	// with made-up kids must not turn into a flood of JWKS requests.
	jwksForcedRefreshInterval = 10 * time.Second
	// jwksFetchTimeout bounds one JWKS fetch. The jwk.Cache fetches through
	// an interface without a context, so this is what stops a hung JWKS
	// server from holding a fetch worker forever.
	jwksFetchTimeout = 10 * time.Second
	// jwksMaxBodyBytes caps the JWKS document.
	jwksMaxBodyBytes = 1 << 20
)

// keySpec is one allowed JWS algorithm and the key type it needs.
type keySpec struct {
	alg jwa.SignatureAlgorithm
	kty jwa.KeyType
}

// allowedAlgs is the allow-list of signature algorithms the verifier
// accepts: asymmetric only. "none" would accept anything, and HS* would let
// whoever knows a shared secret (or can present a public key as one) mint
// tokens, so neither is ever accepted, whatever the key set contains.
var allowedAlgs = map[string]keySpec{
	"RS256": {jwa.RS256, jwa.RSA},
	"RS384": {jwa.RS384, jwa.RSA},
	"RS512": {jwa.RS512, jwa.RSA},
	"PS256": {jwa.PS256, jwa.RSA},
	"PS384": {jwa.PS384, jwa.RSA},
	"PS512": {jwa.PS512, jwa.RSA},
	"ES256": {jwa.ES256, jwa.EC},
	"ES384": {jwa.ES384, jwa.EC},
	"ES512": {jwa.ES512, jwa.EC},
	"EdDSA": {jwa.EdDSA, jwa.OKP},
}

// JWKSVerifier verifies JWS signatures of JWTs from the AS against the AS's
// JSON Web Key Set. Keys are fetched lazily on first use, cached, refreshed
// in the background (at most every few minutes), and refetched once when a
// JWT names a key id the cached set does not have, rate-limited. It is safe
// for concurrent use.
type JWKSVerifier struct {
	uri     string
	life    context.Context // bounds the cache's goroutines and every fetch
	cache   *jwk.Cache
	fetcher *jwksFetcher

	// refreshSem serializes forced refreshes so concurrent JWTs with the
	// same new kid cause one fetch, and the others then see its result.
	refreshSem   chan struct{}
	forcedMinGap time.Duration
}

// NewJWKSVerifier registers jwksURI with a jwk.Cache bound to ctx. It does
// no network I/O: keys are fetched on the first Verify. Cancelling ctx stops
// the cache's background goroutines and aborts fetches in flight; Verify
// afterwards returns a KindUnavailable error. The URI must be https, or http
// on a loopback host. client may be nil for a default client that verifies
// TLS (1.2 minimum) and follows at most 3 redirects, to https only.
func NewJWKSVerifier(ctx context.Context, jwksURI string, client *http.Client) (*JWKSVerifier, error) {
	if ctx == nil {
		return nil, errors.New("jwks verifier needs a context")
	}
	if jwksURI == "" {
		return nil, errors.New("jwks uri is required")
	}
	if err := CheckURL(jwksURI); err != nil {
		return nil, fmt.Errorf("jwks uri: %w", err)
	}
	if client == nil {
		client = newDefaultHTTPClient(limitedRedirects)
		// Our own client: release its pooled connections together with
		// the cache's goroutines.
		context.AfterFunc(ctx, client.CloseIdleConnections)
	}
	f := &jwksFetcher{life: ctx, client: client, timeout: jwksFetchTimeout, maxBytes: jwksMaxBodyBytes}
	cache := jwk.NewCache(ctx, jwk.WithRefreshWindow(jwksRefreshWindow))
	if err := cache.Register(jwksURI, jwk.WithHTTPClient(f), jwk.WithMinRefreshInterval(jwksMinRefreshInterval)); err != nil {
		return nil, fmt.Errorf("jwks uri: registering with the key cache: %w", err)
	}
	return &JWKSVerifier{
		uri:          jwksURI,
		life:         ctx,
		cache:        cache,
		fetcher:      f,
		refreshSem:   make(chan struct{}, 1),
		forcedMinGap: jwksForcedRefreshInterval,
	}, nil
}

// Verify checks the signature of a compact JWS against the AS key set.
//
// The algorithm is taken from the JWS header and must be on the asymmetric
// allow-list (RS*, PS*, ES*, EdDSA); the key is chosen by "kid" (or, without
// one, every key of the matching type is tried) and must not be restricted
// to another algorithm or to encryption. A JWKS that cannot be fetched is a
// KindUnavailable *Error; a malformed JWS, a disallowed algorithm, no
// matching key or a bad signature is a KindBadResponse *Error.
//
// An RFC 9701 introspection response is refused here (it is not an access
// token); the introspection client verifies those through verifyParsed.
func (v *JWKSVerifier) Verify(ctx context.Context, compactJWT []byte) error {
	if v.life.Err() != nil {
		return unavailable(0, "jwks verifier is stopped")
	}
	msg, err := parseCompactJWS(string(compactJWT))
	if err != nil {
		return badResponse(0, "jwt: %w", err)
	}
	return v.verifyParsed(ctx, compactJWT, msg)
}

// verifyParsed checks the signature of compactJWT, already parsed as msg.
func (v *JWKSVerifier) verifyParsed(ctx context.Context, compactJWT []byte, msg *compactJWS) error {
	if v.life.Err() != nil {
		return unavailable(0, "jwks verifier is stopped")
	}
	spec, ok := allowedAlgs[msg.alg]
	if !ok {
		if len(msg.alg) <= 16 {
			return badResponse(0, "jwt alg %q is not allowed", msg.alg)
		}
		return badResponse(0, "jwt alg is not allowed")
	}
	var kid string
	if raw, ok := msg.header["kid"]; ok {
		if err := json.Unmarshal(raw, &kid); err != nil {
			return badResponse(0, "jwt kid is not a string")
		}
	}

	set, err := v.keySet(ctx)
	if err != nil {
		return err
	}
	keys := candidateKeys(set, kid, spec)
	if len(keys) == 0 {
		// The AS may have rotated its keys since we fetched them.
		set, _, err = v.forceRefresh(ctx)
		if err != nil {
			return err
		}
		keys = candidateKeys(set, kid, spec)
		if len(keys) == 0 {
			return badResponse(0, "no key in the as jwks matches the jwt (kid and alg)")
		}
	}
	for _, k := range keys {
		if _, err := jws.Verify(compactJWT, jws.WithKey(spec.alg, k)); err == nil {
			return nil
		}
	}
	return badResponse(0, "jwt signature is invalid")
}

// keySet returns the cached key set, fetching it on first use. When the
// first fetch failed, the jwk.Cache keeps answering with that failure until
// its next scheduled refresh (minutes away); a rate-limited forced refresh
// recovers sooner once the JWKS is back.
func (v *JWKSVerifier) keySet(ctx context.Context) (jwk.Set, error) {
	set, err := v.cache.Get(ctx, v.uri)
	if err == nil && set != nil {
		return set, nil
	}
	if ctx.Err() != nil {
		return nil, transportError(ctx, "as jwks request", ctx.Err())
	}
	set, refreshed, rerr := v.forceRefresh(ctx)
	switch {
	case rerr != nil:
		return nil, rerr
	case set != nil:
		return set, nil
	case refreshed:
		return nil, unavailable(0, "as jwks could not be fetched")
	default:
		return nil, v.fetchError(err)
	}
}

// forceRefresh refetches the key set unless any fetch happened within
// forcedMinGap, in which case it returns the cached set (which a concurrent
// forced refresh may just have updated). refreshed reports whether a fetch
// was made; err is set only when that fetch failed.
func (v *JWKSVerifier) forceRefresh(ctx context.Context) (set jwk.Set, refreshed bool, err error) {
	select {
	case v.refreshSem <- struct{}{}:
		defer func() { <-v.refreshSem }()
	case <-ctx.Done():
		return nil, false, transportError(ctx, "as jwks request", ctx.Err())
	}
	if last := v.fetcher.lastAttempt(); !last.IsZero() && time.Since(last) < v.forcedMinGap {
		set, gerr := v.cache.Get(ctx, v.uri)
		if gerr != nil {
			return nil, false, nil
		}
		return set, false, nil
	}
	set, err = v.cache.Refresh(ctx, v.uri)
	if err != nil {
		return nil, true, v.fetchError(err)
	}
	return set, true, nil
}

// fetchError turns an error from the jwk.Cache into an *Error. The fetcher
// records the classified error of its last attempt because the cache wraps
// errors in messages that repeat the URL, and after a failed first fetch it
// reports only that it holds no key set.
func (v *JWKSVerifier) fetchError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		cp := *e // the fetcher's record is shared; hand out a copy
		return &cp
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return transportError(context.Background(), "as jwks request", err)
	}
	if e := v.fetcher.lastError(); e != nil {
		cp := *e
		return &cp
	}
	return unavailable(0, "as jwks is not available")
}

// candidateKeys returns the keys of set that may verify a JWS with the given
// kid and algorithm: the right key type, usable for signatures, not bound to
// another algorithm or to other operations. With a kid, keys carrying that
// kid are preferred; when none does, keys without a kid are tried (kid is
// only a hint when the set does not use kids). Without a kid, every suitable
// key is tried.
func candidateKeys(set jwk.Set, kid string, spec keySpec) []jwk.Key {
	if set == nil {
		return nil
	}
	var byKid, noKid []jwk.Key
	for i := 0; i < set.Len(); i++ {
		k, ok := set.Key(i)
		if !ok || k.KeyType() != spec.kty {
			continue
		}
		if use := k.KeyUsage(); use != "" && use != string(jwk.ForSignature) {
			continue
		}
		if a := k.Algorithm().String(); a != "" && a != spec.alg.String() {
			continue
		}
		if ops := k.KeyOps(); len(ops) > 0 && !containsOp(ops, jwk.KeyOpVerify) {
			continue
		}
		switch {
		case kid == "" || k.KeyID() == kid:
			// Without a kid in the JWS, every suitable key is a candidate.
			byKid = append(byKid, k)
		case k.KeyID() == "":
			noKid = append(noKid, k)
		}
	}
	if len(byKid) > 0 {
		return byKid
	}
	return noKid
}

func containsOp(ops jwk.KeyOperationList, op jwk.KeyOperation) bool {
	for _, o := range ops {
		if o == op {
			return true
		}
	}
	return false
}

// jwksFetcher is the HTTP client the jwk.Cache fetches through. It adds what
// the cache lacks: a timeout tied to the verifier's lifetime, a body size
// cap, closing the response body, classification of failures into *Error,
// and a record of the last attempt for rate-limiting forced refreshes.
type jwksFetcher struct {
	life     context.Context
	client   *http.Client
	timeout  time.Duration
	maxBytes int64

	mu      sync.Mutex
	last    time.Time
	lastErr *Error
}

func (f *jwksFetcher) lastAttempt() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

func (f *jwksFetcher) lastError() *Error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastErr
}

func (f *jwksFetcher) record(err *Error) *Error {
	f.mu.Lock()
	f.lastErr = err
	f.mu.Unlock()
	return err
}

// Get implements jwk.HTTPClient. It returns a 200 response whose body is the
// already read and validated key set, or an error.
func (f *jwksFetcher) Get(u string) (*http.Response, error) {
	f.mu.Lock()
	f.last = time.Now()
	f.mu.Unlock()

	ctx, cancel := context.WithTimeout(f.life, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, f.record(badResponse(0, "building as jwks request failed"))
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	req.Header.Set("User-Agent", userAgent)

	resp, err := f.client.Do(req)
	if err != nil {
		return nil, f.record(transportError(ctx, "as jwks request", err))
	}
	defer resp.Body.Close()

	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusServiceUnavailable:
		e := unavailable(resp.StatusCode, "as jwks endpoint answered status %d", resp.StatusCode)
		e.RetryAfter = parseRetryAfter(resp.Header, time.Now())
		return nil, f.record(e)
	default:
		return nil, f.record(badResponse(resp.StatusCode, "as jwks endpoint answered status %d", resp.StatusCode))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.maxBytes+1))
	if err != nil {
		e := transportError(ctx, "reading as jwks response", err)
		e.Status = resp.StatusCode
		return nil, f.record(e)
	}
	if int64(len(body)) > f.maxBytes {
		return nil, f.record(badResponse(resp.StatusCode, "as jwks response exceeds %d bytes", f.maxBytes))
	}
	// Parse here too, so a bad document is classified like every other
	// failure (the cache would parse it again; key sets are small).
	if _, err := jwk.Parse(body); err != nil {
		return nil, f.record(badResponse(resp.StatusCode, "as jwks response is not a valid jwk set"))
	}
	f.record(nil)
	return &http.Response{
		Status:        resp.Status,
		StatusCode:    resp.StatusCode,
		Proto:         resp.Proto,
		ProtoMajor:    resp.ProtoMajor,
		ProtoMinor:    resp.ProtoMinor,
		Header:        resp.Header.Clone(),
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}, nil
}
