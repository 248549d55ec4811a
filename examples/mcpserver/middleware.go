package mcpserver

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/auth"
)

// defaultRealm names this server in its challenges unless Config.Realm
// says otherwise.
const defaultRealm = "mcp"

// verifiedKey carries the TokenInfo of a verified request from middleware to
// the SDK's RequireBearerToken.
type verifiedKey struct{}

// middleware verifies the bearer JWT of every request before next sees it.
//
// It answers the failures itself (so their status and challenge are exactly
// as documented) and then hands the verified TokenInfo to the SDK's
// auth.RequireBearerToken, the only way to put it where the streamable
// transport finds it: req.Extra.TokenInfo in tools, and the session's user
// binding (a session created for one subject cannot be used by another).
func (v *verifier) middleware(next http.Handler) http.Handler {
	bridge := auth.RequireBearerToken(func(ctx context.Context, _ string, _ *http.Request) (*auth.TokenInfo, error) {
		if info, ok := ctx.Value(verifiedKey{}).(*auth.TokenInfo); ok {
			return info, nil
		}
		return nil, auth.ErrInvalidToken
	}, &auth.RequireBearerTokenOptions{ClockSkew: leeway})(next)

	realm := v.cfg.Realm
	if realm == "" {
		realm = defaultRealm
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, status := bearerToken(r)
		switch status {
		case http.StatusOK:
		case http.StatusUnauthorized:
			// No credentials: RFC 6750 §3.1, a challenge without an error code.
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+realm+`"`)
			http.Error(w, "missing bearer token", http.StatusUnauthorized)
			return
		default:
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+realm+`", error="invalid_request"`)
			http.Error(w, "malformed Authorization header", http.StatusBadRequest)
			return
		}

		info, err := v.verify(r.Context(), token)
		switch {
		case errors.Is(err, errJWKSUnavailable):
			http.Error(w, "cannot verify tokens right now", http.StatusServiceUnavailable)
			return
		case err != nil:
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+realm+`", error="invalid_token"`)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		for _, need := range v.cfg.RequiredScopes {
			if !slices.Contains(info.Scopes, need) {
				// RFC 6750 §3.1: the scopes this server needs.
				w.Header().Set("WWW-Authenticate", `Bearer realm="`+realm+`", error="insufficient_scope", scope="`+strings.Join(v.cfg.RequiredScopes, " ")+`"`)
				http.Error(w, "insufficient scope", http.StatusForbidden)
				return
			}
		}
		bridge.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), verifiedKey{}, info)))
	})
}

// bearerToken extracts the token of "Authorization: Bearer <token>". It
// returns 200 with the token, 401 when there is no Bearer credential at all,
// and 400 when the header is repeated or malformed.
func bearerToken(r *http.Request) (string, int) {
	values := r.Header.Values("Authorization")
	switch {
	case len(values) == 0:
		return "", http.StatusUnauthorized
	case len(values) > 1:
		return "", http.StatusBadRequest
	}
	scheme, token, _ := strings.Cut(values[0], " ")
	if !strings.EqualFold(scheme, "bearer") {
		return "", http.StatusUnauthorized
	}
	token = strings.TrimLeft(token, " ")
	if token == "" || strings.ContainsAny(token, " \t") {
		return "", http.StatusBadRequest
	}
	return token, http.StatusOK
}

// claimsKey is where the verifier stores the claims in TokenInfo.Extra,
// and rawTokenKey the JWT itself.
const (
	claimsKey   = "jwt_claims"
	rawTokenKey = "jwt"
)

// rawToken returns the verified JWT of info, or "".
func rawToken(info *auth.TokenInfo) string {
	if info == nil {
		return ""
	}
	tok, _ := info.Extra[rawTokenKey].(string)
	return tok
}

// Claims returns the verified JWT claims the request carried, as decoded
// from the JWT payload (numbers are float64), or nil when info holds none.
// In a tool, pass req.Extra.TokenInfo. The map is shared: do not modify it.
func Claims(info *auth.TokenInfo) map[string]any {
	if info == nil {
		return nil
	}
	claims, _ := info.Extra[claimsKey].(map[string]any)
	return claims
}
