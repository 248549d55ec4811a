package caddymodule

import (
	"runtime/debug"
	"testing"
)

// The entries' share of max_size follows the collector's headroom.
func TestLiveBytesForFollowsGOGC(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	for _, tc := range []struct {
		gogc int
		want int64
	}{
		{100, 32 << 20},
		{50, 64 << 20 * 100 / 150},
		{300, 16 << 20},
		{-1, 64 << 20}, // GOGC=off: only a memory limit governs the heap
	} {
		debug.SetGCPercent(tc.gogc)
		if got := liveBytesFor(64 << 20); got != tc.want {
			t.Errorf("GOGC=%d: liveBytesFor(64 MiB) = %d, want %d", tc.gogc, got, tc.want)
		}
	}
}
