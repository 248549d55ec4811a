package caddymodule

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// challenge is the WWW-Authenticate field values of one situation: one
// challenge per accepted scheme (DPoP first when the route accepts it,
// then Bearer unless DPoP is required), each in its own field.
type challenge []string

// challenges holds the WWW-Authenticate values of this handler, built once
// at provisioning because they depend only on config.
type challenges struct {
	missing           challenge // 401, no error: the client sent no usable credentials
	invalidRequest    challenge // 400
	invalidToken      challenge // 401
	insufficientScope challenge // 403
	// With DPoP only (RFC 9449 §7.1, §9):
	invalidDPoPProof challenge // 401 invalid_dpop_proof
	useDPoPNonce     challenge // 401 use_dpop_nonce (with a DPoP-Nonce header)
}

// defaultRealm is used only when a challenge would otherwise carry no
// parameter, which RFC 6750 §3 does not allow.
const defaultRealm = "phantom_token"

// dpopChallenges says how a route that accepts DPoP challenges: with the
// algorithms it accepts, and whether Bearer is still accepted.
type dpopChallenges struct {
	algs     string // space-separated (RFC 9449 §7.1 "algs")
	required bool   // Bearer is refused: no Bearer challenge
}

// newChallenges builds the challenges. Parameter order: realm, then what
// the situation says (error, error_description, scope, algs), then
// resource_metadata, which RFC 9728 §5.1 and MCP ask on every 401 and 403
// so that a client can discover where to get a token. dp is nil on a
// Bearer-only route.
func newChallenges(realm string, scopes []string, metadataURL string, dp *dpopChallenges) challenges {
	scope := strings.Join(scopes, " ")
	build := func(scheme string, situation ...string) string {
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
		return scheme + " " + strings.Join(ps, ", ")
	}
	// both builds a situation's challenge for every accepted scheme;
	// dpopOnly the situations only DPoP has, with the plain Bearer
	// challenge beside them when Bearer is accepted.
	both := func(situation ...string) challenge {
		if dp == nil {
			return challenge{build("Bearer", situation...)}
		}
		c := challenge{build("DPoP", append(slices.Clone(situation), param("algs", dp.algs))...)}
		if !dp.required {
			c = append(c, build("Bearer", situation...))
		}
		return slices.Clip(c)
	}
	var scopeParam []string
	if scope != "" {
		scopeParam = []string{param("scope", scope)}
	}
	c := challenges{
		missing: both(scopeParam...),
		invalidRequest: both(param("error", "invalid_request"),
			param("error_description", "malformed Authorization header")),
		invalidToken: both(param("error", "invalid_token"),
			param("error_description", "the access token is not valid for this resource")),
		insufficientScope: both(append([]string{param("error", "insufficient_scope")}, scopeParam...)...),
	}
	if dp != nil {
		dpopOnly := func(situation ...string) challenge {
			out := challenge{build("DPoP", append(situation, param("algs", dp.algs))...)}
			if !dp.required {
				out = append(out, build("Bearer", scopeParam...))
			}
			return slices.Clip(out)
		}
		c.invalidDPoPProof = dpopOnly(param("error", "invalid_dpop_proof"),
			param("error_description", "the DPoP proof is not valid for this request"))
		c.useDPoPNonce = dpopOnly(param("error", "use_dpop_nonce"),
			param("error_description", "the DPoP proof must carry the nonce in the DPoP-Nonce header"))
	}
	return c
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
// response, so handle_errors can still shape the body. The values are
// copied: the handler's challenges are shared by every request.
func reject(w http.ResponseWriter, status int, c challenge, err error) error {
	w.Header()["Www-Authenticate"] = slices.Clone(c)
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
