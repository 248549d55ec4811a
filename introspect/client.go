package introspect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Introspect asks the AS about token and returns its decision.
//
// traceparent is the W3C trace context of the request being authorized; it is
// forwarded only when syntactically valid, and nothing else from the
// client's request reaches the AS. The whole call, including a retry, the
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
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	if !validTraceparent(traceparent) {
		traceparent = ""
	}
	resp, err := c.send(ctx, c.formBody(token), traceparent)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()

	switch {
	case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusNoContent:
		return c.handleSuccess(ctx, resp)
	case resp.StatusCode == http.StatusServiceUnavailable:
		c.drain(resp.Body)
		e := unavailable(resp.StatusCode, "introspection endpoint answered status %d", resp.StatusCode)
		e.RetryAfter = parseRetryAfter(resp.Header, time.Now())
		return nil, e
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		c.drain(resp.Body)
		return nil, badResponse(resp.StatusCode, "introspection endpoint answered status %d (redirects are not followed)", resp.StatusCode)
	default:
		c.drain(resp.Body)
		return nil, badResponse(resp.StatusCode, "introspection endpoint answered status %d", resp.StatusCode)
	}
}

// formBody builds the RFC 7662 request body from scratch.
func (c *Client) formBody(token string) string {
	form := url.Values{
		"token":           {token},
		"token_type_hint": {"access_token"},
	}
	if c.auth == ClientSecretPost {
		form.Set("client_id", c.clientID)
		form.Set("client_secret", c.secret)
	}
	return form.Encode()
}

// send POSTs the request, retrying once only when the connection could not
// be established (so the AS cannot have seen the request). Timeouts are
// never retried: the AS may be slow rather than absent, and a retry would
// only add load and exceed the time budget.
func (c *Client) send(ctx context.Context, body, traceparent string) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, strings.NewReader(body))
		if err != nil {
			// The endpoint was validated in New; this is unreachable in
			// practice, and the message must not include the URL's query.
			return nil, badResponse(0, "building introspection request failed")
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", c.accept)
		req.Header.Set("User-Agent", userAgent)
		if c.basicAuth != "" {
			req.Header.Set("Authorization", c.basicAuth)
		}
		if traceparent != "" {
			req.Header.Set("Traceparent", traceparent)
		}

		resp, err := c.httpClient.Do(req)
		if err == nil {
			return resp, nil
		}
		if attempt == 0 && isDialError(err) && ctx.Err() == nil {
			t := time.NewTimer(c.retryDelay)
			select {
			case <-t.C:
				continue
			case <-ctx.Done():
				t.Stop()
			}
		}
		return nil, transportError(ctx, "introspection request", err)
	}
}

// isDialError reports whether err is a failure to connect (refused,
// unreachable, DNS), i.e. the request was certainly not sent.
func isDialError(err error) bool {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		return false
	}
	return !op.Timeout()
}

// transportError maps a failed round trip (no response) to KindUnavailable.
// The *url.Error wrapper is dropped from the message because it repeats the
// full URL; the chain keeps the real cause for errors.Is.
func transportError(ctx context.Context, what string, err error) *Error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		return &Error{Kind: KindUnavailable, Err: fmt.Errorf("%s timed out: %w", what, context.DeadlineExceeded)}
	case errors.Is(err, context.Canceled) || errors.Is(ctx.Err(), context.Canceled):
		return &Error{Kind: KindUnavailable, Err: fmt.Errorf("%s cancelled: %w", what, context.Canceled)}
	default:
		return &Error{Kind: KindUnavailable, Err: fmt.Errorf("%s failed: %w", what, err)}
	}
}

// drain discards what is left of a body we do not use (up to the size cap)
// so the connection can be reused.
func (c *Client) drain(body io.Reader) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, c.maxBody))
}

// readBody reads the whole body up to the cap. A body over the cap is a bad
// response; a read that fails (timeout, reset) means the AS went away
// mid-reply, which is an availability problem.
func (c *Client) readBody(ctx context.Context, resp *http.Response) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
	if err != nil {
		e := transportError(ctx, "reading introspection response", err)
		e.Status = resp.StatusCode
		return nil, e
	}
	if int64(len(b)) > c.maxBody {
		return nil, badResponse(resp.StatusCode, "introspection response exceeds %d bytes", c.maxBody)
	}
	return b, nil
}

// mediaType returns the parsed, lowercased media type of the response, or ""
// when the header is missing or unparseable.
func mediaType(h http.Header) string {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		return ""
	}
	return mt
}

// handleSuccess interprets a 200 or 204 according to the configured format.
func (c *Client) handleSuccess(ctx context.Context, resp *http.Response) (*Result, error) {
	maxAge := parseMaxAge(resp.Header)
	switch c.format {
	case FormatJSON:
		return c.handleJSON(ctx, resp, maxAge)
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
	switch mt := mediaType(resp.Header); mt {
	case "application/jwt", "application/at+jwt":
	default:
		c.drain(resp.Body)
		return nil, badResponse(status, "introspection response has media type %q, want %q", mt, "application/jwt")
	}
	body, err := c.readBody(ctx, resp)
	if err != nil {
		return nil, err
	}
	jwt := string(bytes.TrimSpace(body))
	if jwt == "" {
		return nil, badResponse(status, "introspection response is empty")
	}
	jws, err := parseCompactJWS(jwt)
	if err != nil {
		return nil, badResponse(status, "introspection response: %w", err)
	}
	if err := c.verify(ctx, status, jwt); err != nil {
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

// handleJSON handles an RFC 7662 reply whose member c.jwtClaim holds the JWT.
func (c *Client) handleJSON(ctx context.Context, resp *http.Response, maxAge time.Duration) (*Result, error) {
	status := resp.StatusCode
	if status == http.StatusNoContent {
		c.drain(resp.Body)
		return nil, badResponse(status, "introspection endpoint answered status %d, want a json body", status)
	}
	if mt := mediaType(resp.Header); mt != "application/json" {
		c.drain(resp.Body)
		return nil, badResponse(status, "introspection response has media type %q, want %q", mt, "application/json")
	}
	body, err := c.readBody(ctx, resp)
	if err != nil {
		return nil, err
	}
	obj, err := parseJSONObject(body)
	if err != nil {
		return nil, badResponse(status, "introspection response is not a json object")
	}
	cl := claims(obj)

	// RFC 7662 §2.2: only the boolean true means active. A missing or
	// non-boolean "active" is not "inactive": the AS is not speaking RFC 7662
	// and the gateway cannot tell what it meant.
	switch a := cl.raw("active"); string(a) {
	case "true":
	case "false":
		return &Result{Active: false, MaxAge: maxAge}, nil
	case "":
		return nil, badResponse(status, `introspection response has no "active" member`)
	default:
		return nil, badResponse(status, `introspection response "active" member is not a boolean`)
	}

	res := &Result{Active: true, MaxAge: maxAge}
	if err := cl.fill(res); err != nil {
		return nil, badResponse(status, "introspection response: %w", err)
	}
	if c.issuer != "" && res.Issuer != "" && res.Issuer != c.issuer {
		return nil, badResponse(status, "introspection response has an unexpected issuer")
	}

	jwt, err := cl.str(c.jwtClaim)
	if err != nil || jwt == "" {
		return nil, badResponse(status, "introspection response member %q does not hold a jwt", c.jwtClaim)
	}
	jws, err := parseCompactJWS(jwt)
	if err != nil {
		return nil, badResponse(status, "introspection response member %q: %w", c.jwtClaim, err)
	}
	if err := c.verify(ctx, status, jwt); err != nil {
		return nil, err
	}
	jwtClaims := claims(jws.claims)
	if c.issuer != "" {
		iss, err := jwtClaims.str("iss")
		if err != nil || iss != c.issuer {
			return nil, badResponse(status, "jwt in introspection response member %q has an unexpected issuer", c.jwtClaim)
		}
	}
	if res.JWTExpiresAt, err = jwtClaims.numericDate("exp"); err != nil {
		return nil, badResponse(status, "jwt in introspection response member %q: %w", c.jwtClaim, err)
	}
	res.JWT = jwt
	return res, nil
}

// verify checks the JWT's signature when a verifier is configured. The
// verifier's kind is kept (an unreachable JWKS is KindUnavailable) and the
// status is that of the introspection reply.
func (c *Client) verify(ctx context.Context, status int, jwt string) error {
	if c.verifier == nil {
		return nil
	}
	err := c.verifier.Verify(ctx, []byte(jwt))
	if err == nil {
		return nil
	}
	var ve *Error
	if errors.As(err, &ve) {
		return &Error{Kind: ve.Kind, Status: status, Err: fmt.Errorf("verifying jwt from introspection endpoint: %w", ve.Err)}
	}
	return &Error{Kind: KindBadResponse, Status: status, Err: fmt.Errorf("verifying jwt from introspection endpoint: %w", err)}
}
