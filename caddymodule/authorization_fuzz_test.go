package caddymodule

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// b64tokenRE is RFC 6750 §2.1's b64token, written independently of
// isB64Token so the fuzzer compares two readings of the grammar.
var b64tokenRE = regexp.MustCompile(`^[A-Za-z0-9\-._~+/]+=*$`)

// FuzzParseAuthorization fuzzes the Authorization header parser with zero,
// one or two header lines (n % 3 of them: first, then second).
//
// Properties: a token is returned only as bearerToken, and then it is a
// b64token, it is what follows "Bearer" (any case) and one or more spaces
// in the single header line; two header lines are always badRequest
// (RFC 6750 §2.1 allows one credential); no header, an empty one or
// another scheme is noCredentials (a 401 without error), never badRequest;
// the result depends on nothing but the header.
func FuzzParseAuthorization(f *testing.F) {
	f.Add("Bearer mF_9.B5f-4.1JqM", "", uint8(1))
	f.Add("bEaReR abc.def~+/=", "", uint8(1))
	f.Add("Bearer    eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln", "", uint8(1))
	f.Add("Bearer ory_at_2Xq0m5cV9yq3d8Yw8mE8sQ.0Kp6pX1gN7o", "", uint8(1))
	f.Add("Bearer a b", "", uint8(1))
	f.Add(`Bearer "x"`, "", uint8(1))
	f.Add("Bearer", "", uint8(1))
	f.Add("Bearer ", "", uint8(1))
	f.Add("Bearer\tabc", "", uint8(1))
	f.Add("Bearerabc", "", uint8(1))
	f.Add("Bearer abc==", "", uint8(1))
	f.Add("Bearer =abc", "", uint8(1))
	f.Add("Bearer abc=d", "", uint8(1))
	f.Add("Basic Z2F0ZXdheTpzM2NyM3Q=", "", uint8(1))
	f.Add("DPoP eyJhbGciOiJFUzI1NiJ9.e30.c2ln", "", uint8(1))
	f.Add("", "", uint8(1))
	f.Add("Bearer abc", "Bearer abc", uint8(2))
	f.Add("Bearer abc", "", uint8(2))
	f.Add("Bearer abc\x00", "", uint8(1))
	f.Add("Bearer \u00e9t\u00e9", "", uint8(1))
	f.Add("", "", uint8(0))

	f.Fuzz(func(t *testing.T, first, second string, n uint8) {
		h := http.Header{}
		switch n % 3 {
		case 1:
			h["Authorization"] = []string{first}
		case 2:
			h["Authorization"] = []string{first, second}
		}
		// Other headers must not matter, whatever their case.
		h["authorization"] = []string{"Bearer from-a-non-canonical-key"}
		h["X-Authorization"] = []string{"Bearer other"}

		tok, kind := parseAuthorization(h)
		switch kind {
		case bearerToken, noCredentials, badRequest:
		default:
			t.Fatalf("unknown classification %d", kind)
		}
		if kind != bearerToken && tok != "" {
			t.Fatalf("token %q returned with classification %d", tok, kind)
		}
		values := h["Authorization"]
		switch {
		case len(values) == 0:
			if kind != noCredentials {
				t.Fatalf("no header classified %d", kind)
			}
			return
		case len(values) > 1:
			if kind != badRequest {
				t.Fatalf("two headers %q classified %d", values, kind)
			}
			return
		}

		v := values[0]
		isBearer := len(v) >= 6 && strings.EqualFold(v[:6], "bearer") && (len(v) == 6 || v[6] == ' ')
		if !isBearer && kind != noCredentials {
			t.Fatalf("%q is not the Bearer scheme but classified %d", v, kind)
		}
		if kind != bearerToken {
			if isBearer && kind == noCredentials {
				t.Fatalf("Bearer credentials %q classified as none", v)
			}
			if isBearer && b64tokenRE.MatchString(strings.TrimLeft(v[6:], " ")) {
				t.Fatalf("valid credentials %q refused", v)
			}
			return
		}
		if !b64tokenRE.MatchString(tok) {
			t.Fatalf("token %q is not a b64token", tok)
		}
		if rest := strings.TrimLeft(v[6:], " "); rest != tok || len(v[6:]) == len(rest) {
			t.Fatalf("token %q is not what follows the scheme and spaces in %q", tok, v)
		}
		if tok2, kind2 := parseAuthorization(h.Clone()); tok2 != tok || kind2 != kind {
			t.Fatalf("not deterministic: %q %d then %q %d", tok, kind, tok2, kind2)
		}
	})
}
