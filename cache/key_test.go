package cache

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"
)

func TestKeyer(t *testing.T) {
	t.Run("deterministic", func(t *testing.T) {
		if NewKeyer("id").Key("tok") != NewKeyer("id").Key("tok") {
			t.Fatal("same identity and token gave different keys")
		}
	})
	t.Run("identity separates", func(t *testing.T) {
		if NewKeyer("https://as1/introspect|c|r").Key("tok") == NewKeyer("https://as2/introspect|c|r").Key("tok") {
			t.Fatal("same token under different identities gave the same key")
		}
	})
	t.Run("token separates", func(t *testing.T) {
		k := NewKeyer("id")
		if k.Key("tok1") == k.Key("tok2") {
			t.Fatal("different tokens gave the same key")
		}
	})
	t.Run("no boundary ambiguity", func(t *testing.T) {
		cases := [][2][2]string{
			{{"ab", "c"}, {"a", "bc"}},
			{{"", "abc"}, {"abc", ""}},
			{{"a", ""}, {"", "a"}},
			// A token that imitates a length prefix.
			{{"", "\x00\x00\x00\x00\x00\x00\x00\x01ab"}, {"a", "b"}},
		}
		for _, c := range cases {
			a := NewKeyer(c[0][0]).Key(c[0][1])
			b := NewKeyer(c[1][0]).Key(c[1][1])
			if a == b {
				t.Errorf("identity %q + token %q collides with identity %q + token %q", c[0][0], c[0][1], c[1][0], c[1][1])
			}
		}
	})
	t.Run("documented encoding", func(t *testing.T) {
		id, tok := "https://as/introspect", "opaque-123"
		var buf []byte
		buf = binary.BigEndian.AppendUint64(buf, uint64(len(id)))
		buf = append(buf, id...)
		buf = append(buf, tok...)
		if got, want := NewKeyer(id).Key(tok), Key(sha256.Sum256(buf)); got != want {
			t.Fatalf("Key = %x, want sha256(len||identity||token) = %x", got, want)
		}
	})
	t.Run("zero Keyer equals empty identity", func(t *testing.T) {
		var zero Keyer
		if zero.Key("t") != NewKeyer("").Key("t") {
			t.Fatal("zero Keyer differs from NewKeyer(\"\")")
		}
	})
	t.Run("fingerprint", func(t *testing.T) {
		k := NewKeyer("id").Key("tok")
		if fp := k.Fingerprint(); len(fp) != 16 {
			t.Fatalf("Fingerprint() = %q, want 16 hex chars", fp)
		}
	})
}

func TestKeyerKeyDoesNotAllocate(t *testing.T) {
	k := NewKeyer("https://as.example.com/oauth/v2/introspect|gateway-client|https://mcp.example.com")
	tok := "_0XBPWQQ_2fe2a8c0-5ae3-4c8a-9b7e-2b7c0a1d2f4e-a-longer-opaque-token-value"
	var sink Key
	if n := testing.AllocsPerRun(100, func() { sink = k.Key(tok) }); n != 0 {
		t.Fatalf("Keyer.Key allocates %v times per call, want 0", n)
	}
	_ = sink
}

var keySink Key

func BenchmarkKeyerKey(b *testing.B) {
	k := NewKeyer("https://as.example.com/oauth/v2/introspect|gateway-client|https://mcp.example.com")
	tok := "_0XBPWQQ_2fe2a8c0-5ae3-4c8a-9b7e-2b7c0a1d2f4e"
	b.ReportAllocs()
	for b.Loop() {
		keySink = k.Key(tok)
	}
}
