package dpop

import (
	"context"
	"testing"
	"time"
)

// benchmarkVerify measures one proof verification as the gateway makes it:
// a fresh proof (its own jti) each iteration, signed before the timer
// starts, checked against a memory replay cache big enough to hold them
// all (so the cost of its map growing is included, amortised).
func benchmarkVerify(b *testing.B, key any, alg string) {
	proofs := make([]string, b.N)
	for i := range proofs {
		proofs[i] = craft(b, key, alg, nil, nil, nil)
	}
	clock := func() time.Time { return testNow }
	v := newTestVerifier(b, Config{Now: clock, Replay: newMemoryReplayCache(b.N+1, clock)})
	req := testRequest()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := v.Verify(ctx, proofs[i:i+1], req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyES256(b *testing.B) { benchmarkVerify(b, testKeys(b).ec, "ES256") }
func BenchmarkVerifyEdDSA(b *testing.B) { benchmarkVerify(b, testKeys(b).ed, "EdDSA") }
func BenchmarkVerifyPS256(b *testing.B) { benchmarkVerify(b, testKeys(b).rsa, "PS256") }
