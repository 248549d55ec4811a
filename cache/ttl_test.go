package cache

import (
	"testing"
	"time"
)

func TestTTL(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return now.Add(d) }
	var none time.Time
	const noMaxAge = -1

	tests := []struct {
		name     string
		maxTTL   time.Duration
		maxAge   time.Duration
		expiries []time.Time
		want     time.Duration
	}{
		{"only maxTTL", 5 * time.Minute, noMaxAge, nil, 5 * time.Minute},
		{"maxTTL 0 disables", 0, noMaxAge, []time.Time{at(time.Hour)}, 0},
		{"negative maxTTL disables", -time.Second, 30 * time.Second, nil, 0},
		{"token exp caps", 5 * time.Minute, noMaxAge, []time.Time{at(90 * time.Second)}, 90 * time.Second},
		{"exp beyond maxTTL", 5 * time.Minute, noMaxAge, []time.Time{at(time.Hour)}, 5 * time.Minute},
		{"jwt exp earlier than token exp", 5 * time.Minute, noMaxAge, []time.Time{at(4 * time.Minute), at(2 * time.Minute)}, 2 * time.Minute},
		{"token exp earlier than jwt exp", 5 * time.Minute, noMaxAge, []time.Time{at(time.Minute), at(2 * time.Minute)}, time.Minute},
		{"max-age caps", 5 * time.Minute, 30 * time.Second, []time.Time{at(time.Hour)}, 30 * time.Second},
		{"max-age larger than exp", 5 * time.Minute, 10 * time.Minute, []time.Time{at(3 * time.Minute)}, 3 * time.Minute},
		{"max-age 0 disables", 5 * time.Minute, 0, []time.Time{at(time.Hour)}, 0},
		{"max-age -1 ignored", 5 * time.Minute, -1, []time.Time{at(time.Hour)}, 5 * time.Minute},
		{"exp in the past", 5 * time.Minute, noMaxAge, []time.Time{at(-time.Second)}, 0},
		{"exp exactly now", 5 * time.Minute, noMaxAge, []time.Time{now}, 0},
		{"one expiry past, other future", 5 * time.Minute, noMaxAge, []time.Time{at(time.Hour), at(-time.Minute)}, 0},
		{"zero expiries ignored", 5 * time.Minute, noMaxAge, []time.Time{none, none}, 5 * time.Minute},
		{"zero expiry among real ones", 5 * time.Minute, noMaxAge, []time.Time{none, at(time.Minute), none}, time.Minute},
		{"all four, max-age smallest", 5 * time.Minute, 20 * time.Second, []time.Time{at(time.Minute), at(40 * time.Second)}, 20 * time.Second},
		{"sub-second remainder kept", time.Minute, noMaxAge, []time.Time{at(1500 * time.Millisecond)}, 1500 * time.Millisecond},
		{"far future does not overflow", time.Minute, noMaxAge, []time.Time{time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}, time.Minute},
		{"far past does not overflow", time.Minute, noMaxAge, []time.Time{time.Date(1, 1, 2, 0, 0, 0, 0, time.UTC)}, 0},
		{"negative_ttl as maxTTL for inactive", 10 * time.Second, noMaxAge, nil, 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := TTL(now, tt.maxTTL, tt.maxAge, tt.expiries...); got != tt.want {
				t.Errorf("TTL(maxTTL=%v, maxAge=%v, %v) = %v, want %v", tt.maxTTL, tt.maxAge, tt.expiries, got, tt.want)
			}
		})
	}
}
