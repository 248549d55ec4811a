package demoas

import (
	"encoding/json"
	"net/http"

	"github.com/ory/fosite"
)

// handleToken serves the token endpoint: the client credentials grant, with
// client_secret_basic or client_secret_post.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	session := &fosite.DefaultSession{}
	ar, err := s.provider.NewAccessRequest(ctx, r, session)
	if err != nil {
		s.provider.WriteAccessError(ctx, w, ar, err)
		return
	}

	// fosite has checked the requested scopes and audiences against the
	// client; grant them, or everything the client may have when it asked for
	// nothing.
	client := ar.GetClient()
	scopes := ar.GetRequestedScopes()
	if len(scopes) == 0 {
		scopes = client.GetScopes()
	}
	for _, sc := range scopes {
		ar.GrantScope(sc)
	}
	audience := ar.GetRequestedAudience()
	if len(audience) == 0 {
		audience = client.GetAudience()
	}
	for _, a := range audience {
		ar.GrantAudience(a)
	}
	// For client credentials the subject is the client itself.
	session.Subject = client.GetID()

	resp, err := s.provider.NewAccessResponse(ctx, ar)
	if err != nil {
		s.provider.WriteAccessError(ctx, w, ar, err)
		return
	}
	s.provider.WriteAccessResponse(ctx, w, ar, resp)
}

// handleRevoke serves the RFC 7009 revocation endpoint.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	err := s.provider.NewRevocationRequest(ctx, r)
	s.provider.WriteRevocationResponse(ctx, w, err)
}

// handleMetadata serves RFC 8414 authorization server metadata.
func (s *Server) handleMetadata(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"issuer":                                s.Issuer,
		"token_endpoint":                        s.URL + TokenPath,
		"introspection_endpoint":                s.URL + IntrospectionPath,
		"revocation_endpoint":                   s.URL + RevocationPath,
		"jwks_uri":                              s.URL + JWKSPath,
		"grant_types_supported":                 []string{"client_credentials"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"introspection_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"revocation_endpoint_auth_methods_supported":    []string{"client_secret_basic", "client_secret_post"},
	})
}
