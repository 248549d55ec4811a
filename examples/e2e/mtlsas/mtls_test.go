// Package mtlsas runs a certificate-bound token (RFC 8705) from the real node
// oidc-provider, served over HTTPS by a private CA, through the gateway with
// mtls_bound.
package mtlsas

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
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/phantomgate/caddy-phantom-token/caddymodule"
	"github.com/phantomgate/caddy-phantom-token/examples/internal/gatewaytest"
	"github.com/phantomgate/caddy-phantom-token/examples/internal/oidcprovider"
)

// TestCertificateBoundTokenFromTheRealAS: oidc-provider (mTLS feature on,
// HTTPS with a private CA the gateway trusts through tls_ca) binds a client-credentials token to the certificate the client
// presented (cnf.x5t#S256); the gateway, on TLS asking for client
// certificates and with mtls_bound, forwards the request with that
// certificate, with the binding copied into the JWT it signs, and refuses
// it with another certificate or none.
func TestCertificateBoundTokenFromTheRealAS(t *testing.T) {
	addr := gatewaytest.FreeLoopbackAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	origin := "https://localhost:" + port
	resource := origin + "/mcp"
	as := oidcprovider.Start(t, oidcprovider.Options{
		Resource: resource,
		MTLS:     true,
		Clients: []map[string]any{
			{"client_id": "cert-agent", "client_secret": "cert-agent-secret", "grant_types": []string{"client_credentials"},
				"tls_client_certificate_bound_access_tokens": true},
			{"client_id": "gateway", "client_secret": "gateway-secret"},
		},
	})
	dir := t.TempDir()
	caFile := filepath.Join(dir, "as-ca.pem")
	if err := os.WriteFile(caFile, as.RootCAPEM, 0o600); err != nil {
		t.Fatal(err)
	}

	certA := oidcprovider.ClientCertificate(t, "agent-a")
	certB := oidcprovider.ClientCertificate(t, "agent-b")
	token := boundToken(t, as, certA, resource)

	var mu sync.Mutex
	var seen []string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(upstream.Close)

	serverCert, certFile, keyFile := gatewayCertificate(t, dir)
	signingKey := filepath.Join(dir, "signing.pem")
	writeKey(t, signingKey)
	cfg := strings.NewReplacer(
		"{PORT}", port, "{CERT}", certFile, "{KEY}", keyFile, "{AS}", as.Issuer,
		"{INTROSPECTION}", as.IntrospectionURL, "{ORIGIN}", origin, "{RESOURCE}", resource,
		"{SIGNING_KEY}", signingKey, "{UPSTREAM}", strings.TrimPrefix(upstream.URL, "http://"), "{AS_CA}", caFile,
	).Replace(caddyfile)
	var c gatewaytest.Caddy
	c.Load(t, cfg, nil)

	roots := x509.NewCertPool()
	roots.AddCert(serverCert)
	get := func(certs ...tls.Certificate) *http.Response {
		t.Helper()
		tr := &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: certs, ServerName: "localhost"}}
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest(http.MethodGet, "https://"+addr+"/mcp", nil)
		req.Host = "localhost:" + port
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := (&http.Client{Transport: tr, Timeout: 15 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for i := range 2 { // the miss, then a hit
		if resp := get(certA); resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d with the certificate the token is bound to: %d %q", i, resp.StatusCode, resp.Header.Values("WWW-Authenticate"))
		}
	}
	for name, certs := range map[string][]tls.Certificate{"another certificate": {certB}, "no certificate": nil} {
		resp := get(certs...)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("%s: %d %q, want 401 invalid_token", name, resp.StatusCode, resp.Header.Values("WWW-Authenticate"))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 {
		t.Fatalf("the upstream got %d requests, want 2", len(seen))
	}
	claims := jwtClaims(t, seen[0])
	cnf, _ := claims["cnf"].(map[string]any)
	sum := sha256.Sum256(certA.Certificate[0])
	if want := base64.RawURLEncoding.EncodeToString(sum[:]); cnf["x5t#S256"] != want {
		t.Errorf("the forwarded JWT's cnf = %v, want x5t#S256 %s", claims["cnf"], want)
	}
}

const caddyfile = `{
	admin off
	auto_https off
	persist_config off
	log default {
		level ERROR
	}
}

https://localhost:{PORT} {
	bind 127.0.0.1
	tls {CERT} {KEY} {
		client_auth {
			mode request
		}
	}
	phantom_token {
		introspection_endpoint {INTROSPECTION}
		client_id gateway
		client_secret gateway-secret
		tls_ca {AS_CA}
		introspection_format json
		sign {
			issuer {ORIGIN}
			key {SIGNING_KEY}
		}
		resource {RESOURCE}
		authorization_server {AS}
		required_scopes mcp:tools
		mtls_bound
	}
	reverse_proxy {UPSTREAM}
}
`

// boundToken gets a client-credentials token over TLS presenting cert.
func boundToken(t *testing.T, as *oidcprovider.Provider, cert tls.Certificate, resource string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"mcp:tools"}, "resource": {resource}}
	req, _ := http.NewRequest(http.MethodPost, as.TokenURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("cert-agent", "cert-agent-secret")
	resp, err := as.HTTPClient(cert).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		t.Fatalf("token request: %d, %v", resp.StatusCode, err)
	}
	return body.AccessToken
}

// gatewayCertificate is a self-signed certificate for localhost.
func gatewayCertificate(t *testing.T, dir string) (*x509.Certificate, string, string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "gateway.crt"), filepath.Join(dir, "gateway.key")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	return cert, certFile, keyFile
}

func writeKey(t *testing.T, path string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// jwtClaims decodes the payload of "Bearer <JWT>".
func jwtClaims(t *testing.T, authorization string) map[string]any {
	t.Helper()
	compact, _ := strings.CutPrefix(authorization, "Bearer ")
	parts := strings.Split(compact, ".")
	if len(parts) != 3 {
		t.Fatalf("the upstream got Authorization %.20q…, want Bearer <JWT>", authorization)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}
