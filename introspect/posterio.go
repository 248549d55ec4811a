package introspect

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// The header values every request to the AS carries. Requests share these
// slices (read-only: nothing appends to or edits a request's header after
// newRequest), so a request does not allocate them again.
var (
	formContentType = []string{"application/x-www-form-urlencoded"}
	userAgentHeader = []string{userAgent}
)

// newRequest builds one attempt: form plus the client authentication,
// form-encoded, with the fixed headers set directly (already canonical,
// so no Header.Set work per request).
func (p *poster) newRequest(ctx context.Context, form url.Values, traceparent string) (*http.Request, error) {
	authForm, authorization, err := p.auth.encoded()
	if err != nil {
		return nil, &Error{Kind: KindBadResponse, Err: fmt.Errorf("%s request: %w", p.name, err)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.endpoint, strings.NewReader(authForm+form.Encode()))
	if err != nil {
		// The endpoint was validated at construction; this is unreachable
		// in practice, and the message must not include the URL's query.
		return nil, badResponse(0, "building %s request failed", p.name)
	}
	h := make(http.Header, 5)
	h["Content-Type"] = formContentType
	h["Accept"] = p.acceptHeader
	h["User-Agent"] = userAgentHeader
	if authorization != nil {
		h["Authorization"] = authorization
	}
	if traceparent != "" {
		h["Traceparent"] = []string{traceparent}
	}
	req.Header = h
	return req, nil
}

// do sends one request. Our own client goes straight to its transport:
// http.Client.Do would copy the headers for a redirect it never follows
// (ours follows none, see noRedirects; a transport does not follow any
// either, and hands back the 3xx as is) and wrap errors in a *url.Error
// that transportError unwraps again. A caller's client gets Do, since its
// redirect policy, cookie jar and timeout are its owner's to decide.
func (p *poster) do(req *http.Request) (*http.Response, error) {
	if p.transport != nil {
		return p.transport.RoundTrip(req)
	}
	return p.httpClient.Do(req)
}

// readAtMost reads r to its end, failing past limit bytes: it returns what
// it read, limit+1 bytes at most, so that the caller can tell. sizeHint
// (the Content-Length, -1 when unknown) sizes the buffer once, where
// io.ReadAll would grow it from 512 bytes in several copies.
func readAtMost(r io.Reader, limit, sizeHint int64) ([]byte, error) {
	size := int64(512)
	if sizeHint >= 0 && sizeHint <= limit {
		// One byte more, so that the read that sees the end needs no room.
		size = sizeHint + 1
	}
	lr := io.LimitedReader{R: r, N: limit + 1}
	b := make([]byte, 0, size)
	for {
		n, err := lr.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}
