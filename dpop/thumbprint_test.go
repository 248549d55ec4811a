package dpop

import (
	"encoding/json"
	"testing"
)

// TestThumbprintRFC7638 is the example of RFC 7638 §3.1.
func TestThumbprintRFC7638(t *testing.T) {
	raw := json.RawMessage(`{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}`)
	key, reason := parseJWK(raw, "RS256", supportedAlgs["RS256"])
	if reason != "" {
		t.Fatal(reason)
	}
	if want := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; key.thumbprint != want {
		t.Errorf("thumbprint = %s, want %s", key.thumbprint, want)
	}
}

// TestThumbprintMatchesJWX checks every key type against jwx, which
// computes RFC 7638 from the key rather than from the members as sent.
func TestThumbprintMatchesJWX(t *testing.T) {
	k := testKeys(t)
	for alg, key := range map[string]any{"ES256": k.ec, "ES384": k.ec384, "EdDSA": k.ed, "PS256": k.rsa} {
		b, err := json.Marshal(jwkOf(t, key, false))
		if err != nil {
			t.Fatal(err)
		}
		pk, reason := parseJWK(b, alg, supportedAlgs[alg])
		if reason != "" {
			t.Fatalf("%s: %s", alg, reason)
		}
		if want := jwxThumbprint(t, key); pk.thumbprint != want {
			t.Errorf("%s: thumbprint %s, jwx %s", alg, pk.thumbprint, want)
		}
	}
}
