package introspect

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
)

// transportCause describes why a round trip failed without repeating what
// the AS sent: Go's messages for a malformed reply quote the reply's
// status line or header, and certificate errors list the names in the
// AS's certificate. Socket errors are kept as they are (they name only
// the configured endpoint's address and the system's error); anything
// else is quoted and bounded by quoteASText.
func transportCause(err error) string {
	var cve *tls.CertificateVerificationError
	var op *net.OpError
	switch {
	case errors.As(err, &cve):
		return "tls: " + certificateProblem(cve.Err)
	case errors.As(err, &op):
		return op.Error()
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed before a complete response"
	}
	msg := err.Error()
	for _, m := range malformedReplies {
		if strings.Contains(msg, m.goText) {
			return "invalid response: " + m.ours
		}
	}
	const broken = "net/http: HTTP/1.x transport connection broken: "
	return "invalid response: " + quoteASText(strings.TrimPrefix(msg, broken))
}

// malformedReplies names, in words of our own, the malformed replies whose
// net/http messages go on to quote the offending bytes. A message not
// listed here (a Go release may reword one) is still bounded by
// quoteASText, only less readable.
var malformedReplies = []struct{ goText, ours string }{
	{"malformed HTTP response", "malformed status line"},
	{"malformed HTTP status code", "malformed status code"},
	{"malformed HTTP version", "malformed http version"},
	{"malformed MIME header", "malformed header"},
	{"server response headers exceeded", "response headers too large"},
}

// certificateProblem names what is wrong with the AS's certificate in
// words of our own.
func certificateProblem(err error) string {
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &unknown):
		return "certificate signed by an unknown authority"
	case errors.As(err, &host):
		return "certificate is not valid for the endpoint's host"
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return "certificate has expired or is not yet valid"
	case errors.As(err, &invalid):
		return "certificate is not valid"
	}
	return "certificate did not verify"
}

// causeError shows a message of our own for an error while keeping it in
// the chain, so errors.Is and errors.As still see the real cause.
type causeError struct {
	msg string
	err error
}

func (e *causeError) Error() string { return e.msg }
func (e *causeError) Unwrap() error { return e.err }
