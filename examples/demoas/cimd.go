package demoas

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document,
// used by MCP 2025-11-25): a client_id that is a URL names the document
// describing the client, which the server fetches instead of requiring a
// registration.
const (
	cimdTimeout    = 10 * time.Second
	cimdMaxBytes   = 64 << 10
	cimdTTL        = 5 * time.Minute
	cimdMaxEntries = 1000
)

// cimdResolver fetches and caches Client ID Metadata Documents.
type cimdResolver struct {
	client *http.Client

	mu    sync.Mutex
	cache map[string]cimdEntry
}

type cimdEntry struct {
	client  *client
	expires time.Time
}

// newCIMDResolver returns a resolver fetching with hc, or with a client with
// a 10s timeout when hc is nil.
func newCIMDResolver(hc *http.Client) *cimdResolver {
	c := http.Client{Timeout: cimdTimeout}
	if hc != nil {
		c = *hc
	}
	// A redirect would serve the document from another URL than the one
	// the client_id names; refuse it (the 3xx is then not 200).
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cimdResolver{client: &c, cache: map[string]cimdEntry{}}
}

// isMetadataDocumentURL reports whether a client_id names a metadata
// document: an https URL with a path, or, for this demo only, an http URL on
// a loopback host. No fragment, user information or dot segments.
func isMetadataDocumentURL(id string) bool {
	u, err := url.Parse(id)
	if err != nil || u.Opaque != "" || u.User != nil || u.Host == "" || u.Fragment != "" || strings.Contains(id, "#") {
		return false
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopbackHost(u.Hostname()) {
			return false
		}
	default:
		return false
	}
	if u.Path == "" || u.Path == "/" {
		return false
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// resolve returns the client the document at id describes, from the cache
// when fetched less than cimdTTL ago. Failures are not cached.
func (r *cimdResolver) resolve(ctx context.Context, id string, t *clientTemplate) (*client, error) {
	now := time.Now()
	r.mu.Lock()
	e, ok := r.cache[id]
	r.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.client, nil
	}

	c, err := r.fetch(ctx, id, t)
	if err != nil {
		return nil, err
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.cache) >= cimdMaxEntries {
		for k, v := range r.cache {
			if !now.Before(v.expires) {
				delete(r.cache, k)
			}
		}
		if len(r.cache) >= cimdMaxEntries {
			clear(r.cache)
		}
	}
	r.cache[id] = cimdEntry{client: c, expires: now.Add(cimdTTL)}
	return c, nil
}

// fetch downloads and validates the document at id.
func (r *cimdResolver) fetch(ctx context.Context, id string, t *clientTemplate) (*client, error) {
	ctx, cancel := context.WithTimeout(ctx, cimdTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, id, nil)
	if err != nil {
		return nil, fmt.Errorf("client metadata document %s: %w", id, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch client metadata document: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("client metadata document %s: status %d, want 200", id, resp.StatusCode)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil ||
		(mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return nil, fmt.Errorf("client metadata document %s: Content-Type %q, want application/json", id, resp.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, cimdMaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read client metadata document %s: %w", id, err)
	}
	if len(body) > cimdMaxBytes {
		return nil, fmt.Errorf("client metadata document %s exceeds %d bytes", id, cimdMaxBytes)
	}

	var doc struct {
		clientMetadata
		// A document is public: it must not carry a secret.
		ClientSecret          json.RawMessage `json:"client_secret"`
		ClientSecretExpiresAt json.RawMessage `json:"client_secret_expires_at"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("client metadata document %s: %w", id, err)
	}
	m := doc.clientMetadata
	switch {
	case m.ClientID != id:
		return nil, fmt.Errorf("client metadata document %s: client_id %q does not equal its URL", id, m.ClientID)
	case doc.ClientSecret != nil || doc.ClientSecretExpiresAt != nil:
		return nil, fmt.Errorf("client metadata document %s: must not contain a client secret", id)
	case m.TokenEndpointAuthMethod != "" && m.TokenEndpointAuthMethod != "none":
		return nil, fmt.Errorf("client metadata document %s: token_endpoint_auth_method %q, only none is supported", id, m.TokenEndpointAuthMethod)
	}
	// Without a secret the client can only be public.
	if err := m.normalize("none"); err != nil {
		var me *metadataError
		if errors.As(err, &me) {
			return nil, fmt.Errorf("client metadata document %s: %s", id, me.description)
		}
		return nil, err
	}
	return newLoginClient(id, &m, t, nil), nil
}
