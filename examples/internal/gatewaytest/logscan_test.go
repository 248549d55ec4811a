package gatewaytest

import (
	"strings"
	"testing"
)

// The scan must be able to fail: each kind of secret is found and kept
// out of the report, and an ordinary line passes.
func TestFindSecret(t *testing.T) {
	const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
	const fosite = "ory_at_Zm9vYmFyYmF6cXV4.c2lnbmF0dXJl"
	for _, tc := range []struct{ line, want string }{
		{`{"level":"debug","msg":"introspection failed","token_fingerprint":"0a1b2c3d4e5f"}`, ""},
		{`{"msg":"x","authorization":"Bearer ` + jwt + `"}`, "jwt"},
		{`{"msg":"x","uri":"/mcp?access_token=` + fosite + `"}`, "opaque token"},
		{`{"msg":"x","token":"noted-token-123"}`, "opaque token"},
		{`{"msg":"x","client_secret":"gateway-secret"}`, "client secret"},
		{`{"msg":"-----BEGIN PRIVATE KEY-----"}`, "pem private key"},
		{`{"msg":"x","key":{"kty":"RSA","d":"AAAA"}}`, "jwk private member"},
	} {
		what, redacted := FindSecret(tc.line, []string{"noted-token-123"}, []string{"gateway-secret"})
		if what != tc.want {
			t.Errorf("FindSecret(%s) = %q, want %q", tc.line, what, tc.want)
		}
		for _, s := range []string{jwt, fosite, "noted-token-123", "gateway-secret"} {
			if strings.Contains(redacted, s) {
				t.Errorf("the report repeats a secret: %s", redacted)
			}
		}
	}
}
