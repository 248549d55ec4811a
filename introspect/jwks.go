package introspect

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/phantomgate/caddy-phantom-token/internal/jwssig"
)

// JWKS fetching parameters.
const (
	// jwksMinRefreshInterval is the shortest time between scheduled
	// refreshes of the key set, even when the JWKS response asks for less.
	// It is also the interval when the response gives no max-age.
	jwksMinRefreshInterval = 5 * time.Minute
	// jwksMaxRefreshInterval is the longest: a key the AS withdrew (say,
	// after a compromise) must not stay trusted for as long as a long
	// max-age says.
	jwksMaxRefreshInterval = time.Hour
	// jwksRetryInterval is how soon the background refresher tries again
	// after a failed refresh (the last good set stays in use meanwhile).
	jwksRetryInterval = time.Minute
	// jwksForcedRefreshInterval rate-limits refreshes forced by an unknown
	// kid (or by a key set that could not be fetched yet): a flood of JWTs
	// with made-up kids must not turn into a flood of JWKS requests.
	jwksForcedRefreshInterval = 10 * time.Second
	// jwksFetchTimeout bounds one JWKS fetch. A fetch runs detached from
	// the requests that wait for it (each waits only within its own
	// deadline), so this is what stops a hung JWKS server from holding it.
	jwksFetchTimeout = 10 * time.Second
	// jwksMaxBodyBytes caps the JWKS document.
	jwksMaxBodyBytes = 1 << 20
)

// JWKSVerifier verifies JWS signatures of JWTs from the AS against the AS's
// JSON Web Key Set. It is safe for concurrent use.
//
// Keys are fetched on first use and kept as the last good set, which
// Verify reads without waiting for anything: refreshes run in the
// background (every few minutes, or as the JWKS response's max-age says,
// within bounds), and a failed refresh keeps the last good set. A JWT
// naming a key id the set does not have forces one refresh, rate-limited;
// the requests that need it wait for it only within their own deadline.
type JWKSVerifier struct {
	uri       string
	life      context.Context // bounds the background refresher, nothing else
	fetcher   *jwksFetcher
	ownClient bool // the client is ours: release its idle connections when stopped

	// keys is the last good key set, nil until a fetch succeeded.
	keys atomic.Pointer[keySet]
	// refresher starts the background refresher after the first fetch.
	refresher sync.Once

	// mu guards the fields below. It is never held during I/O, so no
	// request ever waits on it for longer than a few field updates.
	mu           sync.Mutex
	inflight     *jwksFetch // the fetch running now, nil when none
	lastTry      time.Time  // when the last fetch started
	lastErr      *Error     // outcome of the last fetch, nil if it succeeded
	nextDue      time.Time  // when the background refresher fetches next
	forcedMinGap time.Duration
	minRefresh   time.Duration // jwksMinRefreshInterval; tests shorten it
}

// jwksFetch is one fetch of the key set, which any number of requests may
// wait for; done is closed once set or err is filled in.
type jwksFetch struct {
	done chan struct{}
	set  *keySet
	err  *Error
}

// NewJWKSVerifier returns a verifier for the key set at jwksURI. It does no
// network I/O: keys are fetched on the first Verify. ctx bounds the
// background refresher; cancelling it stops the refresher (and releases
// the idle connections of the default client) but never fails a Verify:
// the last good set stays in use, and a verifier that needs keys after
// that still fetches them, within the caller's deadline. The URI must be
// https, or http on a loopback host. client may be nil for a default
// client that verifies TLS (1.2 minimum) and follows at most 3 redirects,
// to https only.
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
	own := client == nil
	if own {
		client = newDefaultHTTPClient(jwksRedirects)
		context.AfterFunc(ctx, client.CloseIdleConnections)
	}
	return &JWKSVerifier{
		uri:          jwksURI,
		life:         ctx,
		fetcher:      &jwksFetcher{client: client, timeout: jwksFetchTimeout, maxBytes: jwksMaxBodyBytes},
		ownClient:    own,
		forcedMinGap: jwksForcedRefreshInterval,
		minRefresh:   jwksMinRefreshInterval,
	}, nil
}

// Verify checks the signature of a compact JWS against the AS key set.
//
// The algorithm is taken from the JWS header and must be on the asymmetric
// allow-list (RS*, PS*, ES*, EdDSA); the key is chosen by "kid" (or, without
// one, every key of the matching type is tried) and must not be restricted
// to another algorithm or to encryption. A JWKS that cannot be had within
// ctx is a KindUnavailable *Error (or the JWKS endpoint's classified
// failure); a malformed JWS, a disallowed algorithm, no matching key or a
// bad signature is a KindBadResponse *Error.
//
// An RFC 9701 introspection response is refused here (it is not an access
// token); the introspection client verifies those through verifyParsed.
func (v *JWKSVerifier) Verify(ctx context.Context, compactJWT []byte) error {
	msg, err := parseCompactJWS(string(compactJWT))
	if err != nil {
		return badResponse(0, "jwt: %w", err)
	}
	return v.verifyParsed(ctx, compactJWT, msg)
}

// verifyParsed checks the signature of compactJWT, already parsed as msg.
// The signature is checked directly over the signing input (RFC 7515
// §5.2): the header and payload were decoded by the parse already.
func (v *JWKSVerifier) verifyParsed(ctx context.Context, compactJWT []byte, msg *compactJWS) error {
	spec, ok := allowedAlgs[msg.alg]
	if !ok {
		// The alg is the AS's text: name the fault, not the value.
		return badResponse(0, "jwt alg is not allowed")
	}
	var kid string
	if raw, ok := msg.header["kid"]; ok {
		if err := json.Unmarshal(raw, &kid); err != nil {
			return badResponse(0, "jwt kid is not a string")
		}
	}
	dot := bytes.LastIndexByte(compactJWT, '.')
	if dot < 0 {
		return badResponse(0, "jwt: %w", errNotJWS)
	}
	input := compactJWT[:dot]
	sig := make([]byte, base64.RawURLEncoding.DecodedLen(len(compactJWT)-dot-1))
	n, err := base64.RawURLEncoding.Decode(sig, compactJWT[dot+1:])
	if err != nil {
		return badResponse(0, "jwt signature is not base64url")
	}
	sig = sig[:n]

	set, err := v.current(ctx)
	if err != nil {
		return err
	}
	keys := candidateKeys(set, kid, spec)
	if len(keys) == 0 {
		// The AS may have rotated its keys since we fetched them.
		if set, err = v.refresh(ctx); err != nil {
			return err
		}
		if keys = candidateKeys(set, kid, spec); len(keys) == 0 {
			return badResponse(0, "no key in the as jwks matches the jwt (kid and alg)")
		}
	}
	digest := jwssig.Digest(spec.hash, input)
	for _, k := range keys {
		if k.verify(spec, input, digest, sig) {
			return nil
		}
	}
	return badResponse(0, "jwt signature is invalid")
}

// current returns the last good key set, fetching one when there is none
// yet (rate-limited, waiting only within ctx).
func (v *JWKSVerifier) current(ctx context.Context) (*keySet, error) {
	if set := v.keys.Load(); set != nil {
		return set, nil
	}
	return v.refresh(ctx)
}

// refresh fetches the key set, or joins the fetch already running, and
// waits for it within ctx. Unless a fetch is running, it does not fetch
// when any fetch started within forcedMinGap; it answers from what that
// fetch left instead: the last good set, or the fetch's failure when there
// is no set.
func (v *JWKSVerifier) refresh(ctx context.Context) (*keySet, error) {
	v.mu.Lock()
	f := v.inflight
	if f == nil {
		if !v.lastTry.IsZero() && time.Since(v.lastTry) < v.forcedMinGap {
			set, lastErr := v.keys.Load(), v.lastErr
			v.mu.Unlock()
			switch {
			case set != nil:
				return set, nil
			case lastErr != nil:
				cp := *lastErr // shared with other callers; hand out a copy
				return nil, &cp
			default:
				return nil, unavailable(0, "as jwks is not available")
			}
		}
		f = v.startFetchLocked()
	}
	v.mu.Unlock()

	select {
	case <-f.done:
	case <-ctx.Done():
		// The fetch goes on; its result is kept for the next request.
		return nil, transportError(ctx, "as jwks request", ctx.Err())
	}
	if f.err != nil {
		cp := *f.err
		return nil, &cp
	}
	return f.set, nil
}

// startFetchLocked starts a fetch in its own goroutine. It runs detached
// from the request that caused it, so that one caller giving up does not
// fail the others waiting for it, and from the verifier's lifetime, so
// that stopping the refresher (a config reload) does not fail requests
// still in flight; jwksFetchTimeout bounds it. v.mu must be held.
func (v *JWKSVerifier) startFetchLocked() *jwksFetch {
	f := &jwksFetch{done: make(chan struct{})}
	v.inflight = f
	v.lastTry = time.Now()
	go v.runFetch(f)
	return f
}

func (v *JWKSVerifier) runFetch(f *jwksFetch) {
	ctx, cancel := context.WithTimeout(context.Background(), v.fetcher.timeout)
	set, maxAge, err := v.fetcher.fetch(ctx, v.uri)
	cancel()

	v.mu.Lock()
	v.inflight = nil
	v.lastErr = err
	if err == nil {
		v.keys.Store(set)
		v.nextDue = time.Now().Add(refreshInterval(maxAge, v.minRefresh))
	} else {
		v.nextDue = time.Now().Add(min(jwksRetryInterval, v.minRefresh))
	}
	v.mu.Unlock()

	f.set, f.err = set, err
	v.refresher.Do(func() {
		if v.life.Err() == nil {
			go v.refreshLoop()
		}
	})
	close(f.done)
	if v.ownClient && v.life.Err() != nil {
		// A fetch after the verifier was stopped: keep no connection.
		v.fetcher.client.CloseIdleConnections()
	}
}

// refreshInterval is the time until the next scheduled refresh after a
// good fetch whose response had maxAge (-1 for none): maxAge, within
// [floor, jwksMaxRefreshInterval], and floor without one.
func refreshInterval(maxAge, floor time.Duration) time.Duration {
	if maxAge < 0 {
		return floor
	}
	return min(max(maxAge, floor), jwksMaxRefreshInterval)
}

// refreshLoop refreshes the key set whenever it is due, until the
// verifier's lifetime ends. Requests never wait for it.
func (v *JWKSVerifier) refreshLoop() {
	for {
		v.mu.Lock()
		wait := time.Until(v.nextDue)
		v.mu.Unlock()
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-v.life.Done():
				t.Stop()
				return
			case <-t.C:
			}
			continue // a forced refresh may have moved nextDue meanwhile
		}
		v.mu.Lock()
		f := v.inflight
		if f == nil {
			f = v.startFetchLocked()
		}
		v.mu.Unlock()
		select {
		case <-v.life.Done():
			return
		case <-f.done:
		}
	}
}
