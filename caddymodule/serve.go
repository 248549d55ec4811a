package caddymodule

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/phantomgate/caddy-phantom-token/cache"
	"github.com/phantomgate/caddy-phantom-token/introspect"
)

// statusClientClosedRequest is what Caddy's reverse proxy also reports
// when the client went away before an answer was ready.
const statusClientClosedRequest = 499

// ServeHTTP implements caddyhttp.MiddlewareHandler: DESIGN §3.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// A CORS preflight carries no credentials by design; the route's CORS
	// handling must see it untouched, except for a token in the query,
	// which must not travel upstream on any path.
	if r.Method == http.MethodOptions && len(r.Header["Authorization"]) == 0 {
		stripAccessTokenQuery(r)
		return next.ServeHTTP(w, r)
	}
	if h.metadata != nil && requestPathIs(r, h.metadata.path) {
		return h.metadata.serve(w, r)
	}
	if h.signer != nil && requestPathIs(r, h.jwksPath) {
		return h.serveJWKS(w, r)
	}

	var token string
	var cred credentials
	if h.dpop == nil {
		token, cred = parseAuthorization(r.Header)
	} else {
		token, cred = parseAuthorizationDPoP(r.Header)
	}
	switch cred {
	case noCredentials:
		countRequest(resultRejected)
		return reject(w, http.StatusUnauthorized, h.challenges.missing, errNoCredentials)
	case badRequest:
		countRequest(resultRejected)
		return reject(w, http.StatusBadRequest, h.challenges.invalidRequest, errMalformed)
	}
	// The proof is checked before the token is looked up: it is the
	// client's, every request makes a new one, and a bad one must cost
	// the AS nothing.
	var thumbprint string
	if h.dpop != nil {
		var err error
		if thumbprint, err = h.checkDPoP(w, r, token, cred); err != nil {
			return err
		}
	}

	key := h.keyer.Key(token)
	// One clock read serves both the cache lookup and the authorization
	// below (the cache's clock is now() too); a miss reads it again
	// because the introspection took time.
	t := now()
	e, hit := h.tokens.GetAt(key, t)
	if !hit || !h.usable(&e, key, t) {
		var err error
		traceparent := r.Header.Get("Traceparent")
		e, hit, err = h.tokens.GetOrLoadIf(r.Context(), key, h.acceptCached, func(ctx context.Context) (entry, time.Duration, error) {
			return h.loadThrough(ctx, key, token, traceparent)
		})
		if err != nil {
			return h.loadFailed(w, r, token, err)
		}
		t = now()
	}

	result := resultMiss
	switch {
	case hit && e.active:
		result = resultHit
	case hit:
		result = resultNegativeHit
	}
	countRequest(result)
	addLogField(r, result)

	v := h.authorize(&e, t)
	if v == invalidToken {
		return reject(w, http.StatusUnauthorized, h.challenges.invalidToken, errInvalidToken)
	}
	if (e.bound() || cred == dpopToken) && !h.checkBinding(r, &e, cred, thumbprint) {
		countBindingRejection(reasonBindingMismatch)
		return reject(w, http.StatusUnauthorized, h.challenges.invalidToken, errBindingMismatch)
	}
	if h.mcp != nil && r.Method == http.MethodPost {
		// The operation decides which scopes are needed: the body is read
		// (and a scope refusal answered with all of them) only now that
		// the token itself is known to be good.
		return h.serveMCP(w, r, next, &e, v)
	}
	if v == insufficientScope {
		return reject(w, http.StatusForbidden, h.challenges.insufficientScope, errInsufficientScope)
	}
	return h.forward(w, r, next, &e)
}

// forward sends an authorized request upstream with the JWT.
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, e *entry) error {
	// The upstream must see the JWT and never the opaque token: replace the
	// one Authorization value in place (parseAuthorization guaranteed there
	// is exactly one) and drop a query-string copy of the token.
	r.Header["Authorization"][0] = e.header()
	stripAccessTokenQuery(r)
	if h.dpop != nil {
		// The gateway terminated the proof; the upstream gets a plain
		// Bearer JWT (with cnf when the source carries it).
		delete(r.Header, "Dpop")
	}

	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		// Pointers convert to anys without allocating (see
		// userIDPlaceholder).
		repl.Set("http.auth.user.id", (*userIDPlaceholder)(e.extras))
		repl.Set("http.auth.user.client_id", (*clientIDPlaceholder)(e.extras))
		repl.Set("http.auth.user.scope", (*scopePlaceholder)(e.extras))
	}
	return next.ServeHTTP(w, r)
}

// load introspects a token once for all concurrent requests that carry it
// and decides how long the result may be reused.
//
// A token the AS calls active but whose exp has passed by the gateway's
// clock (skew, or the last moment of its life) is an expired token, decided
// and cached like an inactive one: it is not an AS fault.
func (h *Handler) load(ctx context.Context, token, traceparent string) (entry, time.Duration, error) {
	loadedAt := now()
	start := time.Now()
	res, err := h.client.Introspect(ctx, token, traceparent)
	observeIntrospection(outcomeOf(res, err), time.Since(start))
	if err != nil {
		return entry{}, 0, err
	}
	if res.Active && expired(res.ExpiresAt, now()) {
		h.logExpired(token)
		res = &introspect.Result{MaxAge: res.MaxAge}
	}
	if res.Active {
		res.JWT, res.JWTExpiresAt, err = h.upstreamJWT(ctx, res, token, traceparent)
		switch {
		case isRejected(err):
			h.logRejectedExchange(token, err)
			res, err = &introspect.Result{MaxAge: res.MaxAge}, nil
		case errors.Is(err, errExpired) || (err == nil && expired(res.JWTExpiresAt, now())):
			h.logExpired(token)
			res, err = &introspect.Result{MaxAge: res.MaxAge}, nil
		}
		if err != nil {
			return entry{}, 0, err
		}
	}
	t := now()
	if !res.Active {
		if h.maxTTL <= 0 {
			return newEntry(res, h.policy, loadedAt), 0, nil
		}
		return newEntry(res, h.policy, loadedAt), cache.TTL(t, h.negTTL, res.MaxAge), nil
	}
	return newEntry(res, h.policy, loadedAt), cache.TTL(t, h.maxTTL, res.MaxAge, res.ExpiresAt, res.JWTExpiresAt), nil
}

// expired reports whether exp (zero: absent) has been reached at t. No
// leeway: exp is never extended.
func expired(exp, t time.Time) bool {
	return !exp.IsZero() && !t.Before(exp)
}

// logExpired records, at debug level, that the AS called a token active
// whose lifetime had already ended by the gateway's clock: a routine
// rejection, not an AS failure.
func (h *Handler) logExpired(token string) {
	if c := h.logger.Check(zapcore.DebugLevel, "token active at the AS but expired at the gateway"); c != nil {
		c.Write(zap.String("token_fingerprint", fingerprint(token)))
	}
}

// loadFailed maps an introspection failure to the response contract: the
// AS being unreachable is 503, the AS misbehaving is 502. Neither is cached.
func (h *Handler) loadFailed(w http.ResponseWriter, r *http.Request, token string, err error) error {
	if r.Context().Err() != nil {
		return caddyhttp.Error(statusClientClosedRequest, r.Context().Err())
	}
	result := failureResult(err)
	countRequest(result)
	addLogField(r, result)
	if c := h.logger.Check(zapcore.DebugLevel, "introspection failed"); c != nil {
		c.Write(zap.String("token_fingerprint", fingerprint(token)), zap.Error(err))
	}
	var ie *introspect.Error
	if errors.As(err, &ie) && ie.Kind == introspect.KindUnavailable {
		return unavailable(w, ie.RetryAfter, err)
	}
	return caddyhttp.Error(http.StatusBadGateway, err)
}

// logFields are the phantom_token_cache access-log fields, by result, built
// once rather than per request.
var logFields = func() (f [numResults]zap.Field) {
	for r := range numResults {
		f[r] = zap.String("phantom_token_cache", resultLabels[r])
	}
	return f
}()

// addLogField adds the phantom_token_cache field to the access log entry.
//
// It does nothing when the request's server has access logging off:
// ExtraLogFields.Set allocates on every call (it resets an internal
// sync.Map, and the first field of a request allocates the list), work
// that no log line would ever show.
func addLogField(r *http.Request, result requestResult) {
	ctx := r.Context()
	if srv, ok := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok && srv.Logs == nil {
		return
	}
	if extra, ok := ctx.Value(caddyhttp.ExtraLogFieldsCtxKey).(*caddyhttp.ExtraLogFields); ok {
		extra.Set(logFields[result])
	}
}

// fingerprint names a token in logs without revealing it.
func fingerprint(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:6])
}
