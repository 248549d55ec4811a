package caddymodule

import (
	"context"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// Handlers naming the same JWKS share one verifier, which stays in the pool
// until its last user is cleaned up: a reload keeps the key set warm.
func TestVerifierSharedAcrossHandlers(t *testing.T) {
	const uri = "https://as.example.com/jwks-shared-test"
	newHandler := func() *Handler {
		h := validHandler()
		h.ASJWKSURI = uri
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		t.Cleanup(cancel)
		if err := h.Provision(ctx); err != nil {
			t.Fatal(err)
		}
		return h
	}
	oldH := newHandler()
	newH := newHandler()
	if oldH.verifier == nil || oldH.verifier != newH.verifier {
		t.Fatal("two handlers with the same as_jwks_uri got different verifiers")
	}
	key := newH.verifierKey // the URI, and tls_ca, which is empty here
	if err := oldH.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if _, ok := verifiers.References(key); !ok {
		t.Fatal("the verifier left the pool while a handler still uses it")
	}
	if err := newH.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if _, ok := verifiers.References(key); ok {
		t.Fatal("the verifier stayed in the pool after its last user left")
	}
	if err := newH.Cleanup(); err != nil { // a second Cleanup is harmless
		t.Fatal(err)
	}
}
