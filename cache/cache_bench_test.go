package cache

import (
	"context"
	"strings"
	"testing"
	"time"
)

// benchIdentity is about the length of a real handler's config identity
// (quoted endpoint, client, format, JWKS, issuer, resource).
var benchIdentity = `"https://as.example.com/oauth2/introspect","gateway","jwt","",` +
	`"https://as.example.com/.well-known/jwks.json","https://as.example.com","https://mcp.example.com/mcp"`

const benchToken = "ory_at_Zm9vYmFyYmF6cXV4LXNvbWUtb3BhcXVlLXRva2Vu.c2lnbmF0dXJl"

// BenchmarkKey is the per-request key derivation (SHA-256 over identity
// and token).
func BenchmarkKey(b *testing.B) {
	k := NewKeyer(benchIdentity)
	b.ReportAllocs()
	for b.Loop() {
		_ = k.Key(benchToken)
	}
}

func newBenchCache(b *testing.B, maxBytes int64) *Cache[string] {
	b.Helper()
	c, err := New(Config[string]{MaxBytes: maxBytes, Cost: func(s string) int64 { return int64(len(s)) }})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	return c
}

// newWarmBenchCache is a bench cache holding one ~1 KiB entry under
// benchToken's key, which it returns.
func newWarmBenchCache(b *testing.B) (*Cache[string], Key) {
	b.Helper()
	c := newBenchCache(b, 1<<20)
	k := NewKeyer(benchIdentity).Key(benchToken)
	if !c.Set(k, "Bearer "+strings.Repeat("j", 1024), time.Hour) {
		b.Fatal("Set refused")
	}
	return c, k
}

// BenchmarkGet is a hit on one warm entry, key precomputed.
func BenchmarkGet(b *testing.B) {
	c, k := newWarmBenchCache(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := c.Get(k); !ok {
			b.Fatal("miss")
		}
	}
}

// BenchmarkGetParallel is BenchmarkGet from GOMAXPROCS goroutines: the
// read path's shared state (the close guard, ristretto's shard lock and
// access buffer) shows up here.
func BenchmarkGetParallel(b *testing.B) {
	c, k := newWarmBenchCache(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := c.Get(k); !ok {
				b.Error("miss")
				return
			}
		}
	})
}

// BenchmarkGetManyKeys cycles through 100k warm entries of ~1 KiB.
func BenchmarkGetManyKeys(b *testing.B) {
	const n = 100_000
	c := newBenchCache(b, 1<<30)
	keyer := NewKeyer(benchIdentity)
	keys := make([]Key, n)
	val := "Bearer " + strings.Repeat("j", 1024)
	for i := range keys {
		keys[i] = keyer.Key("token-" + itoa(i))
		if !c.Set(keys[i], val, time.Hour) {
			b.Fatalf("Set %d refused", i)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, ok := c.Get(keys[i]); !ok {
			b.Fatal("miss")
		}
		if i++; i == n {
			i = 0
		}
	}
}

// BenchmarkGetOrLoadHit is GetOrLoad on a warm key: what a request pays
// when its plain Get raced an expiry (the handler tries Get first).
func BenchmarkGetOrLoadHit(b *testing.B) {
	c := newBenchCache(b, 1<<20)
	k := NewKeyer(benchIdentity).Key(benchToken)
	load := func(context.Context) (string, time.Duration, error) { return "v", time.Hour, nil }
	if _, _, err := c.GetOrLoad(context.Background(), k, load); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, hit, _ := c.GetOrLoad(ctx, k, load); !hit {
			b.Fatal("miss")
		}
	}
}
