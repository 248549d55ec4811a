package introspect

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
)

// NewTLSClientAuthHTTPClient returns an HTTP client for [TLSClientAuth]
// (RFC 8705 §2.1): it presents the certificate chain of certFile with the
// private key of keyFile (both PEM), and verifies the AS's server
// certificate against the PEM bundle caFile when set, else the system
// roots. Otherwise it is the package's default client: TLS 1.2 minimum,
// redirects not followed, its own pooled transport. It reads the files and
// does no network I/O. Errors name the files, never their content. The
// caller owns the client: call its CloseIdleConnections when done.
func NewTLSClientAuthHTTPClient(certFile, keyFile, caFile string) (*http.Client, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("tls client auth needs a certificate file and a key file")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		// crypto/tls and os errors describe the file or the mismatch,
		// never the key.
		return nil, fmt.Errorf("tls client certificate %s / key %s: %w", certFile, keyFile, err)
	}
	c, err := NewCAHTTPClient(caFile)
	if err != nil {
		return nil, err
	}
	c.Transport.(*http.Transport).TLSClientConfig.Certificates = []tls.Certificate{cert}
	return c, nil
}

// NewCAHTTPClient returns the package's default client (TLS 1.2 minimum,
// redirects not followed, its own pooled transport) verifying the AS's
// server certificate against the PEM bundle caFile when set, else the
// system roots: for an AS behind a private CA, whatever the client
// authentication. It reads the file and does no network I/O. The caller
// owns the client: call its CloseIdleConnections when done.
func NewCAHTTPClient(caFile string) (*http.Client, error) {
	return newCAHTTPClient(caFile, noRedirects)
}

// NewJWKSCAHTTPClient is NewCAHTTPClient for [NewJWKSVerifier]: it follows
// redirects as the verifier's own client does (at most 3, to https only).
func NewJWKSCAHTTPClient(caFile string) (*http.Client, error) {
	return newCAHTTPClient(caFile, jwksRedirects)
}

func newCAHTTPClient(caFile string, checkRedirect func(*http.Request, []*http.Request) error) (*http.Client, error) {
	var roots *x509.CertPool
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("tls ca file: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca file %s: no pem certificate found", caFile)
		}
	}
	c := newDefaultHTTPClient(checkRedirect)
	c.Transport.(*http.Transport).TLSClientConfig.RootCAs = roots
	return c, nil
}
