package main

import (
	"testing"
	"time"
)

// TestHistogramQuantile checks that quantiles come back within the
// histogram's stated precision of 1/512.
func TestHistogramQuantile(t *testing.T) {
	var h histogram
	// 1 µs, 2 µs, …, 10,000 µs: the p50 is 5,000 µs, the p99 9,900 µs.
	for i := 1; i <= 10_000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 5000 * time.Microsecond}, {0.99, 9900 * time.Microsecond}, {0, time.Microsecond}, {1, 10 * time.Millisecond}} {
		got := h.quantile(c.q)
		if diff := got - c.want; diff < -c.want/512 || diff > c.want/512 {
			t.Errorf("quantile(%v) = %v, want %v ± 0.2 %%", c.q, got, c.want)
		}
	}
}
