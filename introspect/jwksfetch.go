package introspect

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"time"
)

// jwksFetcher makes one JWKS request: a body size cap, classification of
// every failure into an *Error whose text the AS cannot choose, and the
// response's max-age for scheduling the next refresh.
type jwksFetcher struct {
	client   *http.Client
	timeout  time.Duration
	maxBytes int64
}

// fetch GETs the key set at uri within ctx and parses it. maxAge is the
// response's Cache-Control max-age, or -1 when it has none.
func (f *jwksFetcher) fetch(ctx context.Context, uri string) (set *keySet, maxAge time.Duration, e *Error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, -1, badResponse(0, "building as jwks request failed")
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	req.Header.Set("User-Agent", userAgent)

	resp, err := f.client.Do(req)
	if err != nil {
		return nil, -1, jwksTransportError(ctx, "as jwks request", err)
	}
	defer resp.Body.Close()

	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusServiceUnavailable:
		e := unavailable(resp.StatusCode, "as jwks endpoint answered status %d", resp.StatusCode)
		e.RetryAfter = parseRetryAfter(resp.Header, time.Now())
		return nil, -1, e
	default:
		return nil, -1, badResponse(resp.StatusCode, "as jwks endpoint answered status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.maxBytes+1))
	if err != nil {
		e := jwksTransportError(ctx, "reading as jwks response", err)
		e.Status = resp.StatusCode
		return nil, -1, e
	}
	if int64(len(body)) > f.maxBytes {
		return nil, -1, badResponse(resp.StatusCode, "as jwks response exceeds %d bytes", f.maxBytes)
	}
	set, err = parseKeySet(body)
	if err != nil {
		return nil, -1, &Error{Kind: KindBadResponse, Status: resp.StatusCode, Err: err}
	}
	return set, parseMaxAge(resp.Header), nil
}

// jwksTransportError classifies a failed JWKS request like transportError,
// but names the failure by class only: the messages of the net, tls and
// x509 packages carry text the other side chooses (certificate names, the
// target of a redirect), and an error value must not. The cause stays
// reachable through errors.Is and errors.As.
func jwksTransportError(ctx context.Context, what string, err error) *Error {
	e := transportError(ctx, what, err)
	if errors.Is(e.Err, context.DeadlineExceeded) || errors.Is(e.Err, context.Canceled) {
		return e // fixed text
	}
	class := "failed"
	var (
		ne  net.Error
		cve *tls.CertificateVerificationError
		uae x509.UnknownAuthorityError
		hne x509.HostnameError
		cie x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &cve) || errors.As(err, &uae) || errors.As(err, &hne) || errors.As(err, &cie):
		class = "failed: tls certificate not accepted"
	case errors.Is(err, errJWKSRedirect):
		class = "failed: redirect refused"
	case errors.As(err, &ne):
		class = "failed: network error"
	}
	e.Err = &hiddenCause{msg: what + " " + class, cause: err}
	return e
}

// errJWKSRedirect marks a redirect the default JWKS client refused.
var errJWKSRedirect = errors.New("redirect refused")

// jwksRedirects is limitedRedirects with its refusals marked, so they can
// be named without quoting the Location the AS sent.
func jwksRedirects(req *http.Request, via []*http.Request) error {
	if err := limitedRedirects(req, via); err != nil {
		return &hiddenCause{msg: errJWKSRedirect.Error(), cause: errors.Join(errJWKSRedirect, err)}
	}
	return nil
}

// hiddenCause is an error with a fixed message that still unwraps to its
// cause, for errors.Is and errors.As.
type hiddenCause struct {
	msg   string
	cause error
}

func (h *hiddenCause) Error() string { return h.msg }
func (h *hiddenCause) Unwrap() error { return h.cause }
