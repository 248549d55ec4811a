package demoas

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/ory/fosite"
)

// handleToken serves the token endpoint: the client credentials grant, with
// client_secret_basic or client_secret_post, and RFC 8707 resource
// indicators; with users, the authorization code and refresh token grants;
// with exchanges, RFC 8693 token exchange.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	session := &fosite.DefaultSession{}
	ar, err := s.provider.NewAccessRequest(ctx, r, session)
	if err != nil {
		s.provider.WriteAccessError(ctx, w, ar, err)
		return
	}
	if !ar.GetGrantTypes().ExactOne("client_credentials") {
		// The other grants' handlers decide the subject, scopes and
		// audience themselves (fosite's, resourceBinding, exchangeHandler).
		s.respond(ctx, w, ar)
		return
	}

	// fosite has checked the requested scopes and audiences against the
	// client, not the resources (fosite does not know RFC 8707); grant them,
	// or everything the client may have when it asked for nothing.
	client := ar.GetClient()
	scopes := ar.GetRequestedScopes()
	if len(scopes) == 0 {
		scopes = client.GetScopes()
	}
	for _, sc := range scopes {
		ar.GrantScope(sc)
	}
	resources := ar.GetRequestForm()["resource"]
	if err := allowResources(client, resources); err != nil {
		w.Header().Set("Cache-Control", "no-store")
		writeError(w, http.StatusBadRequest, "invalid_target", err.Error())
		return
	}
	for _, a := range audience(client, ar.GetRequestedAudience(), resources) {
		ar.GrantAudience(a)
	}
	// For client credentials the subject is the client itself.
	session.Subject = client.GetID()
	s.respond(ctx, w, ar)
}

// respond issues the token of a validated token request.
func (s *Server) respond(ctx context.Context, w http.ResponseWriter, ar fosite.AccessRequester) {
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

// allowResources checks RFC 8707 resource indicators against what the
// client may request. The error text is safe to show the client.
func allowResources(c fosite.Client, resources []string) error {
	var allowed []string
	if dc, ok := c.(*client); ok {
		allowed = dc.resources
	}
	for _, r := range resources {
		if err := checkResource(r); err != nil {
			return err
		}
		if len(allowed) > 0 && !slices.Contains(allowed, r) {
			return fmt.Errorf("resource %q is not allowed for this client", r)
		}
	}
	return nil
}

// audience is the audience to grant: the requested audiences and resources,
// or, when the request names neither, everything the client may have.
func audience(c fosite.Client, requested, resources []string) []string {
	out := append(slices.Clone(requested), resources...)
	if len(out) == 0 {
		out = slices.Clone(c.GetAudience())
		if dc, ok := c.(*client); ok {
			out = append(out, dc.resources...)
		}
	}
	seen := map[string]bool{}
	return slices.DeleteFunc(out, func(a string) bool {
		dup := seen[a]
		seen[a] = true
		return dup
	})
}
