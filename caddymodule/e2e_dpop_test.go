package caddymodule_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// dpopKey is a client's DPoP key pair.
type dpopKey struct {
	alg  jwa.SignatureAlgorithm
	priv jwk.Key
	pub  jwk.Key
}

func newDPoPKey(t *testing.T, alg jwa.SignatureAlgorithm) dpopKey {
	t.Helper()
	var raw any
	var err error
	switch alg {
	case jwa.ES256:
		raw, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jwa.EdDSA:
		_, raw, err = ed25519.GenerateKey(rand.Reader)
	case jwa.PS256, jwa.RS256:
		raw, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		t.Fatal(err)
	}
	priv, err := jwk.FromRaw(raw)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := priv.PublicKey()
	return dpopKey{alg: alg, priv: priv, pub: pub}
}

// thumbprint is the key's RFC 7638 SHA-256 thumbprint, as cnf.jkt.
func (k dpopKey) thumbprint(t *testing.T) string {
	t.Helper()
	tp, err := k.pub.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// proofOpts change one thing about a proof, for the failing cases.
type proofOpts struct {
	htm, htu, typ string
	iat           time.Time
	ath           *string // nil: the right one; "": none
	jti           string
	nonce         string
	jwk           any // the header's jwk: default the public key
}

// proof signs a DPoP proof for a request to the gateway's resource.
func (k dpopKey) proof(t *testing.T, token string, o proofOpts) string {
	t.Helper()
	if o.htm == "" {
		o.htm = http.MethodGet
	}
	if o.htu == "" {
		o.htu = resource
	}
	if o.typ == "" {
		o.typ = "dpop+jwt"
	}
	if o.iat.IsZero() {
		o.iat = time.Now()
	}
	if o.jti == "" {
		o.jti = base64.RawURLEncoding.EncodeToString(randomBytes(t, 16))
	}
	claims := map[string]any{"jti": o.jti, "htm": o.htm, "htu": o.htu, "iat": o.iat.Unix()}
	sum := sha256.Sum256([]byte(token))
	ath := base64.RawURLEncoding.EncodeToString(sum[:])
	if o.ath != nil {
		ath = *o.ath
	}
	if ath != "" {
		claims["ath"] = ath
	}
	if o.nonce != "" {
		claims["nonce"] = o.nonce
	}
	payload, _ := json.Marshal(claims)
	hdrs := jws.NewHeaders()
	_ = hdrs.Set(jws.TypeKey, o.typ)
	var key any = k.pub
	if o.jwk != nil {
		key = o.jwk
	}
	if err := hdrs.Set(jws.JWKKey, key); err != nil {
		t.Fatal(err)
	}
	signed, err := jws.Sign(payload, jws.WithKey(k.alg, k.priv, jws.WithProtectedHeaders(hdrs)))
	if err != nil {
		t.Fatal(err)
	}
	return string(signed)
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func strPtr(s string) *string { return &s }

// dpopSite accepts DPoP (and Bearer) and exposes its metrics.
const dpopSite = `
	@pt path /mcp* /.well-known/*
	phantom_token @pt {
		introspection_endpoint {AS}/introspect
		client_id gateway
		client_secret s3cret
		as_jwks_uri {AS}/jwks
		resource ` + resource + `
		authorization_server {AS}
		required_scopes mcp:tools
		dpop {
			algorithms ES256 EdDSA
		}
	}
	route /mcp* {
		reverse_proxy {UPSTREAM}
	}
	handle /metrics {
		metrics
	}
`

// dpopDo sends a GET /mcp with "Authorization: DPoP <token>" and the given
// DPoP header values; Host may be spoofed.
func dpopDo(t *testing.T, g *gateway, token string, proofs []string, headers ...string) *http.Response {
	t.Helper()
	h := []string{"Authorization", "DPoP " + token}
	for _, p := range proofs {
		h = append(h, "DPoP", p)
	}
	noteSecret(token)
	resp, _ := g.do(t, http.MethodGet, "/mcp", append(h, headers...)...)
	return resp
}

// TestDPoPProofs: a DPoP-bound token from a stub AS (cnf.jkt of the
// client's key) through a route with dpop. A good proof (ES256, EdDSA)
// passes and the upstream gets "Bearer <JWT>" and no DPoP header; each rule
// of RFC 9449 §4.3 has a failing case answered 401 invalid_dpop_proof,
// never forwarded, with a DPoP challenge beside the Bearer one; a key that
// is not the token's is binding_mismatch.
func TestDPoPProofs(t *testing.T) {
	as, up := newStubAS(t), newRecorder(t)
	g := startCaddy(t, as, up, dpopSite)
	es, ed := newDPoPKey(t, jwa.ES256), newDPoPKey(t, jwa.EdDSA)
	as.active(t, "dpop-es-token-0001", map[string]any{"cnf": map[string]any{"jkt": es.thumbprint(t)}, "token_type": "DPoP"})
	as.active(t, "dpop-ed-token-0001", map[string]any{"cnf": map[string]any{"jkt": ed.thumbprint(t)}})

	for _, c := range []struct {
		key   dpopKey
		token string
	}{{es, "dpop-es-token-0001"}, {ed, "dpop-ed-token-0001"}} {
		for range 2 { // the miss, then a hit: the proof is checked on both
			n := up.count()
			if resp := dpopDo(t, g, c.token, []string{c.key.proof(t, c.token, proofOpts{})}); resp.StatusCode != http.StatusOK {
				t.Fatalf("%s with a good proof: status %d (%q)", c.key.alg, resp.StatusCode, resp.Header.Values("WWW-Authenticate"))
			}
			got := up.last(t)
			if up.count() != n+1 || !strings.HasPrefix(got.Header.Get("Authorization"), "Bearer eyJ") || len(got.Header.Values("DPoP")) != 0 {
				t.Fatalf("upstream got Authorization %q, DPoP %q; want the Bearer JWT and no proof", got.Header.Get("Authorization"), got.Header.Values("DPoP"))
			}
		}
	}
	if as.calls.Load() != 2 {
		t.Errorf("AS calls %d, want 2: the binding is cached, the proof never", as.calls.Load())
	}

	tok := "dpop-es-token-0001"
	hs, _ := jwk.FromRaw(randomBytes(t, 32))
	hmacKey := dpopKey{alg: jwa.HS256, priv: hs, pub: hs}
	rsaKey := newDPoPKey(t, jwa.PS256) // a good algorithm, but not on this route's list
	replayed := es.proof(t, tok, proofOpts{})
	if resp := dpopDo(t, g, tok, []string{replayed}); resp.StatusCode != http.StatusOK {
		t.Fatalf("first use of a proof: %d", resp.StatusCode)
	}
	before, _ := readMetric(t, g, bindingMetricLine, "dpop_invalid")
	beforeReplay, _ := readMetric(t, g, bindingMetricLine, "dpop_replay")
	for _, c := range []struct {
		name    string
		proofs  []string
		headers []string
	}{
		{"no proof", nil, nil},
		{"two DPoP headers", []string{es.proof(t, tok, proofOpts{}), es.proof(t, tok, proofOpts{})}, nil},
		{"wrong htm", []string{es.proof(t, tok, proofOpts{htm: http.MethodPost})}, nil},
		{"wrong htu path", []string{es.proof(t, tok, proofOpts{htu: "https://mcp.example.com/other"})}, nil},
		{"htu for the spoofed Host", []string{es.proof(t, tok, proofOpts{htu: "https://evil.example.com/mcp"})}, []string{"Host", "evil.example.com"}},
		{"htu of the listener, not the resource", []string{es.proof(t, tok, proofOpts{htu: g.url + "/mcp"})}, nil},
		{"stale iat", []string{es.proof(t, tok, proofOpts{iat: time.Now().Add(-2 * time.Minute)})}, nil},
		{"future iat", []string{es.proof(t, tok, proofOpts{iat: time.Now().Add(time.Minute)})}, nil},
		{"no ath", []string{es.proof(t, tok, proofOpts{ath: strPtr("")})}, nil},
		{"ath of another token", []string{es.proof(t, "another-token", proofOpts{})}, nil},
		{"typ JWT", []string{es.proof(t, tok, proofOpts{typ: "JWT"})}, nil},
		{"HS256 with a symmetric jwk", []string{hmacKey.proof(t, tok, proofOpts{})}, nil},
		{"PS256, not on the route's list", []string{rsaKey.proof(t, tok, proofOpts{})}, nil},
		{"private key material in jwk", []string{es.proof(t, tok, proofOpts{jwk: es.priv})}, nil},
		{"alg none", []string{noneProof(t, es, tok)}, nil},
		{"not a JWS", []string{"not-a-proof"}, nil},
	} {
		n := up.count()
		resp := dpopDo(t, g, tok, c.proofs, c.headers...)
		challenges := resp.Header.Values("WWW-Authenticate")
		if resp.StatusCode != http.StatusUnauthorized || len(challenges) != 2 ||
			!strings.HasPrefix(challenges[0], `DPoP error="invalid_dpop_proof"`) || !strings.Contains(challenges[0], `algs="ES256 EdDSA"`) ||
			!strings.Contains(challenges[0], "resource_metadata=") || !strings.HasPrefix(challenges[1], "Bearer ") {
			t.Errorf("%s: %d %q, want 401 with a DPoP invalid_dpop_proof challenge and a Bearer one", c.name, resp.StatusCode, challenges)
		}
		if up.count() != n {
			t.Errorf("%s: forwarded", c.name)
		}
	}
	// A replayed proof: its jti was seen.
	if resp := dpopDo(t, g, tok, []string{replayed}); resp.StatusCode != http.StatusUnauthorized ||
		!strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `DPoP error="invalid_dpop_proof"`) {
		t.Errorf("replayed proof: %d %q", resp.StatusCode, resp.Header.Values("WWW-Authenticate"))
	}
	// A good proof with a key the token is not bound to.
	if resp := dpopDo(t, g, tok, []string{ed.proof(t, tok, proofOpts{})}); resp.StatusCode != http.StatusUnauthorized ||
		!strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `DPoP error="invalid_token"`) {
		t.Errorf("key not matching cnf.jkt: %d %q", resp.StatusCode, resp.Header.Values("WWW-Authenticate"))
	}
	// An unbound token presented with a proof.
	as.active(t, "unbound-token-0001", nil)
	if resp := dpopDo(t, g, "unbound-token-0001", []string{es.proof(t, "unbound-token-0001", proofOpts{})}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("an unbound token as DPoP: %d, want 401", resp.StatusCode)
	}
	if got, _ := readMetric(t, g, bindingMetricLine, "dpop_invalid"); got-before != 16 {
		t.Errorf("dpop_invalid: +%v, want +16", got-before)
	}
	if got, _ := readMetric(t, g, bindingMetricLine, "dpop_replay"); got-beforeReplay != 1 {
		t.Errorf("dpop_replay: +%v, want +1", got-beforeReplay)
	}
	// Bearer is still accepted for unbound tokens, and a spoofed Host does
	// not change the htu a proof must name.
	if resp, _ := g.do(t, http.MethodGet, "/mcp", "Authorization", "Bearer unbound-token-0001"); resp.StatusCode != http.StatusOK {
		t.Errorf("an unbound Bearer token: %d", resp.StatusCode)
	}
	if resp := dpopDo(t, g, tok, []string{es.proof(t, tok, proofOpts{})}, "Host", "evil.example.com"); resp.StatusCode != http.StatusOK {
		t.Errorf("a proof for the resource with a spoofed Host: %d, want 200", resp.StatusCode)
	}
	if up.dump() != "" && strings.Contains(up.dump(), "dpop+jwt") {
		t.Error("a proof reached the upstream")
	}
}

// noneProof is a proof with alg none.
func noneProof(t *testing.T, k dpopKey, token string) string {
	t.Helper()
	jwkJSON, _ := json.Marshal(k.pub)
	header := `{"typ":"dpop+jwt","alg":"none","jwk":` + string(jwkJSON) + `}`
	sum := sha256.Sum256([]byte(token))
	payload := `{"jti":"none-1","htm":"GET","htu":"` + resource + `","iat":` + strconv.FormatInt(time.Now().Unix(), 10) +
		`,"ath":"` + base64.RawURLEncoding.EncodeToString(sum[:]) + `"}`
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc([]byte(payload)) + "."
}

// TestDPoPRequiredAndNonce: with required, a Bearer token is refused (a
// DPoP-only challenge) before the AS is asked; with nonce, the first proof
// gets use_dpop_nonce and a DPoP-Nonce, and the retry carrying it passes.
// The metadata publishes what the route accepts.
func TestDPoPRequiredAndNonce(t *testing.T) {
	as, up := newStubAS(t), newRecorder(t)
	site := strings.Replace(dpopSite, "algorithms ES256 EdDSA", "required\n\t\t\tnonce", 1)
	g := startCaddy(t, as, up, site)
	key := newDPoPKey(t, jwa.ES256)
	tok := "dpop-required-token-1"
	as.active(t, tok, map[string]any{"cnf": map[string]any{"jkt": key.thumbprint(t)}})
	as.active(t, "plain-bearer-token-1", nil)

	resp, _ := g.do(t, http.MethodGet, "/mcp", "Authorization", "Bearer plain-bearer-token-1")
	if c := resp.Header.Values("WWW-Authenticate"); resp.StatusCode != http.StatusUnauthorized || len(c) != 1 || !strings.HasPrefix(c[0], "DPoP ") {
		t.Fatalf("Bearer on a dpop-required route: %d %q, want 401 with a DPoP challenge only", resp.StatusCode, c)
	}
	if as.calls.Load() != 0 {
		t.Errorf("the AS was asked about a Bearer token on a dpop-required route")
	}

	resp = dpopDo(t, g, tok, []string{key.proof(t, tok, proofOpts{})})
	nonce := resp.Header.Get("DPoP-Nonce")
	if resp.StatusCode != http.StatusUnauthorized || nonce == "" || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `DPoP error="use_dpop_nonce"`) {
		t.Fatalf("a proof without a nonce: %d, DPoP-Nonce %q, %q", resp.StatusCode, nonce, resp.Header.Values("WWW-Authenticate"))
	}
	if resp := dpopDo(t, g, tok, []string{key.proof(t, tok, proofOpts{nonce: nonce})}); resp.StatusCode != http.StatusOK {
		t.Fatalf("the retry with the nonce: %d %q", resp.StatusCode, resp.Header.Values("WWW-Authenticate"))
	}
	if resp := dpopDo(t, g, tok, []string{key.proof(t, tok, proofOpts{nonce: "forged-nonce"})}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a forged nonce: %d", resp.StatusCode)
	}

	var md map[string]any
	mresp, body := g.do(t, http.MethodGet, "/.well-known/oauth-protected-resource/mcp")
	if mresp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &md) != nil {
		t.Fatalf("metadata: %d %s", mresp.StatusCode, body)
	}
	algs, _ := md["dpop_signing_alg_values_supported"].([]any)
	if md["dpop_bound_access_tokens_required"] != true || !slices.Equal(algs, []any{"ES256", "EdDSA", "PS256"}) {
		t.Errorf("metadata %s: want dpop_bound_access_tokens_required and the default algs", body)
	}
	if _, ok := md["tls_client_certificate_bound_access_tokens"]; ok {
		t.Errorf("metadata publishes tls_client_certificate_bound_access_tokens without mtls_bound")
	}
}
