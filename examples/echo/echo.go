// Package echo is a demo upstream for the phantom token examples: it records
// every request and answers with a JSON description of what it received, so a
// human or a test can see what travelled past the gateway.
package echo

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
)

// Response is the JSON document the handler answers with.
type Response struct {
	// Method and Path of the request.
	Method string `json:"method"`
	Path   string `json:"path"`
	// AuthorizationScheme is the scheme of the Authorization header
	// ("Bearer"), or "" when there is none.
	AuthorizationScheme string `json:"authorization_scheme"`
	// JWTClaims is the decoded payload of the Bearer credential when it is a
	// compact JWS. It is NOT verified: this is a demo, not an authorizer.
	JWTClaims map[string]any `json:"jwt_claims"`
	// SawOpaqueToken reports a Bearer credential that is not a JWT, i.e. an
	// opaque token the gateway should have replaced.
	SawOpaqueToken bool `json:"saw_opaque_token"`
	// Headers lists the request header names, sorted; values are omitted.
	Headers []string `json:"headers"`
}

// Request is a snapshot of one request the handler received.
type Request struct {
	Method string
	// URL is the request URI as received, query string included.
	URL    string
	Header http.Header
}

// Handler records requests and answers each with a Response. Use NewHandler;
// it is safe for concurrent use.
type Handler struct {
	mu    sync.Mutex
	count int
	last  *Request
}

// NewHandler returns an empty Handler.
func NewHandler() *Handler { return &Handler{} }

// ServeHTTP records r and answers with a JSON Response.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.count++
	h.last = &Request{Method: r.Method, URL: r.RequestURI, Header: r.Header.Clone()}
	h.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(Describe(r))
}

// Count returns the number of requests received.
func (h *Handler) Count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.count
}

// Last returns a copy of the last request received, and false when there
// was none.
func (h *Handler) Last() (Request, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.last == nil {
		return Request{}, false
	}
	return Request{Method: h.last.Method, URL: h.last.URL, Header: h.last.Header.Clone()}, true
}

// LastAuthorization returns the Authorization header of the last request
// received, or "" when there was none.
func (h *Handler) LastAuthorization() string {
	last, _ := h.Last()
	return last.Header.Get("Authorization")
}

// Describe builds the Response for r.
func Describe(r *http.Request) Response {
	resp := Response{Method: r.Method, Path: r.URL.Path}
	for name := range r.Header {
		resp.Headers = append(resp.Headers, name)
	}
	slices.Sort(resp.Headers)

	scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	resp.AuthorizationScheme = scheme
	if strings.EqualFold(scheme, "bearer") && cred != "" {
		claims, ok := DecodeClaims(cred)
		resp.JWTClaims = claims
		resp.SawOpaqueToken = !ok
	}
	return resp
}

// DecodeClaims decodes the payload of a compact JWS without verifying it.
// It reports false when token is not a three-segment JWS with a JSON object
// payload.
func DecodeClaims(token string) (map[string]any, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, false
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil || claims == nil {
		return nil, false
	}
	return claims, true
}
