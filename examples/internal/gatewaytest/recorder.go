package gatewaytest

import (
	"net/http"
	"sync"
)

// Request is a request the upstream received, and the status it answered.
type Request struct {
	Method string
	Path   string
	Header http.Header // a copy
	Status int         // 0 until the handler writes a header
}

// Recorder wraps a handler (the MCP server) and records every request that
// reaches it. It is safe for concurrent use.
type Recorder struct {
	mu   sync.Mutex
	reqs []*Request
}

// Wrap returns next, recording each request before next serves it. The
// response writer it passes on still flushes (server-sent events stream
// through it) and unwraps for http.ResponseController.
func (rec *Recorder) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ur := &Request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone()}
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, ur)
		rec.mu.Unlock()
		sw := &statusWriter{ResponseWriter: w, rec: rec, ur: ur}
		next.ServeHTTP(sw, r)
		sw.setStatus(http.StatusOK) // no-op if the handler wrote a header
	})
}

// Requests returns a copy of every request received so far.
func (rec *Recorder) Requests() []Request { return rec.Since(0) }

// Since returns a copy of the requests from index i (a Count taken
// earlier) on.
func (rec *Recorder) Since(i int) []Request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	from := rec.reqs[min(i, len(rec.reqs)):]
	out := make([]Request, len(from))
	for j, r := range from {
		out[j] = *r
	}
	return out
}

// Count returns how many requests were received so far.
func (rec *Recorder) Count() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.reqs)
}

// CountMethod returns how many requests with method were received so far.
func (rec *Recorder) CountMethod(method string) int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	n := 0
	for _, r := range rec.reqs {
		if r.Method == method {
			n++
		}
	}
	return n
}

// statusWriter records the status and keeps flushing working, so server-sent
// events still stream through it.
type statusWriter struct {
	http.ResponseWriter
	rec *Recorder
	ur  *Request
}

func (w *statusWriter) setStatus(code int) {
	w.rec.mu.Lock()
	defer w.rec.mu.Unlock()
	if w.ur.Status == 0 {
		w.ur.Status = code
	}
}

func (w *statusWriter) WriteHeader(code int) {
	if code >= 200 {
		w.setStatus(code)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.setStatus(http.StatusOK)
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	w.setStatus(http.StatusOK)
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
