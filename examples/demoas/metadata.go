package demoas

import (
	"encoding/json"
	"net/http"
)

// handleMetadata serves RFC 8414 authorization server metadata (also at
// the OpenID configuration path). MCP clients reach it from the gateway's
// protected resource metadata ("authorization_servers": [Issuer]).
func (s *Server) handleMetadata(w http.ResponseWriter, _ *http.Request) {
	authMethods := []string{"client_secret_basic", "client_secret_post"}
	doc := map[string]any{
		"issuer":                 s.Issuer,
		"authorization_endpoint": s.URL + AuthorizationPath,
		"token_endpoint":         s.URL + TokenPath,
		"introspection_endpoint": s.URL + IntrospectionPath,
		"revocation_endpoint":    s.URL + RevocationPath,
		"jwks_uri":               s.URL + JWKSPath,
		"grant_types_supported":  []string{"client_credentials"},
		// No response type is supported: tokens come from the token endpoint
		// only. The member is required (RFC 8414 §2), so it is empty.
		"response_types_supported":                      []string{},
		"token_endpoint_auth_methods_supported":         authMethods,
		"introspection_endpoint_auth_methods_supported": authMethods,
		"revocation_endpoint_auth_methods_supported":    authMethods,
	}
	if scopes := s.store.scopes(); len(scopes) > 0 {
		doc["scopes_supported"] = scopes
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=60")
	_ = json.NewEncoder(w).Encode(doc)
}

// handleAuthorize answers every authorization request with an OAuth error:
// this server supports the client credentials grant only. Nothing is
// redirected, since no client has a redirect URI.
func (s *Server) handleAuthorize(w http.ResponseWriter, _ *http.Request) {
	writeError(w, http.StatusBadRequest, "unsupported_response_type", "this server issues tokens by client credentials only")
}
