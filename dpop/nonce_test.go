package dpop

import (
	"context"
	"strings"
	"testing"
	"time"
)

var testNonceKey = []byte("0123456789abcdef0123456789abcdef")

// nonceAt returns a nonce of source issued at t.
func nonceAt(ns *NonceSource, t time.Time) string {
	saved := ns.now
	ns.now = func() time.Time { return t }
	defer func() { ns.now = saved }()
	return ns.Nonce()
}

func TestVerifyNonce(t *testing.T) {
	k := testKeys(t)
	ns := NewNonceSource(testNonceKey, 5*time.Minute)
	other := NewNonceSource([]byte("another key, another fleet......"), 5*time.Minute)
	v := newTestVerifier(t, Config{Nonces: ns})
	withNonce := func(n any) []string {
		return one(craft(t, k.ec, "ES256", nil, map[string]any{"nonce": n}, nil))
	}
	cases := []struct {
		name   string
		proof  []string
		reason string // "" = accepted
	}{
		{"no nonce", one(craft(t, k.ec, "ES256", nil, nil, nil)), reasonNonceMissing},
		{"fresh nonce", withNonce(nonceAt(ns, testNow)), ""},
		{"nonce at the end of its lifetime", withNonce(nonceAt(ns, testNow.Add(-5*time.Minute))), ""},
		{"expired nonce", withNonce(nonceAt(ns, testNow.Add(-5*time.Minute-time.Second))), reasonNonce},
		{"nonce from a node slightly ahead", withNonce(nonceAt(ns, testNow.Add(DefaultLeeway))), ""},
		{"nonce from the future", withNonce(nonceAt(ns, testNow.Add(DefaultLeeway+time.Second))), reasonNonce},
		{"nonce of another source", withNonce(nonceAt(other, testNow)), reasonNonce},
		{"nonce tampered", withNonce(tamper(nonceAt(ns, testNow))), reasonNonce},
		{"nonce truncated", withNonce(nonceAt(ns, testNow)[:50]), reasonNonce},
		{"nonce empty", withNonce(""), reasonNonce},
		{"nonce not a string", withNonce(12345), reasonNonce},
		{"nonce made up", withNonce(strings.Repeat("A", nonceLen)), reasonNonce},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), tc.proof, testRequest())
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			checkError(t, err, CodeUseNonce, tc.reason, false)
		})
	}
}

// TestNonceFlow is the RFC 9449 §9 exchange: a proof without a nonce is
// answered use_dpop_nonce with a nonce, and the retry carrying it passes.
func TestNonceFlow(t *testing.T) {
	k := testKeys(t)
	ns := NewNonceSource(testNonceKey, 0)
	ns.now = func() time.Time { return testNow }
	v := newTestVerifier(t, Config{Nonces: ns})
	_, err := v.Verify(context.Background(), one(craft(t, k.ed, "EdDSA", nil, nil, nil)), testRequest())
	checkError(t, err, CodeUseNonce, reasonNonceMissing, false)
	nonce := ns.Nonce()
	retry := craft(t, k.ed, "EdDSA", nil, map[string]any{"nonce": nonce}, nil)
	if _, err := v.Verify(context.Background(), one(retry), testRequest()); err != nil {
		t.Fatalf("retry with the nonce: %v", err)
	}
	// Another node with the same key accepts the nonce too.
	peer := newTestVerifier(t, Config{Nonces: NewNonceSource(testNonceKey, 0)})
	again := craft(t, k.ed, "EdDSA", nil, map[string]any{"nonce": nonce}, nil)
	if _, err := peer.Verify(context.Background(), one(again), testRequest()); err != nil {
		t.Fatalf("another node sharing the key: %v", err)
	}
}

func TestNonceFormat(t *testing.T) {
	ns := NewNonceSource(testNonceKey, 0)
	if ns.lifetime != DefaultNonceLifetime {
		t.Errorf("lifetime = %v, want the default %v", ns.lifetime, DefaultNonceLifetime)
	}
	n := ns.Nonce()
	if len(n) != 54 || !isBase64URL(n) {
		t.Errorf("nonce %q: want 54 base64url characters", n)
	}
	// RFC 9449 §8.1: NQCHAR is %x21 / %x23-5B / %x5D-7E; base64url fits.
	for _, c := range n {
		if c < 0x21 || c == '"' || c == '\\' || c > 0x7e {
			t.Errorf("nonce has %q, not an NQCHAR", c)
		}
	}
	if !ns.valid(n, time.Now(), time.Second) {
		t.Error("a fresh nonce is not valid")
	}
	// The key is copied: changing the caller's slice changes nothing.
	key := append([]byte(nil), testNonceKey...)
	ns2 := NewNonceSource(key, 0)
	key[0] ^= 1
	if !ns2.valid(ns.Nonce(), time.Now(), time.Second) {
		t.Error("the key was not copied")
	}
}

// tamper changes the first character of s.
func tamper(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}
