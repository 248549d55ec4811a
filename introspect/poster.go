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
	"slices"
	"strconv"
	"strings"
	"time"
)

// poster is the HTTP plumbing shared by the introspection client and the
// token exchanger: one authenticated form POST to one AS endpoint within a
// time budget, a single retry on dial errors, a body size cap, and the
// classification of transport failures and unexpected statuses. Its
// messages name the endpoint's role (name), never its URL, the form or the
// reply.
type poster struct {
	name       string // "introspection" or "token exchange"
	endpoint   string
	accept     string
	auth       *authenticator
	httpClient *http.Client
	ownClient  bool
	maxBody    int64
	timeout    time.Duration
	now        func() time.Time
	retryDelay time.Duration
}

// posterConfig is what newPoster validates: the settings [Config] and
// [ExchangeConfig] have in common, which [New] and [NewExchanger] pass on
// as they are.
type posterConfig struct {
	name       string
	endpoint   string // already checked with checkEndpoint
	accept     string
	timeout    time.Duration
	maxBody    int64
	httpClient *http.Client
	now        func() time.Time
	auth       authConfig
}

// checkEndpoint validates a configured endpoint URL; label names the
// setting in the messages ("endpoint", "token exchange endpoint").
func checkEndpoint(label, endpoint string) error {
	if endpoint == "" {
		return errors.New(label + " is required")
	}
	if err := CheckURL(endpoint); err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	return nil
}

// newPoster validates pc and applies defaults (time.Now, DefaultTimeout,
// DefaultMaxBodyBytes, our own HTTP client). It does no network I/O.
func newPoster(pc posterConfig) (*poster, error) {
	if pc.now == nil {
		pc.now = time.Now
	}
	switch {
	case pc.timeout < 0:
		return nil, fmt.Errorf("timeout must not be negative, got %s", pc.timeout)
	case pc.timeout == 0:
		pc.timeout = DefaultTimeout
	}
	pc.auth.endpoint = pc.endpoint
	pc.auth.httpClient = pc.httpClient
	pc.auth.now = pc.now
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
		timeout:    pc.timeout,
		now:        pc.now,
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

// roundTrip makes one call to p's endpoint: it bounds ctx by p's timeout,
// sends form (see send) and hands the response to handle, which reads what
// it needs of the body within that same budget; the body is closed
// afterwards.
func roundTrip[T any](ctx context.Context, p *poster, form url.Values, traceparent string, handle func(context.Context, *http.Response) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	resp, err := p.send(ctx, form, traceparent)
	if err != nil {
		var zero T
		return zero, err
	}
	defer resp.Body.Close()
	return handle(ctx, resp)
}

// send POSTs form, with client authentication added, retrying once only
// when the connection could not be established (so the AS cannot have seen
// the request). Timeouts are never retried: the AS may be slow rather than
// absent, and a retry would only add load and exceed the time budget. Each
// attempt is authenticated afresh, so a client assertion is never reused.
// traceparent is forwarded only when it is a valid W3C traceparent.
func (p *poster) send(ctx context.Context, form url.Values, traceparent string) (*http.Response, error) {
	if !validTraceparent(traceparent) {
		traceparent = ""
	}
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

// statusError drains a reply whose status the caller does not handle and
// classifies it: 503 is KindUnavailable (with its Retry-After), anything
// else, a redirect included, KindBadResponse.
func (p *poster) statusError(resp *http.Response) *Error {
	p.drain(resp.Body)
	switch status := resp.StatusCode; {
	case status == http.StatusServiceUnavailable:
		e := unavailable(status, "%s endpoint answered status %d", p.name, status)
		e.RetryAfter = parseRetryAfter(resp.Header, p.now())
		return e
	case status >= 300 && status < 400:
		return badResponse(status, "%s endpoint answered status %d (redirects are not followed)", p.name, status)
	default:
		return badResponse(status, "%s endpoint answered status %d", p.name, status)
	}
}

// noContentError drains a reply that has no content where want was
// expected and reports it as KindBadResponse.
func (p *poster) noContentError(resp *http.Response, want string) *Error {
	p.drain(resp.Body)
	return badResponse(resp.StatusCode, "%s endpoint answered status %d, want %s", p.name, resp.StatusCode, want)
}

// mediaTypeError drains a reply whose media type mt is not the wanted one
// and reports it as KindBadResponse.
func (p *poster) mediaTypeError(resp *http.Response, mt, want string) *Error {
	p.drain(resp.Body)
	return badResponse(resp.StatusCode, "%s response has media type %s, want %q", p.name, quoteAS(mt), want)
}

// maxQuotedAS is how much AS-chosen text (a media type) an error message
// may quote: enough to tell the operator what the AS sent, too little for
// the AS to grow messages and log lines at will.
const maxQuotedAS = 32

// quoteAS quotes text the AS chose for an error message: %q escaping keeps
// control characters out of log lines, and the cut bounds the length.
func quoteAS(s string) string {
	if len(s) > maxQuotedAS {
		return strconv.Quote(s[:maxQuotedAS]) + " (cut)"
	}
	return strconv.Quote(s)
}

// readJSONReply reads a reply that must be an application/json object.
func (p *poster) readJSONReply(ctx context.Context, resp *http.Response) (claims, error) {
	if mt := mediaType(resp.Header); mt != "application/json" {
		return nil, p.mediaTypeError(resp, mt, "application/json")
	}
	body, err := p.readBody(ctx, resp)
	if err != nil {
		return nil, err
	}
	obj, err := parseJSONObject(body)
	if err != nil {
		return nil, badResponse(resp.StatusCode, "%s response is not a json object", p.name)
	}
	return claims(obj), nil
}

// readJWTReply reads a reply whose media type is want (or one of also) and
// whose body is one JWT, trimmed of surrounding white space; an empty body
// is KindBadResponse. The JWT is not parsed.
func (p *poster) readJWTReply(ctx context.Context, resp *http.Response, want string, also ...string) (string, error) {
	if mt := mediaType(resp.Header); mt != want && !slices.Contains(also, mt) {
		return "", p.mediaTypeError(resp, mt, want)
	}
	body, err := p.readBody(ctx, resp)
	if err != nil {
		return "", err
	}
	jwt := string(bytes.TrimSpace(body))
	if jwt == "" {
		return "", badResponse(resp.StatusCode, "%s response is empty", p.name)
	}
	return jwt, nil
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
