package dpop

import (
	"context"
	"errors"
	"time"
)

// Request is what a proof is checked against.
type Request struct {
	// Method is the HTTP method of the request, e.g. "POST"; htm must
	// equal it exactly (RFC 9110 §9.1: methods are case-sensitive).
	Method string
	// URL is the target URI as the client addressed it,
	// scheme://host[:port]/path, without query and fragment. Build it from
	// the configured external origin and the request path, never from
	// Host or X-Forwarded-* (which the client controls).
	URL string
	// AccessToken is the token of the "Authorization: DPoP" header; ath
	// must be its hash. The gateway always passes it: when empty, ath is
	// not checked (a proof sent to obtain a token, which a gateway never
	// sees, has none).
	AccessToken string
}

// Proof is a verified proof.
type Proof struct {
	// Thumbprint is the RFC 7638 SHA-256 thumbprint of the proof's public
	// key, base64url: the token is bound to the key only if it equals the
	// "cnf.jkt" of the introspection.
	Thumbprint string
	// JTI is the proof's unique identifier.
	JTI string
	// IssuedAt is the proof's iat.
	IssuedAt time.Time
}

// errRequest is Verify's error for a Request that is not usable: a gateway
// fault (answer 500), not a client one, hence not an [*Error].
var errRequest = errors.New("dpop: request has no method or its url is not an absolute http(s) url")

// Verify validates the values of the request's DPoP header (pass
// r.Header.Values("DPoP"): exactly one is required) against req, following
// RFC 9449 §4.3, and returns the proof.
//
// A failure caused by the request is an [*Error]. Any other error means
// that req itself is malformed (no Method, a URL that is not absolute
// http(s)): that is the gateway's fault, not the client's.
//
// The checks run from the cheapest to the most expensive, and the replay
// cache is consulted last, once the proof is known to be genuine and
// acceptable in every other respect: garbage cannot fill the cache, and a
// proof refused for another reason does not burn its jti. The nonce is
// checked just before, so that use_dpop_nonce means "retry with the
// nonce" to a client whose proof is otherwise correct.
func (v *Verifier) Verify(ctx context.Context, headerValues []string, req Request) (Proof, error) {
	wantURI, ok := normalizeURI(req.URL)
	if !ok || req.Method == "" {
		return Proof{}, errRequest
	}
	if len(headerValues) != 1 {
		return Proof{}, invalid(reasonHeaderCount)
	}
	if len(headerValues[0]) > maxProofSize {
		return Proof{}, invalid(reasonTooLarge)
	}
	jws, ok := parseCompact(headerValues[0])
	if !ok {
		return Proof{}, invalid(reasonNotJWS)
	}
	spec, key, reason := v.checkHeader(jws.header)
	if reason != "" {
		return Proof{}, invalid(reason)
	}
	if !spec.verify(key, []byte(jws.input), jws.sig) {
		return Proof{}, invalid(reasonSignature)
	}

	claims, ok := parseObject(jws.payload)
	if !ok {
		return Proof{}, invalid(reasonPayload)
	}
	now := v.now()
	p := Proof{Thumbprint: key.thumbprint}
	if err := v.checkClaims(claims, req, wantURI, now, &p); err != nil {
		return Proof{}, err
	}

	until := p.IssuedAt.Add(v.maxAge + v.leeway)
	seen, err := v.replay.Seen(ctx, replayKey(p.Thumbprint, p.JTI), until)
	if err != nil {
		return Proof{}, &Error{Code: CodeInvalidProof, Reason: reasonReplayFailure, cause: err}
	}
	if seen {
		return Proof{}, &Error{Code: CodeInvalidProof, Reason: reasonReplay, Replay: true}
	}
	return p, nil
}

// checkHeader checks the JOSE header (RFC 9449 §4.3 points 4 to 6) and
// returns the algorithm and the embedded key, or the reason for refusing.
func (v *Verifier) checkHeader(raw []byte) (algSpec, *publicKey, string) {
	h, ok := parseObject(raw)
	if !ok {
		return algSpec{}, nil, reasonHeader
	}
	if typ, _, _ := h.str("typ"); !isDPoPType(typ) {
		return algSpec{}, nil, reasonTyp
	}
	alg, _, _ := h.str("alg")
	spec, ok := v.algs[alg]
	if !ok {
		return algSpec{}, nil, reasonAlg
	}
	// RFC 7515 §4.1.11: an extension listed in crit must be understood;
	// we understand none (this also refuses RFC 7797's unencoded
	// payloads, whose b64 must be listed there).
	if h.has("crit") || h.has("b64") {
		return algSpec{}, nil, reasonCrit
	}
	// The key is the embedded jwk and nothing else: a URL to fetch a key
	// from is an SSRF vector, and a certificate chain would be a second,
	// possibly different, key. A kid is ignored, never looked up.
	if h.has("jku") || h.has("x5u") || h.has("x5c") {
		return algSpec{}, nil, reasonKeyReference
	}
	jwk, ok := h["jwk"]
	if !ok {
		return algSpec{}, nil, reasonJWKMissing
	}
	key, reason := parseJWK(jwk, alg, spec)
	if reason != "" {
		return algSpec{}, nil, reason
	}
	return spec, key, ""
}

// isDPoPType reports whether typ is the media type RFC 9449 §4.2 requires,
// "dpop+jwt". RFC 7515 §4.1.9 makes typ a media type, so it compares as
// one: case-insensitively (RFC 2045), and with "application/" implied when
// there is no '/' — "application/dpop+jwt" being the type RFC 9449 §11.3
// registers. This is what JOSE libraries that check typ do (e.g. panva's
// jose, behind node oidc-provider), and it cannot admit another kind of
// JWT: every spelling accepted names the same registered type.
func isDPoPType(typ string) bool {
	const app = "application/"
	if len(typ) > len(app) && asciiEqualFold(typ[:len(app)], app) {
		typ = typ[len(app):]
	}
	return asciiEqualFold(typ, "dpop+jwt")
}

// asciiEqualFold is strings.EqualFold for ASCII only: Unicode case folding
// would accept look-alikes such as the Kelvin sign for 'k'.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		ca, cb := a[i], b[i]
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if 'A' <= cb && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			return false
		}
	}
	return true
}
