package introspect

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Introspect asks the AS about token and returns its decision.
//
// traceparent is the W3C trace context of the request being authorized; a
// valid one is forwarded rebuilt as version 00 with its four fields (later
// versions' trailing fields are dropped), an invalid one not at all, and
// nothing else from the client's request reaches the AS. The whole call, including a retry, the
// body and any JWKS fetch needed to verify the reply, is bounded by ctx and
// Config.Timeout.
//
// An inactive token is not an error: it returns a Result with Active false.
// Failures involving the AS are returned as *Error (see ErrorKind); an empty
// token is a caller bug and returns a plain error.
func (c *Client) Introspect(ctx context.Context, token, traceparent string) (*Result, error) {
	if token == "" {
		return nil, errors.New("introspect: empty token")
	}
	form := url.Values{
		"token":           {token},
		"token_type_hint": {"access_token"},
	}
	return roundTrip(ctx, &c.poster, form, traceparent, c.handleReply)
}

// handleReply dispatches the introspection endpoint's reply on its status.
func (c *Client) handleReply(ctx context.Context, resp *http.Response) (*Result, error) {
	switch resp.StatusCode {
	case http.StatusOK, http.StatusNoContent:
		return c.handleSuccess(ctx, resp)
	default:
		return nil, c.statusError(resp)
	}
}

// handleSuccess interprets a 200 or 204 according to the configured format.
func (c *Client) handleSuccess(ctx context.Context, resp *http.Response) (*Result, error) {
	maxAge := parseMaxAge(resp.Header)
	switch c.format {
	case FormatJSON:
		return c.handleJSON(ctx, resp, maxAge)
	case FormatRFC9701:
		return c.handleRFC9701(ctx, resp, maxAge)
	default:
		return c.handleJWT(ctx, resp, maxAge)
	}
}

// handleJWT handles the Curity-style reply: 204 is inactive, 200 carries the
// access-token JWT as the body.
func (c *Client) handleJWT(ctx context.Context, resp *http.Response, maxAge time.Duration) (*Result, error) {
	status := resp.StatusCode
	if status == http.StatusNoContent {
		c.drain(resp.Body)
		return &Result{Active: false, MaxAge: maxAge}, nil
	}
	jwt, err := c.readJWTReply(ctx, resp, "application/jwt", "application/at+jwt")
	if err != nil {
		return nil, err
	}
	jws, err := parseCompactJWS(jwt)
	if err != nil {
		return nil, badResponse(status, "introspection response: %w", err)
	}
	if err := c.verify(ctx, status, jwt, jws); err != nil {
		return nil, err
	}
	res := &Result{Active: true, JWT: jwt, MaxAge: maxAge}
	if err := claims(jws.claims).fill(res); err != nil {
		return nil, badResponse(status, "introspection response jwt: %w", err)
	}
	if c.issuer != "" && res.Issuer != c.issuer {
		return nil, badResponse(status, "introspection response jwt has an unexpected issuer")
	}
	res.JWTExpiresAt = res.ExpiresAt
	return res, nil
}

// handleJSON handles an RFC 7662 reply; the JWT to forward, if any, is in
// its member c.jwtClaim.
func (c *Client) handleJSON(ctx context.Context, resp *http.Response, maxAge time.Duration) (*Result, error) {
	status := resp.StatusCode
	if status == http.StatusNoContent {
		return nil, c.noContentError(resp, "a json body")
	}
	cl, err := c.readJSONReply(ctx, resp)
	if err != nil {
		return nil, err
	}
	return c.decide(ctx, status, cl, maxAge, "introspection response")
}

// decide reads an RFC 7662 introspection object (the JSON reply, or the
// "token_introspection" member of an RFC 9701 reply, named by where in
// messages) into a Result, and, when configured, the JWT to forward from
// its member c.jwtClaim.
func (c *Client) decide(ctx context.Context, status int, cl claims, maxAge time.Duration, where string) (*Result, error) {
	// RFC 7662 §2.2: only the boolean true means active. A missing or
	// non-boolean "active" is not "inactive": the AS is not speaking RFC 7662
	// and the gateway cannot tell what it meant.
	switch a := cl.raw("active"); string(a) {
	case "true":
	case "false":
		return &Result{Active: false, MaxAge: maxAge}, nil
	case "":
		return nil, badResponse(status, `%s has no "active" member`, where)
	default:
		return nil, badResponse(status, `%s "active" member is not a boolean`, where)
	}

	res := &Result{Active: true, MaxAge: maxAge}
	if err := cl.fill(res); err != nil {
		return nil, badResponse(status, "%s: %w", where, err)
	}
	if c.issuer != "" && res.Issuer != "" && res.Issuer != c.issuer {
		return nil, badResponse(status, "%s has an unexpected issuer", where)
	}
	if c.jwtClaim == "" {
		// The caller obtains the JWT otherwise (token exchange, signing).
		return res, nil
	}

	jwt, err := cl.str(c.jwtClaim)
	if err != nil || jwt == "" {
		return nil, badResponse(status, "%s member %q does not hold a jwt", where, c.jwtClaim)
	}
	jws, err := parseCompactJWS(jwt)
	if err != nil {
		return nil, badResponse(status, "%s member %q: %w", where, c.jwtClaim, err)
	}
	if err := c.verify(ctx, status, jwt, jws); err != nil {
		return nil, err
	}
	jwtClaims := claims(jws.claims)
	if c.issuer != "" {
		iss, err := jwtClaims.str("iss")
		if err != nil || iss != c.issuer {
			return nil, badResponse(status, "jwt in %s member %q has an unexpected issuer", where, c.jwtClaim)
		}
	}
	if res.JWTExpiresAt, err = jwtClaims.numericDate("exp"); err != nil {
		return nil, badResponse(status, "jwt in %s member %q: %w", where, c.jwtClaim, err)
	}
	res.JWT = jwt
	return res, nil
}

// verify checks the signature of jwt, already parsed as msg, when a
// verifier is configured. The verifier's kind is kept (an unreachable JWKS
// is KindUnavailable) and the status is that of the introspection reply.
func (c *Client) verify(ctx context.Context, status int, jwt string, msg *compactJWS) error {
	if c.verifier == nil {
		return nil
	}
	return verifyError(status, "verifying jwt from introspection endpoint", c.verifier.verifyParsed(ctx, []byte(jwt), msg))
}

// verifyError re-labels a verification failure with the status of the reply
// that carried the JWT, keeping the verifier's kind (an unreachable JWKS is
// KindUnavailable, everything else KindBadResponse). nil stays nil.
func verifyError(status int, what string, err error) error {
	if err == nil {
		return nil
	}
	var ve *Error
	if errors.As(err, &ve) {
		return &Error{Kind: ve.Kind, Status: status, Err: fmt.Errorf("%s: %w", what, ve.Err)}
	}
	return &Error{Kind: KindBadResponse, Status: status, Err: fmt.Errorf("%s: %w", what, err)}
}
