package redisstore

import (
	"bytes"
	"errors"
	"testing"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	e, err := NewEnvelope("fleet secret")
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte(`{"sub":"alice","jwt":"eyJ..."}`)
	sealed, err := e.Seal("opaque-token", "phantom_token:e:k1", plain)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("alice")) || bytes.Contains(sealed, []byte("eyJ")) {
		t.Fatalf("sealed value shows its plaintext: %q", sealed)
	}
	if len(sealed) != len(plain)+envelopeOverhead {
		t.Errorf("sealed length %d, want %d", len(sealed), len(plain)+envelopeOverhead)
	}
	got, err := e.Open("opaque-token", "phantom_token:e:k1", sealed)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, %v; want %q", got, err, plain)
	}
	again, _ := e.Seal("opaque-token", "phantom_token:e:k1", plain)
	if bytes.Equal(again, sealed) {
		t.Error("two seals of one plaintext are equal: the nonce is not random")
	}
}

func TestEnvelopeRefusesWhatItDidNotSeal(t *testing.T) {
	e, _ := NewEnvelope("fleet secret")
	other, _ := NewEnvelope("another fleet's secret")
	const token, key = "opaque-token", "phantom_token:e:k1"
	sealed, err := e.Seal(token, key, []byte("entry"))
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)/2] ^= 1
	wrongVersion := bytes.Clone(sealed)
	wrongVersion[0] = 2
	forged, _ := other.Seal(token, key, []byte("forged entry"))
	for _, c := range []struct {
		name       string
		env        *Envelope
		token, key string
		value      []byte
	}{
		{"wrong token", e, "another-token", key, sealed},
		{"wrong secret", other, token, key, sealed},
		{"written without the secret", e, token, key, forged},
		{"replayed under another key", e, token, "phantom_token:e:k2", sealed},
		{"tampered", e, token, key, flipped},
		{"truncated", e, token, key, sealed[:len(sealed)-1]},
		{"shorter than the overhead", e, token, key, sealed[:envelopeOverhead-1]},
		{"empty", e, token, key, nil},
		{"unknown version", e, token, key, wrongVersion},
	} {
		if got, err := c.env.Open(c.token, c.key, c.value); !errors.Is(err, ErrOpen) {
			t.Errorf("%s: Open = %q, %v; want ErrOpen", c.name, got, err)
		}
	}
}

func TestNewEnvelopeNeedsASecret(t *testing.T) {
	if _, err := NewEnvelope(""); err == nil {
		t.Fatal("NewEnvelope(\"\") succeeded")
	}
}
