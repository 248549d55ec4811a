package introspect

import (
	"context"
	"net/http"
	"slices"
	"time"
)

// mediaTypeIntrospectionJWT is the RFC 9701 §4 response media type, also
// accepted as the JOSE "typ".
const mediaTypeIntrospectionJWT = "application/token-introspection+jwt"

// errMsgRFC9701AsJSON explains the usual misconfiguration: the AS ignores
// the Accept header because it does not implement RFC 9701 (Ory Hydra).
// It is never silently downgraded to the JSON format: the JSON reply is
// unsigned, which is not what the operator configured.
const errMsgRFC9701AsJSON = "authorization server answered application/json to an RFC 9701 request; " +
	"it does not support JWT introspection responses — use introspection_format json"

// handleRFC9701 handles a signed introspection response (RFC 9701): check
// the media type, the JOSE typ, the signature, iss, aud and iat, then decide
// from the "token_introspection" member. The reply JWT is addressed to the
// gateway and is never forwarded.
func (c *Client) handleRFC9701(ctx context.Context, resp *http.Response, maxAge time.Duration) (*Result, error) {
	status := resp.StatusCode
	if status == http.StatusNoContent {
		return nil, c.noContentError(resp, "a signed jwt")
	}
	if mediaType(resp.Header) == "application/json" {
		c.drain(resp.Body)
		return nil, badResponse(status, errMsgRFC9701AsJSON)
	}
	jwt, err := c.readJWTReply(ctx, resp, mediaTypeIntrospectionJWT)
	if err != nil {
		return nil, err
	}
	msg, err := parseJWS(jwt)
	if err != nil {
		return nil, badResponse(status, "introspection response: %w", err)
	}
	if !msg.isIntrospectionResponse() {
		return nil, badResponse(status, `introspection response jwt does not have typ "token-introspection+jwt"`)
	}
	// New guarantees a verifier for this format.
	if err := verifyError(status, "verifying introspection response jwt", c.verifier.verifyParsed(ctx, []byte(jwt), msg)); err != nil {
		return nil, err
	}
	cl := claims(msg.claims)
	if err := c.checkRFC9701Claims(status, cl); err != nil {
		return nil, err
	}

	ti := cl.raw("token_introspection")
	if ti == nil {
		return nil, badResponse(status, `introspection response jwt has no "token_introspection" member`)
	}
	if ti[0] != '{' {
		return nil, badResponse(status, `introspection response jwt "token_introspection" member is not an object`)
	}
	obj, err := parseJSONObject(ti)
	if err != nil {
		return nil, badResponse(status, `introspection response jwt "token_introspection" member is not an object`)
	}
	return c.decide(ctx, status, claims(obj), maxAge, "token_introspection")
}

// checkRFC9701Claims checks the reply JWT's own claims (RFC 9701 §5): iss
// is the configured issuer, aud names the gateway's client, and iat is
// within the allowed skew (plus leeway) of now in either direction. exp
// and nbf, which RFC 9701 does not require, are checked when present: nbf
// with the leeway, exp strictly (a skew never extends a lifetime).
func (c *Client) checkRFC9701Claims(status int, cl claims) error {
	iss, err := cl.str("iss")
	if err != nil || iss != c.issuer {
		return badResponse(status, "introspection response jwt has an unexpected issuer")
	}
	aud, err := cl.audience()
	if err != nil || !slices.Contains(aud, c.auth.clientID) {
		return badResponse(status, "introspection response jwt is not addressed to the gateway's client_id")
	}
	now := c.now()
	window := c.iatSkew + c.leeway
	iat, err := cl.numericDate("iat")
	switch {
	case err != nil:
		return badResponse(status, "introspection response jwt: %w", err)
	case iat.IsZero():
		return badResponse(status, `introspection response jwt has no "iat"`)
	case iat.After(now.Add(window)):
		return badResponse(status, `introspection response jwt "iat" is in the future (more than %s ahead)`, window)
	case iat.Before(now.Add(-window)):
		return badResponse(status, `introspection response jwt "iat" is more than %s old`, window)
	}
	exp, err := cl.numericDate("exp")
	switch {
	case err != nil:
		return badResponse(status, "introspection response jwt: %w", err)
	case !exp.IsZero() && !now.Before(exp):
		return badResponse(status, "introspection response jwt has expired")
	}
	nbf, err := cl.numericDate("nbf")
	switch {
	case err != nil:
		return badResponse(status, "introspection response jwt: %w", err)
	case nbf.After(now.Add(c.leeway)):
		return badResponse(status, "introspection response jwt is not yet valid")
	}
	return nil
}
