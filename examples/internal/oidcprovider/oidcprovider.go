// Package oidcprovider starts the real node oidc-provider 9.x authorization
// server in examples/oidc-provider for tests, on 127.0.0.1, and stops it when
// the test ends.
//
// The server issues opaque client-credentials access tokens for one resource
// (RFC 8707 resource indicators; introspection answers aud = the resource),
// answers RFC 7662 introspection as JSON or, for `Accept:
// application/token-introspection+jwt`, as an RFC 9701 signed JWT, revokes
// tokens (RFC 7009), and has an RFC 8693 token-exchange grant that turns one
// of its opaque access tokens into an RFC 9068 JWT access token (typ at+jwt)
// for the resource, signed with the key published at its jwks_uri.
//
// Clients are registered from [Options.Clients] (RFC 7591 metadata names).
// The server fills in, when absent, grant_types ["client_credentials"],
// response_types [] and redirect_uris []. A gateway that exchanges tokens
// needs "urn:ietf:params:oauth:grant-type:token-exchange" in its grant_types.
// Client authentication: client_secret_basic and client_secret_post are
// interchangeable for a client with a secret; private_key_jwt needs jwks and
// token_endpoint_auth_method "private_key_jwt", and the assertion's aud must be
// the issuer, the token endpoint or the URL of the endpoint being called.
//
// Sender-constrained access tokens (both off by default):
//
//   - [Options.DPoP] (RFC 9449): a client-credentials token request with a
//     valid DPoP proof header (typ dpop+jwt, alg ES256, Ed25519 or EdDSA, jwk
//     header, claims jti, htm "POST", htu [Provider.TokenURL], iat) gets an
//     access token with token_type "DPoP", bound to the proof key; JSON and
//     RFC 9701 introspection answer token_type "DPoP" and cnf {"jkt": RFC 7638
//     SHA-256 thumbprint of the key}. A client registered with
//     "dpop_bound_access_tokens": true gets invalid_grant without a proof.
//     Proof jti values are single-use per client.
//   - [Options.MTLS] (RFC 8705): the server speaks HTTPS with a certificate
//     from a CA made for it ([Provider.RootCAs], [Provider.RootCAPEM]) and
//     asks clients for a certificate, accepting any. A token issued to a
//     client registered with "tls_client_certificate_bound_access_tokens":
//     true is bound to the certificate the token request came with
//     (invalid_grant without one); introspection answers token_type "Bearer"
//     and cnf {"x5t#S256": base64url(SHA-256(certificate DER))}. Such a
//     client still authenticates with client_secret_basic/post or
//     private_key_jwt. Talk to the server with [Provider.HTTPClient];
//     [ClientCertificate] makes a client certificate.
//
// A token is bound by one mechanism at most: a DPoP proof sent by a client
// registered for certificate-bound tokens is refused.
//
// Node.js and npm must be installed. When examples/oidc-provider/node_modules
// is missing or does not hold the versions package.json pins, Start runs
// `npm ci` there (CI runs `npm ci --prefix examples/oidc-provider` first); a
// failure fails the test, it never skips it.
package oidcprovider

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phantomgate/caddy-phantom-token/examples/internal/procutil"
)

const (
	// readyTimeout bounds how long Start waits for the READY line. It is
	// generous because a start is normally under a second but the server
	// makes a 2048-bit RSA key first, and on a 2-core CI machine busy with
	// other race-enabled test binaries a 30 s bound was once exceeded. A
	// server that dies is noticed at once, whatever this says.
	readyTimeout = 2 * time.Minute
	// npmTimeout bounds `npm ci`.
	npmTimeout = 5 * time.Minute
	// stopGrace is how long the server has to exit after SIGTERM.
	stopGrace = 5 * time.Second
)

// Options configures the server.
type Options struct {
	// Clients is the client metadata to register (RFC 7591 names, e.g.
	// client_id, client_secret, grant_types, token_endpoint_auth_method,
	// jwks, introspection_signed_response_alg).
	Clients []map[string]any
	// Resource is the resource indicator the gateway protects, e.g.
	// http://127.0.0.1:PORT/mcp. Client-credentials tokens requested for it
	// (or without a resource: it is the default) are opaque and introspect
	// with aud = Resource and scope within "mcp:tools mcp:read".
	Resource string
	// AccessTokenTTL is the access-token lifetime, whole seconds (rounded up);
	// zero means the server default, 300s.
	AccessTokenTTL time.Duration
	// DPoP enables DPoP (RFC 9449, oidc-provider features.dPoP): a token
	// request with a DPoP proof gets a DPoP-bound access token, and clients
	// may be registered with "dpop_bound_access_tokens": true. When false,
	// the feature is off: a DPoP header is ignored and the token is a
	// Bearer token, discovery has no dpop_signing_alg_values_supported, and
	// registering dpop_bound_access_tokens fails the start.
	DPoP bool
	// DPoPRequireNonce (needs DPoP) makes the server require a nonce of its
	// own in every DPoP proof: a proof without one, or with a stale or
	// unknown one, is answered HTTP 400 {"error":"use_dpop_nonce"} with a
	// fresh nonce in the DPoP-Nonce response header; a retry with that nonce
	// in the proof's "nonce" claim succeeds. Successful responses carry a
	// DPoP-Nonce header too when the nonce has rotated.
	DPoPRequireNonce bool
	// MTLS serves HTTPS instead of HTTP (Issuer and all endpoints become
	// https://127.0.0.1:PORT), requests a client certificate on every
	// connection (any certificate, or none, is accepted) and enables
	// certificate-bound access tokens (RFC 8705, oidc-provider features.mTLS
	// certificateBoundAccessTokens) for clients registered with
	// "tls_client_certificate_bound_access_tokens": true. Use
	// [Provider.HTTPClient] or [Provider.TLSClientConfig] to reach it.
	MTLS bool
}

// Provider is a running server.
type Provider struct {
	// Issuer is the issuer identifier, http://127.0.0.1:PORT
	// (https://127.0.0.1:PORT with Options.MTLS).
	Issuer string
	// Discovery is the parsed /.well-known/openid-configuration document.
	Discovery map[string]any
	// TokenURL, IntrospectionURL, RevocationURL and JWKSURL come from
	// Discovery.
	TokenURL, IntrospectionURL, RevocationURL, JWKSURL string
	// RootCAs holds the CA certificate that issued the server's TLS
	// certificate (for 127.0.0.1, ::1 and localhost); nil unless
	// Options.MTLS.
	RootCAs *x509.CertPool
	// RootCAPEM is that CA certificate, PEM-encoded, e.g. for a gateway's
	// trusted-CA file; nil unless Options.MTLS.
	RootCAPEM []byte

	client *http.Client // for the launcher's own requests
}

// ready is the JSON after "READY " on the server's stdout.
type ready struct {
	Issuer string `json:"issuer"`
	Port   int    `json:"port"`
}

// httpClient talks to the server on loopback, never through a proxy.
var httpClient = &http.Client{
	Timeout:   10 * time.Second,
	Transport: &http.Transport{Proxy: nil},
}

// TLSClientConfig returns a new TLS client configuration that trusts the
// server's certificate (RootCAs; the system roots when it is nil) and
// presents certs, e.g. one from [ClientCertificate] for certificate-bound
// tokens. With no certs the client sends no certificate.
func (p *Provider) TLSClientConfig(certs ...tls.Certificate) *tls.Config {
	return &tls.Config{
		RootCAs:      p.RootCAs,
		Certificates: certs,
		MinVersion:   tls.VersionTLS12,
	}
}

// HTTPClient returns a new HTTP client for the server: no proxy, a 10 s
// timeout, and for an HTTPS server [Provider.TLSClientConfig](certs...).
// Connections are not shared with other clients, so each client presents
// its own certificate.
func (p *Provider) HTTPClient(certs ...tls.Certificate) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			Proxy:           nil,
			TLSClientConfig: p.TLSClientConfig(certs...),
		},
	}
}

// Dir is examples/oidc-provider, found from this source file.
func Dir(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("oidcprovider: cannot locate the source directory (runtime.Caller)")
	}
	dir := filepath.Join(filepath.Dir(file), "..", "..", "oidc-provider")
	if _, err := os.Stat(filepath.Join(dir, "server.js")); err != nil {
		t.Fatalf("oidcprovider: %v", err)
	}
	return dir
}

// Start installs the npm packages when needed, starts `node server.js`,
// waits for it to be ready and reads its discovery document. The server is
// stopped (its whole process group) when the test ends; if the test failed,
// its output is written to the test log.
func Start(t testing.TB, opts Options) *Provider {
	t.Helper()
	dir := Dir(t)
	ensureInstalled(t, dir)

	clients := opts.Clients
	if clients == nil {
		clients = []map[string]any{}
	}
	clientsJSON, err := json.Marshal(clients)
	if err != nil {
		t.Fatalf("oidcprovider: encoding Options.Clients: %v", err)
	}
	env := append(os.Environ(),
		"PORT=0",
		"ISSUER=",
		"CLIENTS="+string(clientsJSON),
		"RESOURCE="+opts.Resource,
		"ACCESS_TOKEN_TTL=",
		"DPOP="+flag(opts.DPoP),
		"DPOP_REQUIRE_NONCE="+flag(opts.DPoPRequireNonce),
		"MTLS="+flag(opts.MTLS),
		"TLS_CERT=",
		"TLS_KEY=",
	)
	if opts.DPoPRequireNonce && !opts.DPoP {
		t.Fatal("oidcprovider: Options.DPoPRequireNonce needs Options.DPoP")
	}
	p := &Provider{}
	if opts.MTLS {
		caPEM, certPEM, keyPEM := serverCertificate(t)
		p.RootCAPEM = caPEM
		p.RootCAs = x509.NewCertPool()
		if !p.RootCAs.AppendCertsFromPEM(caPEM) {
			t.Fatal("oidcprovider: the generated CA certificate does not parse")
		}
		env = append(env, "TLS_CERT="+string(certPEM), "TLS_KEY="+string(keyPEM))
	}
	p.client = httpClient
	if opts.MTLS {
		p.client = p.HTTPClient()
	}
	if opts.AccessTokenTTL < 0 {
		t.Fatalf("oidcprovider: negative AccessTokenTTL %v", opts.AccessTokenTTL)
	}
	if opts.AccessTokenTTL > 0 {
		secs := int(math.Ceil(opts.AccessTokenTTL.Seconds()))
		env = append(env, "ACCESS_TOKEN_TTL="+strconv.Itoa(secs))
	}

	cmd := exec.Command("node", "server.js")
	cmd.Dir = dir
	cmd.Env = env
	procutil.SetProcessGroup(cmd)
	output := &lockedBuffer{}
	readyLine := make(chan string, 1)
	cmd.Stdout = &lineWatcher{out: output, prefix: "READY ", found: readyLine}
	cmd.Stderr = output

	if err := cmd.Start(); err != nil {
		t.Fatalf("oidcprovider: starting node server.js in %s: %v", dir, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		procutil.StopGroup(cmd, exited, stopGrace)
		if t.Failed() {
			t.Logf("oidc-provider output:\n%s", output.String())
		}
	})

	var line string
	select {
	case line = <-readyLine:
	case <-exited:
		t.Fatalf("oidcprovider: node server.js exited before it was ready: %v", waitErr)
	case <-time.After(readyTimeout):
		t.Fatalf("oidcprovider: node server.js not ready after %v", readyTimeout)
	}
	var r ready
	if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "READY ")), &r); err != nil || r.Issuer == "" {
		t.Fatalf("oidcprovider: bad readiness line %q: %v", line, err)
	}

	p.Issuer = r.Issuer
	p.Discovery = p.discovery(t)
	if iss, _ := p.Discovery["issuer"].(string); iss != p.Issuer {
		t.Fatalf("oidcprovider: discovery issuer %q, want %q", iss, p.Issuer)
	}
	for name, dst := range map[string]*string{
		"token_endpoint":         &p.TokenURL,
		"introspection_endpoint": &p.IntrospectionURL,
		"revocation_endpoint":    &p.RevocationURL,
		"jwks_uri":               &p.JWKSURL,
	} {
		v, _ := p.Discovery[name].(string)
		if v == "" {
			t.Fatalf("oidcprovider: discovery has no %s", name)
		}
		*dst = v
	}
	return p
}

func (p *Provider) discovery(t testing.TB) map[string]any {
	t.Helper()
	u := p.Issuer + "/.well-known/openid-configuration"
	resp, err := p.client.Get(u)
	if err != nil {
		t.Fatalf("oidcprovider: GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("oidcprovider: GET %s: %s: %s", u, resp.Status, body)
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("oidcprovider: discovery document: %v", err)
	}
	return doc
}

// ClientCredentialsToken gets an access token with the client_credentials
// grant, authenticating with client_secret_basic. scope and resource are sent
// when not empty.
func (p *Provider) ClientCredentialsToken(t testing.TB, clientID, secret, scope, resource string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	if resource != "" {
		form.Set("resource", resource)
	}
	status, body := p.postForm(t, p.TokenURL, clientID, secret, form)
	if status != http.StatusOK {
		t.Fatalf("oidcprovider: client credentials for %s: HTTP %d: %s", clientID, status, body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("oidcprovider: client credentials for %s: no access_token in %s (%v)", clientID, body, err)
	}
	return tok.AccessToken
}

// Revoke revokes an access token (RFC 7009). Only the client the token was
// issued to may revoke it.
func (p *Provider) Revoke(t testing.TB, clientID, secret, token string) {
	t.Helper()
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	status, body := p.postForm(t, p.RevocationURL, clientID, secret, form)
	if status != http.StatusOK {
		t.Fatalf("oidcprovider: revoking a token as %s: HTTP %d: %s", clientID, status, body)
	}
}

// postForm POSTs form to u with client_secret_basic (RFC 6749 §2.3.1: the id
// and secret are form-encoded before base64).
func (p *Provider) postForm(t testing.TB, u, clientID, secret string, form url.Values) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatalf("oidcprovider: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	resp, err := p.client.Do(req)
	if err != nil {
		t.Fatalf("oidcprovider: POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("oidcprovider: POST %s: reading the response: %v", u, err)
	}
	return resp.StatusCode, body
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// certLifetime is how long generated certificates are valid (from an hour
// ago, against clock skew).
const certLifetime = 24 * time.Hour

// newCertificate creates a certificate for key, signed by parent/parentKey
// (self-signed when parent is nil), and returns its DER.
func newCertificate(t testing.TB, tmpl *x509.Certificate, key *ecdsa.PrivateKey, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) []byte {
	t.Helper()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatalf("oidcprovider: %v", err)
	}
	now := time.Now()
	tmpl.SerialNumber = serial
	tmpl.NotBefore = now.Add(-time.Hour)
	tmpl.NotAfter = now.Add(certLifetime)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatalf("oidcprovider: creating a certificate: %v", err)
	}
	return der
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("oidcprovider: %v", err)
	}
	return key
}

// serverCertificate makes a CA and a server certificate it issues for
// 127.0.0.1, ::1 and localhost, and returns the CA certificate, the server
// certificate and the server key, PEM-encoded.
func serverCertificate(t testing.TB) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "oidc-provider test CA"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER := newCertificate(t, caTmpl, caKey, nil, nil)
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatalf("oidcprovider: %v", err)
	}
	key := newKey(t)
	der := newCertificate(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:    []string{"localhost"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, key, ca, caKey)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("oidcprovider: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

// ClientCertificate returns a new self-signed ECDSA P-256 TLS client
// certificate for commonName, valid from an hour ago for a day, with its
// private key and Leaf set. The server accepts any client certificate;
// a token bound to this one introspects with cnf["x5t#S256"] =
// base64url(SHA-256(Certificate[0])).
func ClientCertificate(t testing.TB, commonName string) tls.Certificate {
	t.Helper()
	key := newKey(t)
	der := newCertificate(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: commonName},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, key, nil, nil)
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("oidcprovider: %v", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

var installMu sync.Mutex

// ensureInstalled makes sure node and npm exist and node_modules holds the
// versions package.json pins, running `npm ci` otherwise. A file lock keeps
// test binaries running in parallel from installing at the same time.
func ensureInstalled(t testing.TB, dir string) {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("oidcprovider: %s is not installed; the oidc-provider tests need Node.js 20+ and npm", tool)
		}
	}
	installMu.Lock()
	defer installMu.Unlock()
	if installedMatches(dir) == nil {
		return
	}
	lockPath := filepath.Join(os.TempDir(), "phantom-token-oidc-provider-npm.lock")
	unlock, err := procutil.LockFile(lockPath, 0o600)
	if err != nil {
		t.Fatalf("oidcprovider: npm install lock %s: %v", lockPath, err)
	}
	defer unlock()
	if installedMatches(dir) == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), npmTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		ci := ""
		if os.Getenv("CI") == "true" {
			ci = " (CI=true: `npm ci --prefix examples/oidc-provider` must succeed)"
		}
		t.Fatalf("oidcprovider: npm ci in %s%s: %v\n%s", dir, ci, err, out)
	}
	if err := installedMatches(dir); err != nil {
		t.Fatalf("oidcprovider: after npm ci: %v", err)
	}
}

// installedMatches reports whether node_modules holds every dependency at
// the exact version package.json pins.
func installedMatches(dir string) error {
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	if err := readJSON(filepath.Join(dir, "package.json"), &pkg); err != nil {
		return err
	}
	if len(pkg.Dependencies) == 0 {
		return errors.New("package.json has no dependencies")
	}
	for name, want := range pkg.Dependencies {
		var installed struct {
			Version string `json:"version"`
		}
		if err := readJSON(filepath.Join(dir, "node_modules", name, "package.json"), &installed); err != nil {
			return fmt.Errorf("%s is not installed: %w", name, err)
		}
		if installed.Version != want {
			return fmt.Errorf("%s %s is installed, package.json pins %s", name, installed.Version, want)
		}
	}
	return nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// lockedBuffer collects the server's output from two goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lineWatcher copies stdout to out and sends the first complete line that
// starts with prefix to found.
type lineWatcher struct {
	out     io.Writer
	prefix  string
	found   chan<- string
	partial []byte
	sent    bool
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.out.Write(p)
	if w.sent {
		return len(p), nil
	}
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(w.partial[:i]), "\r")
		w.partial = w.partial[i+1:]
		if strings.HasPrefix(line, w.prefix) {
			w.sent = true
			w.partial = nil
			w.found <- line
			break
		}
	}
	return len(p), nil
}
