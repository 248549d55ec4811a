package caddymodule_test

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An AS behind a private CA: with tls_ca (and client_secret_basic, not
// tls_client_auth) the gateway introspects over TLS and fetches the AS's
// JWKS to verify the JWT; without it, the AS's certificate is not trusted
// and the request fails as an AS fault, never forwarded.
func TestTLSCAForAPrivateCAAS(t *testing.T) {
	plain, up := newStubAS(t), newRecorder(t)
	tlsAS := httptest.NewTLSServer(plain.srv.Config.Handler)
	t.Cleanup(tlsAS.Close)
	caFile := filepath.Join(t.TempDir(), "as-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsAS.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	site := `
	phantom_token {
		introspection_endpoint ` + tlsAS.URL + `/introspect
		client_id gateway
		client_secret s3cret
		tls_ca ` + caFile + `
		as_jwks_uri ` + tlsAS.URL + `/jwks
		required_scopes mcp:tools
	}
	reverse_proxy {UPSTREAM}
`
	g := startCaddy(t, plain, up, site)
	plain.active(t, "private-ca-token-1", nil)
	if resp, _ := g.do(t, http.MethodGet, "/mcp", "Authorization", "Bearer private-ca-token-1"); resp.StatusCode != http.StatusOK {
		t.Fatalf("with tls_ca: %d", resp.StatusCode)
	}
	if !strings.HasPrefix(up.last(t).Header.Get("Authorization"), "Bearer eyJ") {
		t.Fatal("the upstream did not get the verified JWT")
	}

	// The same AS without tls_ca: its certificate is not trusted.
	loadCaddy(t, g, plain, up, strings.Replace(site, "tls_ca "+caFile, "", 1))
	plain.active(t, "private-ca-token-2", nil)
	n := up.count()
	if resp, _ := g.do(t, http.MethodGet, "/mcp", "Authorization", "Bearer private-ca-token-2"); resp.StatusCode < 500 || up.count() != n {
		t.Errorf("without tls_ca: %d, forwarded %d; want an AS fault, nothing forwarded", resp.StatusCode, up.count()-n)
	}
}
