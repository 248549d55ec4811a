package introspect

import (
	"crypto/tls"
	"errors"
	"net/http"
	"time"
)

// userAgent identifies the gateway to the AS (and to JWKS endpoints).
const userAgent = "caddy-phantom-token"

// noRedirects makes the client hand back the 3xx response itself: a
// redirected introspection POST would carry the gateway's credentials and the
// token to wherever the Location points, so a redirect is reported as a bad
// response instead.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// limitedRedirects follows at most 3 redirects of a JWKS GET (no credentials
// are sent) and only to URLs that pass the same https/loopback rule as the
// configured one, so a redirect cannot downgrade key retrieval to plain http.
func limitedRedirects(req *http.Request, via []*http.Request) error {
	if len(via) >= 3 {
		return errors.New("stopped after 3 redirects")
	}
	return CheckURL(req.URL.String())
}

// newDefaultHTTPClient returns a client with its own transport (cloned from
// http.DefaultTransport, so proxy settings from the environment still apply),
// TLS 1.2 minimum with certificate verification, and enough idle connections
// per host for a busy gateway talking to a single AS. No client-wide timeout
// is set: every call carries a context deadline instead.
func newDefaultHTTPClient(checkRedirect func(*http.Request, []*http.Request) error) *http.Client {
	var tr *http.Transport
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		tr = dt.Clone()
	} else {
		tr = &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true}
	}
	tr.MaxIdleConns = 256
	tr.MaxIdleConnsPerHost = 64
	tr.IdleConnTimeout = 90 * time.Second
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, CheckRedirect: checkRedirect}
}
