package demoas

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/ory/fosite"
)

// maxFormBytes caps the size of introspection request bodies.
const maxFormBytes = 64 << 10

// handleIntrospect serves the introspection endpoint. The caller must
// authenticate as a registered client (client_secret_basic or
// client_secret_post). The answer is RFC 7662 JSON, or, for
// "Accept: application/jwt", the access token as a signed JWT (200) or
// 204 No Content when the token is inactive.
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	s.introspection.Add(1)
	ctx := r.Context()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")

	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "invalid_request", "introspection requires POST")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "the body is not a valid form")
		return
	}
	c, err := s.provider.AuthenticateClient(ctx, r, r.PostForm)
	if err == nil && !mayIntrospect(c) {
		err = errors.New("client may not introspect")
	}
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Basic realm="demoas"`)
		writeError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	token := r.PostForm.Get("token")
	if token == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", "the token parameter is missing")
		return
	}

	at, active := s.lookup(ctx, token)
	if acceptsJWT(r) {
		if !active {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		signed, err := s.signer.sign(s.Issuer, at)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "server_error", "could not sign the token")
			return
		}
		w.Header().Set("Content-Type", "application/jwt")
		_, _ = w.Write(signed)
		return
	}

	w.Header().Set("Content-Type", "application/json")
	if !active {
		_ = json.NewEncoder(w).Encode(map[string]any{"active": false})
		return
	}
	resp := map[string]any{
		"active":     true,
		"sub":        at.Subject,
		"client_id":  at.ClientID,
		"iat":        at.IssuedAt.Unix(),
		"exp":        at.ExpiresAt.Unix(),
		"iss":        s.Issuer,
		"jti":        at.ID,
		"token_type": "Bearer",
	}
	if at.Scope != "" {
		resp["scope"] = at.Scope
	}
	if len(at.Audience) > 0 {
		resp["aud"] = at.Audience
	}
	if at.Actor != "" {
		resp["act"] = map[string]string{"sub": at.Actor}
	}
	_ = json.NewEncoder(w).Encode(resp)
}

// mayIntrospect reports whether c may call the introspection endpoint: only
// the clients the operator configured (Config.Clients, AddClient), never
// self-registered or metadata-document clients. Anyone can be those, and
// with introspection could turn a user's opaque token into the signed JWT
// the gateway forwards, bypassing the gateway.
func mayIntrospect(c fosite.Client) bool {
	dc, ok := c.(*client)
	return ok && dc.meta == nil && !dc.IsPublic()
}

// lookup returns what the server knows about token, and whether it is an
// active access token.
func (s *Server) lookup(ctx context.Context, token string) (accessToken, bool) {
	tu, ar, err := s.provider.IntrospectToken(ctx, token, fosite.AccessToken, &fosite.DefaultSession{})
	if err != nil || tu != fosite.AccessToken {
		return accessToken{}, false
	}
	sess := ar.GetSession()
	exp := sess.GetExpiresAt(fosite.AccessToken)
	if exp.IsZero() || !time.Now().Before(exp) {
		return accessToken{}, false
	}
	var actor string
	if ds, ok := sess.(*fosite.DefaultSession); ok {
		actor, _ = ds.Extra[actorKey].(string)
	}
	return accessToken{
		Actor:     actor,
		Subject:   sess.GetSubject(),
		ClientID:  ar.GetClient().GetID(),
		Scope:     strings.Join(ar.GetGrantedScopes(), " "),
		Audience:  ar.GetGrantedAudience(),
		IssuedAt:  ar.GetRequestedAt(),
		ExpiresAt: exp,
		ID:        ar.GetID(),
	}, true
}

// acceptsJWT reports whether the request's Accept header lists
// application/jwt.
func acceptsJWT(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for _, mr := range strings.Split(v, ",") {
			mt, _, _ := strings.Cut(mr, ";")
			if strings.EqualFold(strings.TrimSpace(mt), "application/jwt") {
				return true
			}
		}
	}
	return false
}

// writeError writes an OAuth 2.0 JSON error response.
func writeError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{
		"error":             code,
		"error_description": description,
	})
}
