package demoas

import (
	"encoding/json"
	"net/http"
	"slices"
)

// handleMetadata serves RFC 8414 authorization server metadata (also at
// the OpenID configuration path). MCP clients reach it from the gateway's
// protected resource metadata ("authorization_servers": [Issuer]).
func (s *Server) handleMetadata(w http.ResponseWriter, _ *http.Request) {
	authMethods := []string{"client_secret_basic", "client_secret_post"}
	grantTypes := []string{"client_credentials"}
	// No response type is supported without users: tokens come from the
	// token endpoint only. The member is required (RFC 8414 §2), so it is
	// then empty.
	responseTypes := []string{}
	tokenAuthMethods := authMethods
	doc := map[string]any{
		"issuer":                 s.Issuer,
		"authorization_endpoint": s.URL + AuthorizationPath,
		"token_endpoint":         s.URL + TokenPath,
		"introspection_endpoint": s.URL + IntrospectionPath,
		"revocation_endpoint":    s.URL + RevocationPath,
		"jwks_uri":               s.URL + JWKSPath,
		"introspection_endpoint_auth_methods_supported": authMethods,
		"revocation_endpoint_auth_methods_supported":    authMethods,
	}
	if s.users != nil {
		grantTypes = append(grantTypes, grantAuthorizationCode, grantRefreshToken)
		responseTypes = []string{"code"}
		// Public clients (metadata documents, and registrations without
		// a secret) authenticate with their client_id only.
		tokenAuthMethods = append(slices.Clone(authMethods), "none")
		doc["code_challenge_methods_supported"] = []string{"S256"}
		doc["registration_endpoint"] = s.URL + RegistrationPath
		doc["client_id_metadata_document_supported"] = true
	}
	if len(s.exchanges) > 0 {
		grantTypes = append(grantTypes, grantTypeTokenExchange)
	}
	doc["grant_types_supported"] = grantTypes
	doc["response_types_supported"] = responseTypes
	doc["token_endpoint_auth_methods_supported"] = tokenAuthMethods

	scopes := append(s.store.scopes(), s.resources.allScopes()...)
	slices.Sort(scopes)
	if scopes = slices.Compact(scopes); len(scopes) > 0 {
		doc["scopes_supported"] = scopes
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=60")
	_ = json.NewEncoder(w).Encode(doc)
}
