package introspect

import (
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

// poster is the HTTP plumbing shared by the introspection client and the
// token exchanger: one authenticated form POST to one AS endpoint, a single
// retry on dial errors, a body size cap, and the classification of
// transport failures. Its messages name the endpoint's role (name), never
// its URL, the form or the reply.
type poster struct {
	name       string // "introspection" or "token exchange"
	endpoint   string
	accept     string
	auth       *authenticator
	httpClient *http.Client
	ownClient  bool
	maxBody    int64
	retryDelay time.Duration
}

// posterConfig is what newPoster validates.
type posterConfig struct {
	name       string
	endpoint   string // already checked with CheckURL
	accept     string
	maxBody    int64
	httpClient *http.Client
	auth       authConfig
}

// newPoster validates pc and applies defaults. It does no network I/O.
func newPoster(pc posterConfig) (*poster, error) {
	pc.auth.endpoint = pc.endpoint
	pc.auth.httpClient = pc.httpClient
	auth, err := newAuthenticator(pc.auth)
	if err != nil {
		return nil, err
	}
	p := &poster{
		name:       pc.name,
		endpoint:   pc.endpoint,
		accept:     pc.accept,
		auth:       auth,
		httpClient: pc.httpClient,
		maxBody:    pc.maxBody,
		retryDelay: 50 * time.Millisecond,
	}
	switch {
	case p.maxBody < 0:
		return nil, fmt.Errorf("max_body_bytes must not be negative, got %d", p.maxBody)
	case p.maxBody == 0:
		p.maxBody = DefaultMaxBodyBytes
	}
	if p.httpClient == nil {
		p.httpClient = newDefaultHTTPClient(noRedirects)
		p.ownClient = true
	}
	return p, nil
}

// closeIdle closes idle connections of our own HTTP client; a
// caller-supplied one is left to its owner.
func (p *poster) closeIdle() {
	if p.ownClient {
		p.httpClient.CloseIdleConnections()
	}
}

// send POSTs form, with client authentication added, retrying once only
// when the connection could not be established (so the AS cannot have seen
// the request). Timeouts are never retried: the AS may be slow rather than
// absent, and a retry would only add load and exceed the time budget. Each
// attempt is authenticated afresh, so a client assertion is never reused.
func (p *poster) send(ctx context.Context, form url.Values, traceparent string) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		f := make(url.Values, len(form)+3)
		for k, v := range form {
			f[k] = v
		}
		header := make(http.Header, 6)
		if err := p.auth.apply(f, header); err != nil {
			return nil, &Error{Kind: KindBadResponse, Err: fmt.Errorf("%s request: %w", p.name, err)}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.endpoint, strings.NewReader(f.Encode()))
		if err != nil {
			// The endpoint was validated at construction; this is
			// unreachable in practice, and the message must not include
			// the URL's query.
			return nil, badResponse(0, "building %s request failed", p.name)
		}
		for k, v := range header {
			req.Header[k] = v
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", p.accept)
		req.Header.Set("User-Agent", userAgent)
		if traceparent != "" {
			req.Header.Set("Traceparent", traceparent)
		}

		resp, err := p.httpClient.Do(req)
		if err == nil {
			return resp, nil
		}
		if attempt == 0 && isDialError(err) && ctx.Err() == nil {
			t := time.NewTimer(p.retryDelay)
			select {
			case <-t.C:
				continue
			case <-ctx.Done():
				t.Stop()
			}
		}
		return nil, transportError(ctx, p.name+" request", err)
	}
}

// drain discards what is left of a body we do not use (up to the size cap)
// so the connection can be reused.
func (p *poster) drain(body io.Reader) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, p.maxBody))
}

// readBody reads the whole body up to the cap. A body over the cap is a bad
// response; a read that fails (timeout, reset) means the AS went away
// mid-reply, which is an availability problem.
func (p *poster) readBody(ctx context.Context, resp *http.Response) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(resp.Body, p.maxBody+1))
	if err != nil {
		e := transportError(ctx, "reading "+p.name+" response", err)
		e.Status = resp.StatusCode
		return nil, e
	}
	if int64(len(b)) > p.maxBody {
		return nil, badResponse(resp.StatusCode, "%s response exceeds %d bytes", p.name, p.maxBody)
	}
	return b, nil
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

// mediaType returns the parsed, lowercased media type of the response, or ""
// when the header is missing or unparseable.
func mediaType(h http.Header) string {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		return ""
	}
	return mt
}
