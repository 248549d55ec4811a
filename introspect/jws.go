package introspect

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// LooksLikeJWS reports whether s has the shape of a JWS in compact
// serialization: exactly three non-empty segments of unpadded base64url,
// separated by dots. It does not decode anything; it is the cheap first
// check before a string from the AS is trusted or forwarded as a JWT. An
// unsecured JWT ("alg":"none", empty signature) does not pass, and neither
// does a JWE (five segments).
func LooksLikeJWS(s string) bool {
	segments := 0
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			if !isBase64URLChar(s[i]) {
				return false
			}
			continue
		}
		n := i - start
		// A base64 group never leaves a single dangling character.
		if n == 0 || n%4 == 1 {
			return false
		}
		segments++
		start = i + 1
	}
	return segments == 3
}

func isBase64URLChar(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// compactJWS is a structurally checked, not yet verified, compact JWS.
type compactJWS struct {
	alg    string
	header map[string]json.RawMessage
	claims map[string]json.RawMessage
}

// Structural errors. They name what is wrong, never the content.
var (
	errNotJWS          = errors.New("not a compact jws (want 3 non-empty base64url segments)")
	errJWSHeader       = errors.New("jws header is not a json object")
	errJWSAlgMissing   = errors.New("jws header has no alg")
	errJWSAlgNone      = errors.New(`jws alg "none" is not allowed`)
	errJWSCrit         = errors.New("jws has critical header parameters, none are supported")
	errJWSPayload      = errors.New("jws payload is not a json object")
	errJWSIntrospected = errors.New("jwt is a token introspection response (rfc 9701), not an access token")
)

// parseCompactJWS checks that s is a compact JWS whose protected header and
// payload are JSON objects, with an alg other than "none", that is not an
// RFC 9701 introspection response, and returns the decoded header and
// claims. The signature is not checked here (that is the JWKSVerifier's
// job, when configured).
func parseCompactJWS(s string) (*compactJWS, error) {
	msg, err := parseJWS(s)
	if err != nil {
		return nil, err
	}
	// An RFC 9701 introspection response is signed by the AS for the
	// gateway; it must never be mistaken for an access token and forwarded.
	if msg.isIntrospectionResponse() {
		return nil, errJWSIntrospected
	}
	return msg, nil
}

// parseJWS is parseCompactJWS without the check on "typ": the RFC 9701
// reply handler uses it for the one JWT that must carry that type.
func parseJWS(s string) (*compactJWS, error) {
	if !LooksLikeJWS(s) {
		return nil, errNotJWS
	}
	h64, rest, _ := strings.Cut(s, ".")
	p64, _, _ := strings.Cut(rest, ".")

	header, err := decodeSegmentObject(h64)
	if err != nil {
		return nil, errJWSHeader
	}
	rawAlg, ok := header["alg"]
	if !ok {
		return nil, errJWSAlgMissing
	}
	var alg string
	if err := unmarshalString(rawAlg, &alg); err != nil || alg == "" {
		return nil, errJWSAlgMissing
	}
	if strings.EqualFold(alg, "none") {
		return nil, errJWSAlgNone
	}
	// RFC 7515 §4.1.11: a recipient must reject a JWS whose "crit" lists
	// extensions it does not understand; we understand none (this also
	// rules out RFC 7797 unencoded payloads, which require "crit").
	if _, ok := header["crit"]; ok {
		return nil, errJWSCrit
	}
	if _, ok := header["b64"]; ok {
		return nil, errJWSCrit
	}

	claims, err := decodeSegmentObject(p64)
	if err != nil {
		return nil, errJWSPayload
	}
	return &compactJWS{alg: alg, header: header, claims: claims}, nil
}

// isIntrospectionResponse reports whether the header's "typ" is that of an
// RFC 9701 response: "token-introspection+jwt", or the full media type
// "application/token-introspection+jwt" (RFC 7515 §4.1.9 allows both),
// case-insensitively.
func (m *compactJWS) isIntrospectionResponse() bool {
	raw, ok := m.header["typ"]
	if !ok {
		return false
	}
	var typ string
	if unmarshalString(raw, &typ) != nil {
		return false
	}
	typ = strings.ToLower(typ)
	return typ == "token-introspection+jwt" || typ == mediaTypeIntrospectionJWT
}

// decodeSegmentObject base64url-decodes one segment and parses it as a JSON
// object.
func decodeSegmentObject(seg string) (map[string]json.RawMessage, error) {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return nil, err
	}
	return parseJSONObject(b)
}
