package signer

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

func mustKey(t *testing.T, raw any) jwk.Key {
	t.Helper()
	k, err := jwk.FromRaw(raw)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSignVerifiesWithPublishedJWKS(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	for name, raw := range map[string]any{"RS256": rsaKey, "ES256": ecKey, "EdDSA": edKey} {
		t.Run(name, func(t *testing.T) {
			now := time.Unix(1_800_000_000, 0)
			s, err := New(Config{Issuer: "https://gw.example.com", Key: mustKey(t, raw), Lifetime: 10 * time.Minute, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			signed, exp, err := s.Sign(Claims{ClientID: "agent", Scope: "mcp:tools", Audience: []string{"https://mcp.example.com/mcp"}, ExpiresAt: now.Add(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			if !exp.Equal(now.Add(10 * time.Minute)) {
				t.Errorf("exp = %v, want now + lifetime", exp)
			}
			set, err := jwk.Parse(s.JWKS())
			if err != nil {
				t.Fatal(err)
			}
			tok, err := jwt.Parse([]byte(signed), jwt.WithKeySet(set), jwt.WithClock(jwt.ClockFunc(func() time.Time { return now })),
				jwt.WithIssuer("https://gw.example.com"), jwt.WithAudience("https://mcp.example.com/mcp"))
			if err != nil {
				t.Fatalf("the JWT does not verify against the published JWKS: %v", err)
			}
			if tok.Subject() != "agent" || tok.JwtID() == "" || tok.IssuedAt().Unix() != now.Unix() {
				t.Errorf("claims: sub %q jti %q iat %v", tok.Subject(), tok.JwtID(), tok.IssuedAt())
			}
			if scope, _ := tok.Get("scope"); scope != "mcp:tools" {
				t.Errorf("scope = %v", scope)
			}
			if cid, _ := tok.Get("client_id"); cid != "agent" {
				t.Errorf("client_id = %v", cid)
			}
			msg, _ := jws.Parse([]byte(signed))
			h := msg.Signatures()[0].ProtectedHeaders()
			if h.Type() != "at+jwt" || h.KeyID() == "" || string(h.Algorithm()) != name {
				t.Errorf("header typ %q kid %q alg %q", h.Type(), h.KeyID(), h.Algorithm())
			}
			// The header is built by hand: exactly these members, nothing else.
			seg, _, _ := strings.Cut(signed, ".")
			header, _ := base64.RawURLEncoding.DecodeString(seg)
			if want := `{"alg":"` + name + `","kid":"` + h.KeyID() + `","typ":"at+jwt"}`; string(header) != want {
				t.Errorf("header = %s, want %s", header, want)
			}
			var doc struct {
				Keys []map[string]any `json:"keys"`
			}
			_ = json.Unmarshal(s.JWKS(), &doc)
			if len(doc.Keys) != 1 || doc.Keys[0]["kid"] != h.KeyID() || doc.Keys[0]["d"] != nil {
				t.Errorf("JWKS = %s", s.JWKS())
			}
		})
	}
}

func TestSignNeverOutlivesTheOpaqueToken(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	key, _ := GenerateEphemeralKey()
	s, err := New(Config{Issuer: "https://gw", Key: key, Lifetime: time.Hour, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	_, exp, err := s.Sign(Claims{Subject: "alice", Audience: []string{"r"}, ExpiresAt: now.Add(90 * time.Second)})
	if err != nil || !exp.Equal(now.Add(90*time.Second)) {
		t.Fatalf("exp = %v, %v; want the opaque token's expiry", exp, err)
	}
	if _, _, err := s.Sign(Claims{Subject: "alice", Audience: []string{"r"}, ExpiresAt: now.Add(-time.Second)}); !errors.Is(err, ErrExpired) {
		t.Errorf("signing for an expired token: %v, want ErrExpired", err)
	}
	// In the last second of its life the token's exp, in whole seconds,
	// is already reached: the JWT would be born expired.
	s.now = func() time.Time { return now.Add(200 * time.Millisecond) }
	if _, _, err := s.Sign(Claims{Subject: "alice", Audience: []string{"r"}, ExpiresAt: now.Add(700 * time.Millisecond)}); !errors.Is(err, ErrExpired) {
		t.Errorf("signing in the token's last second: %v, want ErrExpired", err)
	}
	s.now = func() time.Time { return now }
	if _, _, err := s.Sign(Claims{Audience: []string{"r"}}); err == nil {
		t.Error("signing without sub and client_id must fail")
	}
	if _, _, err := s.Sign(Claims{Subject: "alice"}); err == nil {
		t.Error("signing without an audience must fail")
	}
}

func TestPreviousKeyIsPublished(t *testing.T) {
	cur, _ := GenerateEphemeralKey()
	prev, _ := GenerateEphemeralKey()
	s, err := New(Config{Issuer: "https://gw", Key: cur, Previous: prev})
	if err != nil {
		t.Fatal(err)
	}
	set, _ := jwk.Parse(s.JWKS())
	if set.Len() != 2 {
		t.Fatalf("JWKS has %d keys, want 2", set.Len())
	}
	// A JWT signed by the previous key still verifies.
	old, err := New(Config{Issuer: "https://gw", Key: prev})
	if err != nil {
		t.Fatal(err)
	}
	signed, _, _ := old.Sign(Claims{Subject: "a", Audience: []string{"r"}})
	if _, err := jwt.Parse([]byte(signed), jwt.WithKeySet(set)); err != nil {
		t.Errorf("a JWT signed with the previous key does not verify: %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	ok, _ := GenerateEphemeralKey()
	pub, _ := ok.PublicKey()
	sym := mustKey(t, []byte("0123456789abcdef0123456789abcdef"))
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no issuer", Config{Key: ok}, "issuer is required"},
		{"no key", Config{Issuer: "x"}, "key is required"},
		{"small RSA", Config{Issuer: "x", Key: mustKey(t, small)}, "at least 2048 bits"},
		{"P-384", Config{Issuer: "x", Key: mustKey(t, p384)}, "P-256"},
		{"public key", Config{Issuer: "x", Key: pub}, "a private key is required"},
		{"symmetric", Config{Issuer: "x", Key: sym}, "unsupported key type"},
		{"same kid", Config{Issuer: "x", Key: ok, Previous: ok}, "same kid"},
		{"negative lifetime", Config{Issuer: "x", Key: ok, Lifetime: -1}, "lifetime"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestSignCarriesTheBinding: a bound token's JWT has "cnf" with the binding
// the gateway enforced; an unbound token's has no "cnf".
func TestSignCarriesTheBinding(t *testing.T) {
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, err := New(Config{Issuer: "https://gw.example.com", Key: mustKey(t, ecKey)})
	if err != nil {
		t.Fatal(err)
	}
	aud := []string{"https://mcp.example.com/mcp"}
	for _, c := range []struct {
		claims Claims
		want   string // the "cnf" member as JSON, "" for none
	}{
		{Claims{ClientID: "a", Audience: aud}, ""},
		{Claims{ClientID: "a", Audience: aud, JKT: "jkt-1"}, `{"jkt":"jkt-1"}`},
		{Claims{ClientID: "a", Audience: aud, X5TS256: "x5t-1"}, `{"x5t#S256":"x5t-1"}`},
	} {
		signed, _, err := s.Sign(c.claims)
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(signed, ".")
		raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
		var body map[string]json.RawMessage
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Fatal(err)
		}
		if got := string(body["cnf"]); got != c.want {
			t.Errorf("claims %+v: cnf %s, want %q", c.claims, got, c.want)
		}
	}
}
