// Package dpopclient is a small DPoP (RFC 9449) client for Go HTTP clients,
// such as the go-sdk MCP client, which has no DPoP support of its own:
//
//   - [Key] is the client's proof-of-possession key pair (ES256 or EdDSA);
//     it signs DPoP proofs ([Key.Proof]) and has the RFC 7638 thumbprint a
//     bound token carries as cnf.jkt ([Key.Thumbprint]);
//   - [ClientCredentials] gets a DPoP-bound access token from an
//     authorization server with the client-credentials grant, answering a
//     use_dpop_nonce error once with the server's nonce;
//   - [Transport] is an http.RoundTripper that sends every request with
//     "Authorization: DPoP <token>" and a fresh proof for that request
//     (htm = its method, htu = its URL without query and fragment, ath =
//     the token's hash, a new jti, iat now), and retries a request once
//     when the resource server answers 401 use_dpop_nonce with a
//     DPoP-Nonce header (RFC 9449 §9).
//
// To run an MCP session with a DPoP-bound token through the phantom token
// gateway:
//
//	key, _ := dpopclient.NewKey("ES256")
//	tok, _ := dpopclient.ClientCredentials(ctx, nil, key, dpopclient.TokenRequest{
//		TokenURL: asTokenURL, ClientID: id, ClientSecret: secret,
//		Scope: "mcp:tools", Resource: "https://mcp.example.com/mcp",
//	})
//	transport := &mcp.StreamableClientTransport{
//		Endpoint:   "https://mcp.example.com/mcp",
//		HTTPClient: &http.Client{Transport: &dpopclient.Transport{Key: key, Token: tok.AccessToken}},
//	}
//	session, err := mcp.NewClient(impl, nil).Connect(ctx, transport, nil)
//
// The proof's htu is the URL the request is sent to, so the client must
// address the server by the URL the server expects (for the gateway: the
// origin of its `resource`, or its `dpop { origin … }`).
//
// This is example code, kept short: it holds one static token (no refresh)
// and keeps the last nonce each origin sent in memory.
package dpopclient

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// Key is a DPoP key pair. It is safe for concurrent use.
type Key struct {
	alg        jwa.SignatureAlgorithm
	priv, pub  jwk.Key
	thumbprint string
}

// NewKey generates a key for alg: "ES256" (ECDSA P-256) or "EdDSA"
// (Ed25519), the two algorithms every DPoP server supports.
func NewKey(alg string) (*Key, error) {
	var raw any
	var err error
	switch alg {
	case "ES256":
		raw, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EdDSA":
		_, raw, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("dpopclient: unsupported algorithm %q (want ES256 or EdDSA)", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("dpopclient: generating a %s key: %w", alg, err)
	}
	return keyFrom(jwa.SignatureAlgorithm(alg), raw)
}

// NewKeyFromSigner wraps an existing private key: an *ecdsa.PrivateKey on
// P-256 (ES256) or an ed25519.PrivateKey (EdDSA).
func NewKeyFromSigner(s crypto.Signer) (*Key, error) {
	switch k := s.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, errors.New("dpopclient: an ECDSA key must be on P-256")
		}
		return keyFrom(jwa.ES256, k)
	case ed25519.PrivateKey:
		return keyFrom(jwa.EdDSA, k)
	}
	return nil, fmt.Errorf("dpopclient: unsupported key type %T", s)
}

func keyFrom(alg jwa.SignatureAlgorithm, raw any) (*Key, error) {
	priv, err := jwk.FromRaw(raw)
	if err != nil {
		return nil, fmt.Errorf("dpopclient: %w", err)
	}
	pub, err := priv.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("dpopclient: %w", err)
	}
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("dpopclient: %w", err)
	}
	return &Key{alg: alg, priv: priv, pub: pub, thumbprint: base64.RawURLEncoding.EncodeToString(tp)}, nil
}

// Algorithm is the proofs' JWS algorithm, "ES256" or "EdDSA".
func (k *Key) Algorithm() string { return k.alg.String() }

// Thumbprint is the RFC 7638 SHA-256 thumbprint of the public key,
// base64url without padding: the cnf.jkt of a token bound to this key.
func (k *Key) Thumbprint() string { return k.thumbprint }

// PublicJWK is the public key as a JWK (what proofs carry in their header).
func (k *Key) PublicJWK() jwk.Key { return k.pub }

// Proof signs a DPoP proof (RFC 9449 §4.2) for one request: method (htm)
// to target (htu, sent without its query and fragment), a new random jti
// and iat now. accessToken, when not empty, is bound by ath (base64url of
// its SHA-256): proofs sent with a token need it; a proof sent to the
// token endpoint to obtain one has none. nonce, when not empty, is the
// server's DPoP-Nonce.
func (k *Key) Proof(method, target, accessToken, nonce string) (string, error) {
	htu, err := HTU(target)
	if err != nil {
		return "", err
	}
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	claims := map[string]any{
		"jti": base64.RawURLEncoding.EncodeToString(jti),
		"htm": method,
		"htu": htu,
		"iat": time.Now().Unix(),
	}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		claims["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	hdrs := jws.NewHeaders()
	if err := hdrs.Set(jws.TypeKey, "dpop+jwt"); err != nil {
		return "", err
	}
	if err := hdrs.Set(jws.JWKKey, k.pub); err != nil {
		return "", err
	}
	signed, err := jws.Sign(payload, jws.WithKey(k.alg, k.priv, jws.WithProtectedHeaders(hdrs)))
	if err != nil {
		return "", fmt.Errorf("dpopclient: signing a proof: %w", err)
	}
	return string(signed), nil
}

// HTU is the htu of a request to target: the absolute http(s) URL without
// its query, fragment and userinfo.
func HTU(target string) (string, error) {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("dpopclient: htu: want an absolute http(s) URL, got %q", target)
	}
	v := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	return v.String(), nil
}

// origin is scheme://host[:port] of u, the scope of a server's nonce.
func origin(u *url.URL) string { return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host) }

// ---------------------------------------------------------------------------
// Getting a token

// TokenRequest is a client-credentials token request.
type TokenRequest struct {
	// TokenURL is the authorization server's token endpoint.
	TokenURL string
	// ClientID and ClientSecret authenticate the client
	// (client_secret_basic).
	ClientID, ClientSecret string
	// Scope and Resource (RFC 8707) are sent when not empty.
	Scope, Resource string
}

// Token is a token response.
type Token struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope"`
}

// ClientCredentials gets a DPoP-bound access token with the
// client-credentials grant, sending a proof of key (htm POST, htu the
// token endpoint, no ath). When the authorization server answers
// use_dpop_nonce with a DPoP-Nonce header (RFC 9449 §8), it retries once
// with that nonce. A token whose token_type is not DPoP is an error: the
// server ignored the proof and the token is not bound. client nil means
// http.DefaultClient.
func ClientCredentials(ctx context.Context, client *http.Client, key *Key, r TokenRequest) (*Token, error) {
	if client == nil {
		client = http.DefaultClient
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	if r.Scope != "" {
		form.Set("scope", r.Scope)
	}
	if r.Resource != "" {
		form.Set("resource", r.Resource)
	}
	nonce := ""
	for attempt := 0; ; attempt++ {
		proof, err := key.Proof(http.MethodPost, r.TokenURL, "", nonce)
		if err != nil {
			return nil, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.TokenURL, strings.NewReader(form.Encode()))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		req.Header.Set("DPoP", proof)
		req.SetBasicAuth(url.QueryEscape(r.ClientID), url.QueryEscape(r.ClientSecret))
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("dpopclient: token request: %w", err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("dpopclient: token request: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			var e struct {
				Error string `json:"error"`
			}
			_ = json.Unmarshal(body, &e)
			if n := resp.Header.Get("DPoP-Nonce"); e.Error == "use_dpop_nonce" && n != "" && attempt == 0 {
				nonce = n
				continue
			}
			return nil, fmt.Errorf("dpopclient: token request: HTTP %d: %s", resp.StatusCode, body)
		}
		var tok Token
		if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" {
			return nil, fmt.Errorf("dpopclient: token response without access_token: %s", body)
		}
		if !strings.EqualFold(tok.TokenType, "DPoP") {
			return nil, fmt.Errorf("dpopclient: token_type %q, want DPoP: the server did not bind the token", tok.TokenType)
		}
		return &tok, nil
	}
}

// ---------------------------------------------------------------------------
// Using it

// Transport adds "Authorization: DPoP <Token>" and a fresh DPoP proof by
// Key to every request, and answers a resource server's use_dpop_nonce
// challenge: a 401 whose WWW-Authenticate has error="use_dpop_nonce" and
// that carries a DPoP-Nonce header is retried once with a proof holding
// that nonce. The last nonce each origin sent (on any response) goes into
// the next proofs to that origin, so usually only the first request pays
// the extra round trip.
//
// The request is not modified: a clone is sent. A body the retry needs is
// replayed with Request.GetBody (set by http.NewRequest for in-memory
// bodies), or read into memory first when there is none.
//
// A Transport is safe for concurrent use; do not copy it after first use.
type Transport struct {
	// Base sends the requests; nil means http.DefaultTransport.
	Base http.RoundTripper
	// Key signs the proofs; the token must be bound to it.
	Key *Key
	// Token is the DPoP-bound access token.
	Token string

	mu     sync.Mutex
	nonces map[string]string // by origin
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	if r.URL == nil {
		closeBody(r)
		return nil, errors.New("dpopclient: request has no URL")
	}
	getBody := r.GetBody
	body := r.Body
	if body != nil && body != http.NoBody && getBody == nil {
		b, err := io.ReadAll(body)
		body.Close()
		if err != nil {
			return nil, fmt.Errorf("dpopclient: buffering the request body: %w", err)
		}
		getBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
		body, _ = getBody()
	}
	org := origin(r.URL)
	for attempt := 0; ; attempt++ {
		nonce := t.nonce(org)
		proof, err := t.Key.Proof(r.Method, r.URL.String(), t.Token, nonce)
		if err != nil {
			if body != nil {
				body.Close()
			}
			return nil, err
		}
		req := r.Clone(r.Context())
		req.Body, req.GetBody = body, getBody
		req.Header.Set("Authorization", "DPoP "+t.Token)
		req.Header.Set("DPoP", proof)
		resp, err := base.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		fresh := resp.Header.Get("DPoP-Nonce")
		if fresh != "" {
			t.setNonce(org, fresh)
		}
		if attempt > 0 || resp.StatusCode != http.StatusUnauthorized || fresh == "" || fresh == nonce || !useDPoPNonce(resp.Header) {
			return resp, nil
		}
		// Retry with the nonce: the first response is dropped.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		body = nil
		if getBody != nil {
			if body, err = getBody(); err != nil {
				return nil, fmt.Errorf("dpopclient: replaying the request body: %w", err)
			}
		}
	}
}

// useDPoPNonce reports whether a response challenges with DPoP
// error="use_dpop_nonce" (RFC 9449 §9).
func useDPoPNonce(h http.Header) bool {
	for _, v := range h.Values("WWW-Authenticate") {
		scheme, params, _ := strings.Cut(strings.TrimSpace(v), " ")
		if strings.EqualFold(scheme, "DPoP") && strings.Contains(params, `error="use_dpop_nonce"`) {
			return true
		}
	}
	return false
}

func (t *Transport) nonce(origin string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.nonces[origin]
}

func (t *Transport) setNonce(origin, nonce string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.nonces == nil {
		t.nonces = map[string]string{}
	}
	t.nonces[origin] = nonce
}

func closeBody(r *http.Request) {
	if r.Body != nil {
		r.Body.Close()
	}
}
