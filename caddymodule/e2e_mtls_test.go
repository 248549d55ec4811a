package caddymodule_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// selfSigned makes a P-256 certificate for cn (and 127.0.0.1), returning it
// for a TLS config and as PEM files in dir.
func selfSigned(t *testing.T, dir, cn string) (tls.Certificate, string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	certFile, keyFile := filepath.Join(dir, cn+".crt"), filepath.Join(dir, cn+".key")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pair.Leaf, _ = x509.ParseCertificate(der)
	return pair, certFile, keyFile
}

// x5tS256 is RFC 8705's thumbprint of a certificate.
func x5tS256(c tls.Certificate) string {
	sum := sha256.Sum256(c.Certificate[0])
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// TestCertificateBoundTokens: Caddy on TLS asking for client certificates
// (tls client_auth mode request) with mtls_bound. A token bound to
// certificate A (cnf.x5t#S256) passes with A, on the miss and on hits, and
// is refused 401 invalid_token with certificate B or none; an unbound token
// passes with any. The metadata says the route accepts certificate-bound
// tokens.
func TestCertificateBoundTokens(t *testing.T) {
	as, up := newStubAS(t), newRecorder(t)
	dir := t.TempDir()
	server, serverCert, serverKey := selfSigned(t, dir, "gateway")
	certA, _, _ := selfSigned(t, dir, "client-a")
	certB, _, _ := selfSigned(t, dir, "client-b")
	addr := freePort(t)
	_, port, _ := net.SplitHostPort(addr)
	// A named site: with client_auth Caddy requires the TLS server name to
	// match the Host (strict SNI), and clients send no SNI for an IP.
	cfg := globalOptions("off") + `https://localhost:` + port + ` {
	bind 127.0.0.1
	tls ` + serverCert + ` ` + serverKey + ` {
		client_auth {
			mode request
		}
	}
	phantom_token {
		introspection_endpoint ` + as.srv.URL + `/introspect
		client_id gateway
		client_secret s3cret
		as_jwks_uri ` + as.srv.URL + `/jwks
		resource ` + resource + `
		authorization_server ` + as.srv.URL + `
		required_scopes mcp:tools
		mtls_bound
	}
	reverse_proxy ` + strings.TrimPrefix(up.srv.URL, "http://") + `
}
`
	debugLog.loads.Add(1)
	if err := caddy.Load(adaptCaddyfile(t, cfg), true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	as.active(t, "cert-bound-token-a", map[string]any{"cnf": map[string]any{"x5t#S256": x5tS256(certA)}})
	as.active(t, "unbound-token-mtls", nil)

	roots := x509.NewCertPool()
	roots.AddCert(server.Leaf)
	get := func(token, path string, certs ...tls.Certificate) (*http.Response, string) {
		t.Helper()
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: certs, ServerName: "localhost"}}
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest(http.MethodGet, "https://"+addr+path, nil)
		req.Host = "localhost:" + port
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
			noteSecret(token)
		}
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}

	for i := range 2 { // the miss, then a hit
		if resp, _ := get("cert-bound-token-a", "/mcp", certA); resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d with certificate A: %d %q", i, resp.StatusCode, resp.Header.Values("WWW-Authenticate"))
		}
	}
	for name, certs := range map[string][]tls.Certificate{"certificate B": {certB}, "no certificate": nil} {
		n := up.count()
		resp, _ := get("cert-bound-token-a", "/mcp", certs...)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("%s: %d %q, want 401 invalid_token", name, resp.StatusCode, resp.Header.Values("WWW-Authenticate"))
		}
		if up.count() != n {
			t.Errorf("%s: forwarded", name)
		}
	}
	if resp, _ := get("unbound-token-mtls", "/mcp", certB); resp.StatusCode != http.StatusOK {
		t.Errorf("an unbound token with any certificate: %d", resp.StatusCode)
	}
	if as.calls.Load() != 2 {
		t.Errorf("AS calls %d, want 2 (one per token)", as.calls.Load())
	}
	resp, body := get("", "/.well-known/oauth-protected-resource/mcp")
	var md map[string]any
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &md) != nil || md["tls_client_certificate_bound_access_tokens"] != true {
		t.Errorf("metadata %d %s: want tls_client_certificate_bound_access_tokens true", resp.StatusCode, body)
	}
}
