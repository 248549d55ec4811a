package introspect

import (
	"fmt"
	"time"
)

// ErrorKind classifies an introspection failure by what the gateway should
// answer: the AS being away is a different fault (503, try again) from the AS
// answering something unusable (502, fix the configuration).
type ErrorKind int

const (
	// KindUnavailable means the AS (or its JWKS) could not be reached, timed
	// out, or answered 503; the gateway answers 503, with Retry-After when
	// known.
	KindUnavailable ErrorKind = iota + 1
	// KindBadResponse means the AS answered, but with a status other than
	// 200/204/503, a redirect, a wrong media type, an oversized or malformed
	// body, an issuer mismatch or a JWT that fails verification; the gateway
	// answers 502.
	KindBadResponse
	// KindRejected means the AS refused the token the gateway presented on
	// the client's behalf: a token exchange answered 400 with
	// "invalid_request", "invalid_target" or "invalid_grant". The client's
	// token is unusable for this resource; the gateway answers 401
	// invalid_token.
	KindRejected
)

// String returns a short lowercase name for the kind, for logs and metrics.
func (k ErrorKind) String() string {
	switch k {
	case KindUnavailable:
		return "unavailable"
	case KindBadResponse:
		return "bad_response"
	case KindRejected:
		return "rejected"
	default:
		return fmt.Sprintf("kind(%d)", int(k))
	}
}

// Error is the error type returned by [Client.Introspect],
// [Exchanger.Exchange] and [JWKSVerifier.Verify] for every failure that
// involves the AS. Its message
// never contains a token, a JWT, a secret or an AS response body, so it may
// be logged as is.
type Error struct {
	// Kind says which gateway status the failure maps to.
	Kind ErrorKind
	// Status is the HTTP status the AS answered with, 0 if there was no
	// response (connection error, timeout). From Introspect and Exchange it
	// is always the reply's status (200 when the reply's JWT failed
	// verification); from Verify, the JWKS endpoint's status.
	Status int
	// RetryAfter is taken from the Retry-After header of a 503, 0 if absent
	// or unparseable.
	RetryAfter time.Duration
	// Err is the underlying cause.
	Err error
}

// Error returns the cause's message, or a generic one naming the kind and
// status when there is no cause.
func (e *Error) Error() string {
	if e.Err != nil {
		return e.Err.Error()
	}
	if e.Status != 0 {
		return fmt.Sprintf("introspection failed (%s, status %d)", e.Kind, e.Status)
	}
	return fmt.Sprintf("introspection failed (%s)", e.Kind)
}

// Unwrap returns the underlying cause so errors.Is/As see through it (for
// example errors.Is(err, context.DeadlineExceeded)).
func (e *Error) Unwrap() error { return e.Err }

// unavailable builds a KindUnavailable error with a formatted cause.
func unavailable(status int, format string, args ...any) *Error {
	return &Error{Kind: KindUnavailable, Status: status, Err: fmt.Errorf(format, args...)}
}

// badResponse builds a KindBadResponse error with a formatted cause.
func badResponse(status int, format string, args ...any) *Error {
	return &Error{Kind: KindBadResponse, Status: status, Err: fmt.Errorf(format, args...)}
}
