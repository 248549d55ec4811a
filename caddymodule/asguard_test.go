package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/phantomgate/caddy-phantom-token/asguard"
	"github.com/phantomgate/caddy-phantom-token/introspect"
)

func TestUnmarshalCaddyfileASGuard(t *testing.T) {
	for _, tc := range []struct {
		name, input string
		wantN       int
		want        *CircuitBreakerConfig
	}{
		{"both", `phantom_token {
			max_concurrent_introspections 16
			circuit_breaker {
				failures 3
				cool_off 10s
			}
		}`, 16, &CircuitBreakerConfig{Failures: 3, CoolOff: caddy.Duration(10 * time.Second)}},
		{"breaker off", "phantom_token {\ncircuit_breaker off\n}", 0, &CircuitBreakerConfig{Failures: -1}},
		{"empty breaker block keeps the defaults", "phantom_token {\ncircuit_breaker {\n}\n}", 0, &CircuitBreakerConfig{}},
		{"neither", "phantom_token {\n}", 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h Handler
			if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input)); err != nil {
				t.Fatal(err)
			}
			if h.MaxConcurrentIntrospections != tc.wantN {
				t.Errorf("max_concurrent_introspections = %d, want %d", h.MaxConcurrentIntrospections, tc.wantN)
			}
			if (h.CircuitBreaker == nil) != (tc.want == nil) || (tc.want != nil && *h.CircuitBreaker != *tc.want) {
				t.Errorf("circuit_breaker = %+v, want %+v", h.CircuitBreaker, tc.want)
			}
		})
	}
}

func TestUnmarshalCaddyfileASGuardErrors(t *testing.T) {
	for _, tc := range []struct {
		name, input, wantErr string
	}{
		{"limit missing", "phantom_token {\nmax_concurrent_introspections\n}", "max_concurrent_introspections: expected one argument"},
		{"limit zero", "phantom_token {\nmax_concurrent_introspections 0\n}", "max_concurrent_introspections: expected a positive whole number, got '0'"},
		{"limit negative", "phantom_token {\nmax_concurrent_introspections -4\n}", "max_concurrent_introspections: expected a positive whole number"},
		{"limit not a number", "phantom_token {\nmax_concurrent_introspections many\n}", "max_concurrent_introspections: expected a positive whole number, got 'many'"},
		{"limit twice", "phantom_token {\nmax_concurrent_introspections 8\nmax_concurrent_introspections 9\n}", "duplicate subdirective 'max_concurrent_introspections'"},
		{"breaker twice", "phantom_token {\ncircuit_breaker off\ncircuit_breaker {\n}\n}", "duplicate subdirective 'circuit_breaker'"},
		{"breaker on", "phantom_token {\ncircuit_breaker on\n}", "circuit_breaker: expected 'off' or a block, got 'on'"},
		{"breaker off twice", "phantom_token {\ncircuit_breaker off off\n}", "circuit_breaker: expected 'off' or a block"},
		{"breaker off with a block", "phantom_token {\ncircuit_breaker off {\nfailures 3\n}\n}", "circuit_breaker: 'off' takes no block"},
		{"failures zero", "phantom_token {\ncircuit_breaker {\nfailures 0\n}\n}", "failures: expected a positive whole number, got '0'"},
		{"failures negative", "phantom_token {\ncircuit_breaker {\nfailures -1\n}\n}", "failures: expected a positive whole number"},
		{"cool_off zero", "phantom_token {\ncircuit_breaker {\ncool_off 0\n}\n}", "cool_off: expected a positive duration"},
		{"cool_off bad", "phantom_token {\ncircuit_breaker {\ncool_off later\n}\n}", "cool_off: expected a positive duration"},
		{"unknown breaker subdirective", "phantom_token {\ncircuit_breaker {\nthreshold 3\n}\n}", "circuit_breaker: unknown subdirective 'threshold'"},
		{"duplicate breaker subdirective", "phantom_token {\ncircuit_breaker {\nfailures 3\nfailures 4\n}\n}", "circuit_breaker: duplicate subdirective 'failures'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestProvisionASGuardErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mutate  func(h *Handler)
		wantErr string
	}{
		{"negative limit", func(h *Handler) { h.MaxConcurrentIntrospections = -1 }, "max_concurrent_introspections: must be positive"},
		{"failures below -1", func(h *Handler) { h.CircuitBreaker = &CircuitBreakerConfig{Failures: -2} }, "circuit_breaker.failures: must be positive, or -1 to turn the breaker off"},
		{"negative cool_off", func(h *Handler) {
			h.CircuitBreaker = &CircuitBreakerConfig{CoolOff: caddy.Duration(-time.Second)}
		}, "circuit_breaker.cool_off: must be positive"},
		{"cool_off with the breaker off", func(h *Handler) {
			h.CircuitBreaker = &CircuitBreakerConfig{Failures: -1, CoolOff: caddy.Duration(time.Second)}
		}, "circuit_breaker.cool_off: has no effect with failures -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := validHandler()
			tc.mutate(h)
			err := provision(t, h)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

// breakerCount is how many live breakers are in state s.
func breakerCount(t *testing.T, s asguard.State) int {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(breakerStates)
	families, err := reg.Gather()
	if err != nil || len(families) != 1 {
		t.Fatalf("scrape: %d families, %v", len(families), err)
	}
	for _, m := range families[0].GetMetric() {
		if m.GetLabel()[0].GetValue() == s.String() {
			return int(m.GetGauge().GetValue())
		}
	}
	t.Fatalf("no series for state %s", s)
	return 0
}

// Handlers with the same identity and guard settings share one guard; the
// guard leaves the pool (and its breaker the metric) with its last user.
func TestASGuardSharedByIdentity(t *testing.T) {
	before := breakerCount(t, asguard.Closed)
	a, b := validHandler(), validHandler()
	if err := provision(t, a); err != nil {
		t.Fatal(err)
	}
	if err := provision(t, b); err != nil {
		t.Fatal(err)
	}
	if a.guard == nil || a.guard != b.guard {
		t.Fatalf("same identity, same settings: guards %p and %p, want one shared", a.guard, b.guard)
	}
	if a.guard.breaker == nil {
		t.Fatal("the breaker is on by default")
	}
	if n := breakerCount(t, asguard.Closed); n != before+1 {
		t.Errorf("closed breakers = %d, want %d", n, before+1)
	}

	c := validHandler()
	c.MaxConcurrentIntrospections = 8
	if err := provision(t, c); err != nil {
		t.Fatal(err)
	}
	if c.guard == a.guard {
		t.Error("other settings must get their own guard")
	}
	off := validHandler()
	off.CircuitBreaker = &CircuitBreakerConfig{Failures: -1}
	if err := provision(t, off); err != nil {
		t.Fatal(err)
	}
	if off.guard.breaker != nil {
		t.Error("failures -1: want no breaker")
	}

	for _, h := range []*Handler{a, b, c, off} {
		if err := h.Cleanup(); err != nil {
			t.Fatal(err)
		}
		if err := h.Cleanup(); err != nil { // a second Cleanup is harmless
			t.Fatal(err)
		}
	}
	if n := breakerCount(t, asguard.Closed); n != before {
		t.Errorf("closed breakers after cleanup = %d, want %d", n, before)
	}
}

// A handler that failed before taking its guard cleans up without error.
func TestASGuardHalfProvisioned(t *testing.T) {
	h := validHandler()
	h.MaxConcurrentIntrospections = -1
	if err := provision(t, h); err == nil {
		t.Fatal("want a provisioning error")
	}
	if err := h.Cleanup(); err != nil || h.guard != nil {
		t.Fatalf("Cleanup = %v, guard %p", err, h.guard)
	}
}

func TestBreakerOutcome(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Unix(1, 0))
	defer cancel2()
	live := context.Background()
	unavailable := &introspect.Error{Kind: introspect.KindUnavailable}
	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		want asguard.Outcome
	}{
		{"answered", live, nil, asguard.Success},
		{"unreachable or timed out", live, unavailable, asguard.Failure},
		{"503", live, &introspect.Error{Kind: introspect.KindUnavailable, Status: 503}, asguard.Failure},
		{"500", live, &introspect.Error{Kind: introspect.KindBadResponse, Status: 500}, asguard.Failure},
		{"wrapped 502", live, fmt.Errorf("exchange: %w", &introspect.Error{Kind: introspect.KindBadResponse, Status: 502}), asguard.Failure},
		{"401 to the gateway's credentials", live, &introspect.Error{Kind: introspect.KindBadResponse, Status: 401}, asguard.Success},
		{"malformed 200", live, &introspect.Error{Kind: introspect.KindBadResponse, Status: 200}, asguard.Success},
		{"exchange refused the token", live, &introspect.Error{Kind: introspect.KindRejected, Status: 400}, asguard.Success},
		{"callers left", cancelled, unavailable, asguard.Ignore},
		{"callers left, answer arrived", cancelled, nil, asguard.Success},
		{"load deadline passed", expired, unavailable, asguard.Failure},
		{"not about the AS", live, errors.New("gateway bug"), asguard.Ignore},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := breakerOutcome(tc.ctx, tc.err); got != tc.want {
				t.Errorf("breakerOutcome = %v, want %v", got, tc.want)
			}
		})
	}
}

// A refused miss never reaches load, and is an unavailable error with a
// Retry-After that the request metric tells apart from AS errors.
func TestGuardedLoadRefusals(t *testing.T) {
	h := validHandler()
	h.MaxConcurrentIntrospections = 1
	h.CircuitBreaker = &CircuitBreakerConfig{Failures: 1, CoolOff: caddy.Duration(3 * time.Second)}
	if err := provision(t, h); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	check := func(err error, wantRetry time.Duration, wantResult requestResult) {
		t.Helper()
		var ie *introspect.Error
		if !errors.As(err, &ie) || ie.Kind != introspect.KindUnavailable || ie.RetryAfter != wantRetry {
			t.Fatalf("error = %#v, want unavailable with RetryAfter %v", err, wantRetry)
		}
		if r := failureResult(err); r != wantResult {
			t.Errorf("result = %s, want %s", resultLabels[r], resultLabels[wantResult])
		}
	}

	// All slots busy (the queue's wait runs out): refused, no load.
	if err := h.guard.limiter.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	_, _, err := h.guardedLoad(ctx, "tok", "")
	check(err, time.Second, resultOverloaded)
	h.guard.limiter.Release()

	// One failure opens the breaker (failures 1); then refused, no load.
	tk, err := h.guard.breaker.Allow()
	if err != nil {
		t.Fatal(err)
	}
	h.guard.breaker.Record(tk, asguard.Failure)
	_, _, err = h.guardedLoad(ctx, "tok", "")
	check(err, 3*time.Second, resultCircuitOpen)
	if n := h.guard.limiter.InUse(); n != 0 {
		t.Errorf("a refused miss holds %d slots", n)
	}
	if r := failureResult(&introspect.Error{Kind: introspect.KindUnavailable}); r != resultASError {
		t.Errorf("an AS failure counts as %s, want as_error", resultLabels[r])
	}
}
