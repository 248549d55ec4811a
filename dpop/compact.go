package dpop

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// maxProofSize bounds the DPoP header value before anything is decoded. An
// ES256 or EdDSA proof is under 1 KiB and an RSA-4096 one under 2.5 KiB;
// 8 KiB leaves room for long URIs and nonces while capping the work an
// unauthenticated request can cause.
const maxProofSize = 8 << 10

// b64 decodes unpadded base64url and, being strict, refuses non-zero
// trailing bits, so that each value has exactly one encoding (the
// thumbprint is computed from the jwk members as received).
var b64 = base64.RawURLEncoding.Strict()

// compactJWS is a proof split into its parts, nothing verified yet.
type compactJWS struct {
	header  []byte // decoded protected header
	payload []byte // decoded payload
	sig     []byte // decoded signature
	input   string // the signing input: the first two segments and their dot
}

// parseCompact splits s into the three segments of a compact JWS (RFC 7515
// §7.1) and decodes them. Every segment must be non-empty base64url: a
// JWE has five segments, an unsecured JWT an empty signature, and both are
// refused here.
func parseCompact(s string) (*compactJWS, bool) {
	h64, rest, ok := strings.Cut(s, ".")
	if !ok {
		return nil, false
	}
	p64, s64, ok := strings.Cut(rest, ".")
	if !ok || !isBase64URL(h64) || !isBase64URL(p64) || !isBase64URL(s64) {
		return nil, false
	}
	// The alphabet check above also refuses '\r' and '\n', which the
	// decoder would otherwise skip silently.
	var j compactJWS
	var err error
	if j.header, err = b64.DecodeString(h64); err != nil {
		return nil, false
	}
	if j.payload, err = b64.DecodeString(p64); err != nil {
		return nil, false
	}
	if j.sig, err = b64.DecodeString(s64); err != nil {
		return nil, false
	}
	j.input = s[:len(h64)+1+len(p64)]
	return &j, true
}

// isBase64URL reports whether s is non-empty and only of the base64url
// alphabet, without padding (a '.' in it means a fourth segment).
func isBase64URL(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// object is a decoded JSON object: member names exactly as sent (case
// matters, unlike encoding/json's struct matching), values undecoded. A
// name sent twice keeps its last value, which RFC 7515 §4 allows a JWS
// parser to do.
type object map[string]json.RawMessage

// parseObject decodes b as one JSON object; null, other types and
// trailing data are refused.
func parseObject(b []byte) (object, bool) {
	var m object
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return nil, false
	}
	return m, true
}

// str returns member name as a string. present is whether the member
// exists; ok is whether it is a JSON string (null is not a string).
func (o object) str(name string) (s string, present, ok bool) {
	raw, present := o[name]
	if !present {
		return "", false, false
	}
	if len(raw) < 2 || raw[0] != '"' {
		return "", true, false
	}
	// The object was validated by json.Unmarshal, so a string without
	// escapes is its bytes, unless they are invalid UTF-8 (which decoding
	// would replace): skip the reflection for the common case.
	if inner := raw[1 : len(raw)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), true, true
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", true, false
	}
	return s, true, true
}

// has reports whether the object has a member called name.
func (o object) has(name string) bool {
	_, ok := o[name]
	return ok
}
