package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// wellKnownPRM is the RFC 9728 §3 well-known suffix.
const wellKnownPRM = "/.well-known/oauth-protected-resource"

// metadataMaxAge is how long clients and caches may keep the document. It
// only changes with the config, and MCP clients fetch it on every 401.
const metadataMaxAge = 3600

// protectedResourceMetadata is the RFC 9728 §2 document; empty members are
// omitted.
type protectedResourceMetadata struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers,omitempty"`
	ScopesSupported        []string `json:"scopes_supported,omitempty"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ResourceName           string   `json:"resource_name,omitempty"`
	ResourceDocumentation  string   `json:"resource_documentation,omitempty"`
	// RFC 9728 §2: what proof of possession the route accepts.
	TLSClientCertificateBoundAccessTokens bool     `json:"tls_client_certificate_bound_access_tokens,omitempty"`
	DPoPSigningAlgValuesSupported         []string `json:"dpop_signing_alg_values_supported,omitempty"`
	DPoPBoundAccessTokensRequired         bool     `json:"dpop_bound_access_tokens_required,omitempty"`
}

// metadata is what the handler serves, built once at provisioning.
type metadata struct {
	path string // the escaped request path this Caddy serves the document at
	url  string // the absolute URL advertised in challenges
	body []byte
}

// metadataLocation derives the RFC 9728 §3.1 metadata URL of a resource:
// the well-known suffix goes between the host and the path, and a query
// is not part of it.
func metadataLocation(resource string) (path, absolute string, err error) {
	u, err := url.Parse(resource)
	if err != nil {
		return "", "", err
	}
	path = wellKnownPRM
	if p := u.EscapedPath(); p != "" && p != "/" {
		path += p
	}
	return path, u.Scheme + "://" + u.Host + path, nil
}

// newMetadata builds the document from config only: resource is byte for
// byte what the operator wrote, never derived from Host or X-Forwarded-*.
func (h *Handler) newMetadata() (*metadata, error) {
	path, absolute, err := metadataLocation(h.Resource)
	if err != nil {
		return nil, fmt.Errorf("resource: %v", err)
	}
	if h.MetadataPath != "" {
		path = escapedPath(h.MetadataPath)
	}
	doc := protectedResourceMetadata{
		Resource:                              h.Resource,
		AuthorizationServers:                  h.AuthorizationServers,
		ScopesSupported:                       h.defaultScopesSupported(),
		BearerMethodsSupported:                []string{"header"},
		ResourceName:                          h.ResourceName,
		ResourceDocumentation:                 h.ResourceDocumentation,
		TLSClientCertificateBoundAccessTokens: h.MTLSBound,
	}
	if h.DPoP != nil {
		doc.DPoPSigningAlgValuesSupported = h.dpopAlgorithms()
		doc.DPoPBoundAccessTokensRequired = h.DPoP.Required
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("building protected resource metadata: %v", err)
	}
	return &metadata{path: path, url: absolute, body: body}, nil
}

var errMethod = errors.New("protected resource metadata: only GET and HEAD are allowed")

// serve answers a request for the metadata document; no token is needed.
func (m *metadata) serve(w http.ResponseWriter, r *http.Request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	default:
		w.Header().Set("Allow", "GET, HEAD")
		return caddyhttp.Error(http.StatusMethodNotAllowed, errMethod)
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Cache-Control", "public, max-age="+strconv.Itoa(metadataMaxAge))
	hdr.Set("Content-Length", strconv.Itoa(len(m.body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(m.body)
	}
	return nil
}

// checkMetadataPath validates a metadata_path or jwks_path override: an
// absolute path as a client sends it, escapes allowed.
func checkMetadataPath(p string) error {
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?# ") {
		return fmt.Errorf("expected an absolute path such as %s/mcp, got %q", wellKnownPRM, p)
	}
	if _, err := url.ParseRequestURI(p); err != nil {
		return fmt.Errorf("%q is not a valid path (check its %%-escapes)", p)
	}
	return nil
}
