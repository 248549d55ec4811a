package caddymodule

import (
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/phantomgate/caddy-phantom-token/cache/redisstore"
	"github.com/phantomgate/caddy-phantom-token/dpop"
)

// dpopState is a route's DPoP checking, made at provisioning.
type dpopState struct {
	verifier *dpop.Verifier
	nonces   *dpop.NonceSource // nil without nonce
	origin   string            // scheme://host[:port] that proofs name in htu
}

const (
	// dpopReplayMax bounds the process's jti record (about 150 bytes an
	// entry): at the default 60s window, over 4,000 proofs a second. When
	// it is full of live proofs, new proofs are refused rather than old
	// jtis forgotten: forgetting would let a replay through.
	dpopReplayMax = 1 << 18
	// dpopNonceLifetime is how long a nonce from DPoP-Nonce is accepted.
	dpopNonceLifetime = 5 * time.Minute
)

// The process's jti record and nonce key, for gateways without Redis: one
// per process, so that a proof cannot be replayed on another route or
// across a config reload, and a nonce stays valid across a reload.
var (
	processReplay   = sync.OnceValue(func() dpop.ReplayCache { return dpop.NewMemoryReplayCache(dpopReplayMax) })
	processNonceKey = sync.OnceValue(func() []byte {
		b := make([]byte, 32)
		_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
		return b
	})
)

// provisionDPoP builds the route's DPoP checking; it runs after the shared
// store, whose Redis records jtis for the whole fleet and whose secret keys
// the fleet's nonces. Errors name the subdirective.
func (h *Handler) provisionDPoP() error {
	c := h.DPoP
	if c == nil {
		return nil
	}
	origin, err := dpopOrigin(c.Origin, h.Resource)
	if err != nil {
		return err
	}
	if c.MaxAge < 0 {
		return fmt.Errorf("dpop max_age: expected a positive duration such as 60s, got %v", time.Duration(c.MaxAge))
	}
	replay := processReplay()
	nonceKey := processNonceKey()
	if h.shared != nil {
		replay = redisReplay{h.shared.store}
		// Every node derives the same key, so a nonce one node issued is
		// good on all of them.
		if nonceKey, err = hkdf.Key(sha256.New, []byte(h.Cache.Redis.Secret), nil, "phantom_token dpop nonce", 32); err != nil {
			return fmt.Errorf("dpop nonce: %v", err)
		}
	}
	var nonces *dpop.NonceSource
	if c.Nonce {
		nonces = dpop.NewNonceSource(nonceKey, dpopNonceLifetime)
	}
	v, err := dpop.New(dpop.Config{
		Algorithms: h.dpopAlgorithms(),
		MaxAge:     time.Duration(c.MaxAge),
		Leeway:     time.Duration(h.Leeway),
		Nonces:     nonces,
		Replay:     replay,
		Now:        func() time.Time { return now() },
	})
	if err != nil {
		return fmt.Errorf("dpop %v", err)
	}
	h.dpop = &dpopState{verifier: v, nonces: nonces, origin: origin}
	return nil
}

// dpopOrigin is the origin htu is checked against: the configured one, or
// resource's. Never the request's Host or X-Forwarded-*: the client
// controls those.
func dpopOrigin(configured, resource string) (string, error) {
	what, raw := "dpop origin", configured
	if raw == "" {
		if resource == "" {
			return "", errors.New("dpop origin: required when resource is not set (the external scheme://host[:port] clients address)")
		}
		what, raw = "resource", resource
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return "", fmt.Errorf("%s: expected an absolute http(s) URL for DPoP's htu, got %q", what, raw)
	}
	if configured != "" && (strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "") {
		return "", fmt.Errorf("dpop origin: expected scheme://host[:port] only, got %q", raw)
	}
	return u.Scheme + "://" + u.Host, nil
}

// redisReplay records jtis in the fleet's Redis.
type redisReplay struct{ store *redisstore.Store }

// Seen implements dpop.ReplayCache.
func (r redisReplay) Seen(ctx context.Context, key string, until time.Time) (bool, error) {
	ttl := time.Until(until)
	if ttl < time.Millisecond {
		ttl = time.Millisecond
	}
	first, err := r.store.FirstSeen(ctx, key, ttl)
	return !first, err
}

var (
	errDPoPRequired = errors.New("this route accepts DPoP-bound tokens only")
	errDPoPProof    = errors.New("invalid DPoP proof")
	errDPoPNonce    = errors.New("the DPoP proof lacks a current server nonce")
	errDPoPReplayDB = errors.New("the DPoP replay check is unavailable")
)

// checkDPoP checks how a request on a DPoP route presents its token: with
// dpop required, a Bearer token is refused; a DPoP token's proof is
// verified (RFC 9449 §4.3), never cached. It returns the proof key's
// thumbprint, or the error that answers the request.
func (h *Handler) checkDPoP(w http.ResponseWriter, r *http.Request, token string, cred credentials) (string, error) {
	if cred != dpopToken {
		if h.DPoP.Required {
			countRequest(resultRejected)
			return "", reject(w, http.StatusUnauthorized, h.challenges.missing, errDPoPRequired)
		}
		return "", nil
	}
	proofs := r.Header["Dpop"]
	// The gateway consumes the proof: it must not reach the upstream,
	// whatever happens next. (Caddy's logs keep a copy of the request
	// taken before any handler runs; the README says how to filter it.)
	delete(r.Header, "Dpop")
	proof, err := h.dpop.verifier.Verify(r.Context(), proofs, dpop.Request{
		Method: r.Method, URL: h.dpop.origin + originalEscapedPath(r), AccessToken: token,
	})
	if err == nil {
		return proof.Thumbprint, nil
	}
	countRequest(resultRejected)
	var pe *dpop.Error
	switch {
	case !errors.As(err, &pe):
		return "", caddyhttp.Error(http.StatusInternalServerError, err)
	case errors.Unwrap(pe) != nil:
		// The proof may be fine: the jti record could not be consulted.
		// Refusing is fail-closed; 503 tells the client it may retry.
		return "", unavailable(w, 0, fmt.Errorf("%w: %v", errDPoPReplayDB, pe))
	case pe.Code == dpop.CodeUseNonce:
		w.Header().Set("DPoP-Nonce", h.dpop.nonces.Nonce())
		return "", reject(w, http.StatusUnauthorized, h.challenges.useDPoPNonce, errDPoPNonce)
	case pe.Replay:
		countBindingRejection(reasonDPoPReplay)
	default:
		countBindingRejection(reasonDPoPInvalid)
	}
	return "", reject(w, http.StatusUnauthorized, h.challenges.invalidDPoPProof, fmt.Errorf("%w: %s", errDPoPProof, pe.Reason))
}

// originalEscapedPath is the path the client sent, before any rewrite of an
// earlier handler: the one its proof's htu names.
func originalEscapedPath(r *http.Request) string {
	if or, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && or.URL != nil {
		return or.URL.EscapedPath()
	}
	return r.URL.EscapedPath()
}
