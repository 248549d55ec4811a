package main

import (
	"net/http"
	"strings"
	"sync"
)

// recorder wraps the MCP server and records what reaches it: how many
// requests, how many carried a Bearer JWT, and whether the agent's opaque
// token ever did (in a header or the URL).
type recorder struct {
	next http.Handler

	mu       sync.Mutex
	requests int
	jwts     int
	opaque   []string // the tokens to look for
	leaked   bool
	lastAuth string
}

func newRecorder(next http.Handler) *recorder { return &recorder{next: next} }

// watch adds an opaque token the recorder looks for.
func (rec *recorder) watch(token string) {
	rec.mu.Lock()
	rec.opaque = append(rec.opaque, token)
	rec.mu.Unlock()
}

// ServeHTTP records r, then hands it to the MCP server.
func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec.mu.Lock()
	rec.requests++
	rec.lastAuth = r.Header.Get("Authorization")
	if scheme, cred, _ := strings.Cut(rec.lastAuth, " "); strings.EqualFold(scheme, "bearer") && strings.Count(cred, ".") == 2 {
		rec.jwts++
	}
	for _, tok := range rec.opaque {
		if rec.leaked {
			break
		}
		rec.leaked = strings.Contains(r.URL.RequestURI(), tok)
		for _, vs := range r.Header {
			for _, v := range vs {
				rec.leaked = rec.leaked || strings.Contains(v, tok)
			}
		}
	}
	rec.mu.Unlock()
	rec.next.ServeHTTP(w, r)
}

// upstreamStats is a snapshot of a recorder.
type upstreamStats struct {
	requests int    // requests received
	jwts     int    // of which with "Authorization: Bearer <JWT>"
	leaked   bool   // the opaque token appeared in one of them
	lastAuth string // the last Authorization header
}

func (rec *recorder) stats() upstreamStats {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return upstreamStats{requests: rec.requests, jwts: rec.jwts, leaked: rec.leaked, lastAuth: rec.lastAuth}
}
