package caddymodule

import (
	"sync/atomic"
	"testing"
	"time"
)

// UseTestClock makes the handlers' clock (cache, authorization, circuit
// breaker) run ahead of the real one by what the returned function adds,
// so end-to-end tests can step through a cool-off without sleeping. Call
// it before starting Caddy: the clock is swapped once, while no handler
// runs, and restored after the test's later cleanups (Caddy's stop) ran.
func UseTestClock(t testing.TB) (advance func(time.Duration)) {
	var offset atomic.Int64
	old := now
	now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	t.Cleanup(func() { now = old })
	return func(d time.Duration) { offset.Add(int64(d)) }
}
