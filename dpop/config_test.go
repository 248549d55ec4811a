package dpop

import (
	"strings"
	"testing"
	"time"
)

func TestNewErrors(t *testing.T) {
	replay := NewMemoryReplayCache(10)
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"HS256", Config{Algorithms: []string{"ES256", "HS256"}, Replay: replay},
			`algorithms: "HS256" is not allowed: DPoP proofs are signed with a private key`},
		{"hs512", Config{Algorithms: []string{"hs512"}, Replay: replay}, `algorithms: "hs512" is not allowed`},
		{"none", Config{Algorithms: []string{"none"}, Replay: replay}, `algorithms: "none" is not allowed`},
		{"NONE", Config{Algorithms: []string{"NONE"}, Replay: replay}, `algorithms: "NONE" is not allowed`},
		{"unknown", Config{Algorithms: []string{"ES256K"}, Replay: replay}, `algorithms: "ES256K" is not supported`},
		{"lowercase", Config{Algorithms: []string{"es256"}, Replay: replay}, `algorithms: "es256" is not supported`},
		{"negative max age", Config{MaxAge: -time.Second, Replay: replay}, "max_age:"},
		{"negative leeway", Config{Leeway: -time.Second, Replay: replay}, "leeway:"},
		{"short nonce key", Config{Nonces: NewNonceSource(make([]byte, 31), 0), Replay: replay}, "nonces: the key must be at least 32 bytes"},
		{"no replay cache", Config{}, "replay: a replay cache is required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := New(tc.cfg)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("New = %v, %v; want an error starting %q", v, err, tc.want)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	v, err := New(Config{Replay: NewMemoryReplayCache(0)})
	if err != nil {
		t.Fatal(err)
	}
	if v.maxAge != DefaultMaxAge || v.leeway != DefaultLeeway || v.now == nil || v.nonces != nil {
		t.Errorf("defaults: maxAge %v leeway %v", v.maxAge, v.leeway)
	}
	if len(v.algs) != 3 {
		t.Errorf("algs = %v, want ES256 EdDSA PS256", v.algs)
	}
	for _, a := range []string{"ES256", "EdDSA", "PS256"} {
		if _, ok := v.algs[a]; !ok {
			t.Errorf("default algorithms lack %s", a)
		}
	}
	// Every supported algorithm can be configured.
	all := make([]string, 0, len(supportedAlgs))
	for a := range supportedAlgs {
		all = append(all, a)
	}
	if _, err := New(Config{Algorithms: all, Replay: NewMemoryReplayCache(0), Nonces: NewNonceSource(testNonceKey, 0)}); err != nil {
		t.Errorf("all supported algorithms: %v", err)
	}
}
