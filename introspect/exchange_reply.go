package introspect

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// rejectionCodes are the RFC 6749 §5.2 / RFC 8693 §2.2.2 error codes by
// which the AS refuses the subject token (or the target asked for): the
// client's token is unusable here, not the gateway misconfigured.
var rejectionCodes = map[string]bool{
	"invalid_request": true,
	"invalid_target":  true,
	"invalid_grant":   true,
}

// knownErrorCodes are other standard codes, quoted in messages to help the
// operator. Only codes from this fixed list are ever quoted: the rest of an
// error reply is AS text and stays out of messages.
var knownErrorCodes = map[string]bool{
	"invalid_client":         true,
	"unauthorized_client":    true,
	"unsupported_grant_type": true,
	"invalid_scope":          true,
}

// handleRefusal classifies a 400 reply by its "error" code.
func (e *Exchanger) handleRefusal(ctx context.Context, resp *http.Response) error {
	status := resp.StatusCode
	if mt := mediaType(resp.Header); mt != "application/json" {
		e.drain(resp.Body)
		return badResponse(status, "token exchange endpoint answered status %d with media type %s", status, quoteAS(mt))
	}
	body, err := e.readBody(ctx, resp)
	if err != nil {
		return err
	}
	obj, err := parseJSONObject(body)
	if err != nil {
		return badResponse(status, "token exchange endpoint answered status %d with a body that is not a json object", status)
	}
	code, _ := claims(obj).str("error")
	switch {
	case rejectionCodes[code]:
		return &Error{Kind: KindRejected, Status: status, Err: fmt.Errorf("token exchange endpoint rejected the subject token (%s)", code)}
	case knownErrorCodes[code]:
		return badResponse(status, "token exchange endpoint answered status %d (%s)", status, code)
	default:
		return badResponse(status, "token exchange endpoint answered status %d", status)
	}
}

// handleIssued checks a 200 reply (RFC 8693 §2.2.1) and the JWT it issues.
func (e *Exchanger) handleIssued(ctx context.Context, resp *http.Response) (*Exchanged, error) {
	status := resp.StatusCode
	cl, err := e.readJSONReply(ctx, resp)
	if err != nil {
		return nil, err
	}

	issued, err := cl.str("issued_token_type")
	if err != nil || !e.acceptsIssuedType(issued) {
		return nil, badResponse(status, "token exchange response issued_token_type is not the requested %q", e.requested)
	}
	if tt, err := cl.str("token_type"); err != nil || (tt != "" && !strings.EqualFold(tt, "bearer") && tt != "N_A") {
		return nil, badResponse(status, "token exchange response token_type is not Bearer")
	}
	expiresIn, err := expiresIn(cl)
	if err != nil {
		return nil, badResponse(status, "token exchange response: %w", err)
	}
	jwt, err := cl.str("access_token")
	if err != nil || jwt == "" {
		return nil, badResponse(status, "token exchange response has no access_token")
	}
	jws, err := parseCompactJWS(jwt)
	if err != nil {
		return nil, badResponse(status, "token exchange response access_token: %w", err)
	}
	if e.verifier != nil {
		if err := verifyError(status, "verifying jwt from token exchange", e.verifier.Verify(ctx, []byte(jwt))); err != nil {
			return nil, err
		}
	}
	res := &Result{Active: true, JWT: jwt, MaxAge: -1}
	if err := claims(jws.claims).fill(res); err != nil {
		return nil, badResponse(status, "jwt from token exchange: %w", err)
	}
	if e.issuer != "" && res.Issuer != e.issuer {
		return nil, badResponse(status, "jwt from token exchange has an unexpected issuer")
	}
	res.JWTExpiresAt = res.ExpiresAt

	now := e.now()
	out := &Exchanged{JWT: jwt, ExpiresAt: res.ExpiresAt, Claims: res}
	if expiresIn >= 0 {
		if t := now.Add(expiresIn); out.ExpiresAt.IsZero() || t.Before(out.ExpiresAt) {
			out.ExpiresAt = t
		}
	}
	if !out.ExpiresAt.IsZero() && !out.ExpiresAt.After(now) {
		return nil, badResponse(status, "token exchange issued a jwt that has already expired")
	}
	return out, nil
}

// acceptsIssuedType reports whether the issued_token_type is what was
// asked for. A JWT is an access token too, so TokenTypeJWT satisfies a
// request for TokenTypeAccessToken; the reverse does not hold.
func (e *Exchanger) acceptsIssuedType(issued string) bool {
	if issued == e.requested {
		return true
	}
	return e.requested == TokenTypeAccessToken && issued == TokenTypeJWT
}

// maxExpiresIn bounds expires_in so it cannot overflow time.Duration.
const maxExpiresIn = 10 * 365 * 24 * time.Hour

// expiresIn reads the optional "expires_in" (seconds, a JSON number); -1
// when absent.
func expiresIn(cl claims) (time.Duration, error) {
	v := cl.raw("expires_in")
	if v == nil {
		return -1, nil
	}
	// v is valid JSON (the object parsed), so a leading digit or '-' means
	// a JSON number, which ParseFloat reads exactly.
	if v[0] != '-' && (v[0] < '0' || v[0] > '9') {
		return 0, errors.New(`"expires_in" is not a number`)
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || math.IsNaN(f) || f < 0 {
		return 0, errors.New(`"expires_in" is not a non-negative number`)
	}
	d := time.Duration(f * float64(time.Second))
	if f*float64(time.Second) > float64(maxExpiresIn) {
		d = maxExpiresIn
	}
	return d, nil
}
