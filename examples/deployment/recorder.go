package main

import (
	"net/http"
	"strings"
	"sync"
)

// recorder records the bearer token of every request a component received
// (as a handler) or sent (as a transport), so the walkthrough can show which
// token travelled where. The tokens stay in memory and are never printed.
type recorder struct {
	next http.Handler

	mu   sync.Mutex
	seen []seenRequest
}

// seenRequest is one recorded request.
type seenRequest struct {
	method, url string
	token       string // the Bearer credential, "" if none
}

func newRecorder(next http.Handler) *recorder { return &recorder{next: next} }

func (rec *recorder) add(r *http.Request) {
	scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "bearer") {
		cred = ""
	}
	rec.mu.Lock()
	rec.seen = append(rec.seen, seenRequest{method: r.Method, url: r.URL.String(), token: cred})
	rec.mu.Unlock()
}

// ServeHTTP records r and hands it on.
func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec.add(r)
	rec.next.ServeHTTP(w, r)
}

// transport returns next, recording every request sent through it.
func (rec *recorder) transport(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		rec.add(r)
		return next.RoundTrip(r)
	})
}

// requests returns what was recorded so far.
func (rec *recorder) requests() []seenRequest {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]seenRequest(nil), rec.seen...)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
