package introspect

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// clientCertFiles creates a CA and a client certificate (CN = cn) signed by
// it, writes the client certificate and key as PEM files, and returns their
// paths and the CA pool the server trusts.
func clientCertFiles(t *testing.T, cn string) (certFile, keyFile string, caPool *x509.CertPool) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test client ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	cliKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cliTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	cliDER, err := x509.CreateCertificate(rand.Reader, cliTmpl, caCert, cliKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cliKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile = writePEM(t, dir, "client.crt", "CERTIFICATE", cliDER)
	keyFile = writePEM(t, dir, "client.key", "PRIVATE KEY", keyDER)
	caPool = x509.NewCertPool()
	caPool.AddCert(caCert)
	return certFile, keyFile, caPool
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestTLSClientAuth(t *testing.T) {
	certFile, keyFile, clientCAs := clientCertFiles(t, "gateway-cert")

	var mu sync.Mutex
	var peerCN, form string
	var authz string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := make([]byte, 4096)
		n, _ := r.Body.Read(body)
		mu.Lock()
		if len(r.TLS.PeerCertificates) > 0 {
			peerCN = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		form, authz = string(body[:n]), r.Header.Get("Authorization")
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCAs}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // expected handshake failures below
	srv.StartTLS()
	t.Cleanup(srv.Close)
	// The AS's server certificate is httptest's own: trust it via the CA file.
	caFile := writePEM(t, t.TempDir(), "as-ca.pem", "CERTIFICATE", srv.Certificate().Raw)

	hc, err := NewTLSClientAuthHTTPClient(certFile, keyFile, caFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hc.CloseIdleConnections)
	tr := hc.Transport.(*http.Transport)
	if tr.TLSClientConfig.MinVersion < tls.VersionTLS12 || tr.TLSClientConfig.InsecureSkipVerify || hc.CheckRedirect == nil || tr.Proxy == nil {
		t.Fatal("tls client must keep the default client's settings")
	}

	c := newTestClient(t, srv.URL+"/introspect", func(c *Config) {
		c.ClientAuth, c.ClientSecret, c.HTTPClient = TLSClientAuth, "", hc
	})
	res, err := c.Introspect(context.Background(), testToken, "")
	if err != nil || res.Active {
		t.Fatalf("res=%+v err=%v", res, err)
	}
	mu.Lock()
	gotCN, gotForm, gotAuthz := peerCN, form, authz
	mu.Unlock()
	if gotCN != "gateway-cert" {
		t.Fatalf("AS saw client certificate CN %q", gotCN)
	}
	f, _ := url.ParseQuery(gotForm)
	if f.Get("client_id") != testClientID || f.Has("client_secret") || f.Has("client_assertion") || gotAuthz != "" {
		t.Fatalf("form %v, Authorization %q", f, gotAuthz)
	}

	t.Run("without the client certificate the handshake fails", func(t *testing.T) {
		pool := x509.NewCertPool()
		pool.AddCert(srv.Certificate())
		plain := newDefaultHTTPClient(noRedirects)
		plain.Transport.(*http.Transport).TLSClientConfig.RootCAs = pool
		c := newTestClient(t, srv.URL, func(c *Config) { c.HTTPClient = plain })
		_, err := c.Introspect(context.Background(), testToken, "")
		wantKind(t, err, KindUnavailable, 0)
	})
	t.Run("system roots do not trust the test AS", func(t *testing.T) {
		hc, err := NewTLSClientAuthHTTPClient(certFile, keyFile, "")
		if err != nil {
			t.Fatal(err)
		}
		c := newTestClient(t, srv.URL, func(c *Config) { c.ClientAuth, c.ClientSecret, c.HTTPClient = TLSClientAuth, "", hc })
		_, err = c.Introspect(context.Background(), testToken, "")
		wantKind(t, err, KindUnavailable, 0)
	})
}

func TestNewTLSClientAuthHTTPClientErrors(t *testing.T) {
	certFile, keyFile, _ := clientCertFiles(t, "gw")
	otherCert, _, _ := clientCertFiles(t, "other")
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                 string
		cert, key, ca, inErr string
	}{
		{"no cert", "", keyFile, "", "needs a certificate file"},
		{"missing key file", certFile, keyFile + ".missing", "", keyFile + ".missing"},
		{"key does not match", otherCert, keyFile, "", otherCert},
		{"missing ca file", certFile, keyFile, "/nonexistent/ca.pem", "/nonexistent/ca.pem"},
		{"garbage ca file", certFile, keyFile, garbage, "no pem certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewTLSClientAuthHTTPClient(tt.cert, tt.key, tt.ca)
			if err == nil || !strings.Contains(err.Error(), tt.inErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.inErr)
			}
			body := strings.Split(string(keyPEM), "\n")[1]
			if strings.Contains(err.Error(), body[:20]) {
				t.Fatalf("error leaks key material: %v", err)
			}
		})
	}
}
