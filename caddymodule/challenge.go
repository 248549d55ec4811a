package caddymodule

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// challenges holds the WWW-Authenticate values of this handler, built once
// at provisioning because they depend only on config.
type challenges struct {
	missing           string // 401, no error: the client sent no bearer token
	invalidRequest    string // 400
	invalidToken      string // 401
	insufficientScope string // 403
}

// defaultRealm is used only when a challenge would otherwise carry no
// parameter, which RFC 6750 §3 does not allow.
const defaultRealm = "phantom_token"

// newChallenges builds the challenges. Parameter order: realm, then what
// the situation says (error, error_description, scope), then
// resource_metadata, which RFC 9728 §5.1 and MCP ask on every 401 and 403
// so that a client can discover where to get a token.
func newChallenges(realm string, scopes []string, metadataURL string) challenges {
	scope := strings.Join(scopes, " ")
	build := func(situation ...string) string {
		var ps []string
		if realm != "" {
			ps = append(ps, param("realm", realm))
		}
		ps = append(ps, situation...)
		if metadataURL != "" {
			ps = append(ps, param("resource_metadata", metadataURL))
		}
		if len(ps) == 0 {
			ps = []string{param("realm", defaultRealm)}
		}
		return "Bearer " + strings.Join(ps, ", ")
	}
	var scopeParam []string
	if scope != "" {
		scopeParam = []string{param("scope", scope)}
	}
	return challenges{
		missing: build(scopeParam...),
		invalidRequest: build(param("error", "invalid_request"),
			param("error_description", "malformed Authorization header")),
		invalidToken: build(param("error", "invalid_token"),
			param("error_description", "the access token is not valid for this resource")),
		insufficientScope: build(append([]string{param("error", "insufficient_scope")}, scopeParam...)...),
	}
}

// param renders one auth-param as a quoted-string (RFC 7230 §3.2.6).
func param(name, value string) string {
	value = strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(value)
	return name + `="` + value + `"`
}

// Errors returned to Caddy. They name no token, claim or AS text, because
// Caddy logs them and handle_errors may render them.
var (
	errNoCredentials     = errors.New("no bearer token")
	errMalformed         = errors.New("malformed Authorization header")
	errInvalidToken      = errors.New("access token inactive, expired, not yet valid or for another audience")
	errInsufficientScope = errors.New("access token lacks a required scope")
)

// reject sets the challenge and returns the error Caddy turns into the
// response, so handle_errors can still shape the body.
func reject(w http.ResponseWriter, status int, challenge string, err error) error {
	w.Header().Set("WWW-Authenticate", challenge)
	return caddyhttp.Error(status, err)
}

// defaultRetryAfter is sent with a 503 when the AS did not say when to come back.
const defaultRetryAfter = 5 * time.Second

// unavailable answers 503 with Retry-After: the AS could not answer.
func unavailable(w http.ResponseWriter, retryAfter time.Duration, err error) error {
	if retryAfter <= 0 {
		retryAfter = defaultRetryAfter
	}
	secs := int64((retryAfter + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	return caddyhttp.Error(http.StatusServiceUnavailable, err)
}
