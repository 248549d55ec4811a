package demoas

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// signer holds the server's RSA signing key and its public JWKS.
type signer struct {
	private jwk.Key
	public  jwk.Set
}

// newSigner generates an RSA 2048 key whose kid is its RFC 7638 thumbprint.
func newSigner() (*signer, error) {
	raw, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("demoas: generate RSA key: %w", err)
	}
	private, err := jwk.FromRaw(raw)
	if err != nil {
		return nil, fmt.Errorf("demoas: wrap RSA key: %w", err)
	}
	tp, err := private.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("demoas: key thumbprint: %w", err)
	}
	kid := base64.RawURLEncoding.EncodeToString(tp)
	for k, v := range map[string]any{
		jwk.KeyIDKey:     kid,
		jwk.AlgorithmKey: jwa.RS256,
		jwk.KeyUsageKey:  jwk.ForSignature,
	} {
		if err := private.Set(k, v); err != nil {
			return nil, fmt.Errorf("demoas: set key %s: %w", k, err)
		}
	}
	public, err := jwk.PublicSetOf(jwk.NewSet())
	if err != nil {
		return nil, fmt.Errorf("demoas: public key set: %w", err)
	}
	pub, err := private.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("demoas: public key: %w", err)
	}
	if err := public.AddKey(pub); err != nil {
		return nil, fmt.Errorf("demoas: public key set: %w", err)
	}
	return &signer{private: private, public: public}, nil
}

// accessToken is what the server knows about an active access token.
type accessToken struct {
	Subject   string
	ClientID  string
	Scope     string
	Audience  []string
	IssuedAt  time.Time
	ExpiresAt time.Time
	ID        string
	// Actor is the client that obtained the token by token exchange, acting
	// for Subject; empty otherwise.
	Actor string
}

// sign returns t as an RFC 9068 access-token JWT (typ at+jwt, RS256).
func (s *signer) sign(issuer string, t accessToken) ([]byte, error) {
	b := jwt.NewBuilder().
		Issuer(issuer).
		Subject(t.Subject).
		IssuedAt(t.IssuedAt).
		Expiration(t.ExpiresAt).
		JwtID(t.ID).
		Claim("client_id", t.ClientID)
	if t.Scope != "" {
		b = b.Claim("scope", t.Scope)
	}
	if len(t.Audience) > 0 {
		b = b.Audience(t.Audience)
	}
	if t.Actor != "" {
		b = b.Claim("act", map[string]any{"sub": t.Actor})
	}
	tok, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("demoas: build JWT: %w", err)
	}
	hdrs := jws.NewHeaders()
	if err := hdrs.Set(jws.TypeKey, "at+jwt"); err != nil {
		return nil, fmt.Errorf("demoas: set typ: %w", err)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.RS256, s.private, jws.WithProtectedHeaders(hdrs)))
	if err != nil {
		return nil, fmt.Errorf("demoas: sign JWT: %w", err)
	}
	return signed, nil
}

// handleJWKS serves the public signing key.
func (s *Server) handleJWKS(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(s.signer.public)
}
