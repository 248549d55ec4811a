package demoas

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/ory/fosite"
)

// clientMetadata is RFC 7591 client metadata: what a client registers at
// RegistrationPath, or publishes as a Client ID Metadata Document. Only the
// members the server uses or echoes are kept.
type clientMetadata struct {
	ClientID                string   `json:"client_id,omitempty"`
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	ClientName              string   `json:"client_name,omitempty"`
	ClientURI               string   `json:"client_uri,omitempty"`
	LogoURI                 string   `json:"logo_uri,omitempty"`
	Scope                   string   `json:"scope,omitempty"`
}

// metadataError is an RFC 7591 §3.2.2 error: invalid_redirect_uri or
// invalid_client_metadata, with a description safe to show the client.
type metadataError struct {
	code, description string
}

func (e *metadataError) Error() string { return e.code + ": " + e.description }

func invalidMetadata(format string, args ...any) error {
	return &metadataError{"invalid_client_metadata", fmt.Sprintf(format, args...)}
}

func invalidRedirect(format string, args ...any) error {
	return &metadataError{"invalid_redirect_uri", fmt.Sprintf(format, args...)}
}

// Grant types a client that logs users in may register.
const (
	grantAuthorizationCode = "authorization_code"
	grantRefreshToken      = "refresh_token"
)

// normalize validates m and fills in RFC 7591 defaults; defaultAuth is the
// token_endpoint_auth_method when m has none.
func (m *clientMetadata) normalize(defaultAuth string) error {
	if len(m.RedirectURIs) == 0 {
		return invalidRedirect("redirect_uris is required")
	}
	for _, u := range m.RedirectURIs {
		if err := checkRedirectURI(u); err != nil {
			return invalidRedirect("%v", err)
		}
	}
	if m.TokenEndpointAuthMethod == "" {
		m.TokenEndpointAuthMethod = defaultAuth
	}
	switch m.TokenEndpointAuthMethod {
	case "none", "client_secret_basic", "client_secret_post":
	default:
		return invalidMetadata("token_endpoint_auth_method %q is not supported; use none, client_secret_basic or client_secret_post", m.TokenEndpointAuthMethod)
	}
	if len(m.GrantTypes) == 0 {
		m.GrantTypes = []string{grantAuthorizationCode}
	}
	for _, g := range m.GrantTypes {
		if g != grantAuthorizationCode && g != grantRefreshToken {
			return invalidMetadata("grant type %q is not supported; use authorization_code and refresh_token", g)
		}
	}
	if !slices.Contains(m.GrantTypes, grantAuthorizationCode) {
		return invalidMetadata("grant_types must include authorization_code")
	}
	if len(m.ResponseTypes) == 0 {
		m.ResponseTypes = []string{"code"}
	}
	for _, rt := range m.ResponseTypes {
		if rt != "code" {
			return invalidMetadata("response type %q is not supported; use code", rt)
		}
	}
	m.GrantTypes = slices.Compact(slices.Sorted(slices.Values(m.GrantTypes)))
	m.ResponseTypes = []string{"code"}
	return nil
}

// checkRedirectURI enforces RFC 6749 §3.1.2 and RFC 8252: an absolute URI
// without a fragment; http only on loopback (RFC 8252 §7.3), https, or a
// private-use scheme of a native app (RFC 8252 §7.1).
func checkRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() {
		return fmt.Errorf("redirect URI %q is not an absolute URI", raw)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return fmt.Errorf("redirect URI %q has a fragment", raw)
	}
	if u.User != nil {
		return fmt.Errorf("redirect URI %q has user information", raw)
	}
	switch u.Scheme {
	case "http":
		if !isLoopbackHost(u.Hostname()) {
			return fmt.Errorf("redirect URI %q uses http on a host that is not loopback", raw)
		}
	case "https":
		if u.Host == "" {
			return fmt.Errorf("redirect URI %q has no host", raw)
		}
	case "javascript", "data", "file", "vbscript", "about", "blob":
		return fmt.Errorf("redirect URI %q uses a forbidden scheme", raw)
	}
	// fosite checks redirect URIs again at the authorization endpoint.
	if !fosite.IsValidRedirectURI(u) {
		return fmt.Errorf("redirect URI %q is not valid", raw)
	}
	return nil
}

// isLoopbackHost reports whether host (without port) is "localhost" or a
// loopback IP address.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// newLoginClient returns the fosite client for validated metadata m; hash is
// the bcrypt hash of its secret, nil for a public client.
func newLoginClient(id string, m *clientMetadata, t *clientTemplate, hash []byte) *client {
	return &client{
		DefaultClient: &fosite.DefaultClient{
			ID:            id,
			Secret:        hash,
			RedirectURIs:  slices.Clone(m.RedirectURIs),
			GrantTypes:    slices.Clone(m.GrantTypes),
			ResponseTypes: slices.Clone(m.ResponseTypes),
			Scopes:        slices.Clone(t.scopes),
			Audience:      slices.Clone(t.audience),
			Public:        m.TokenEndpointAuthMethod == "none",
		},
		meta: m,
	}
}
