package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/phantomgate/caddy-phantom-token/asguard"
	"github.com/phantomgate/caddy-phantom-token/introspect"
)

// Defaults and fixed settings of the AS guard (the concurrency limit and
// the circuit breaker, package asguard).
const (
	defaultMaxConcurrentIntrospections = 64
	defaultBreakerFailures             = 5
	defaultBreakerCoolOff              = 5 * time.Second

	// breakerOff in CircuitBreakerConfig.Failures turns the breaker off.
	breakerOff = -1

	// limiterWait bounds how long a miss waits for a free slot when all
	// are busy. It absorbs a burst while the AS answers in milliseconds,
	// and is short enough that a flood is refused long before a client's
	// own patience (or the handler's timeout) runs out.
	limiterWait = 250 * time.Millisecond

	// limiterRetryAfter is the Retry-After of a miss the limiter refused:
	// slots free up as fast as the AS answers, so the next second is as
	// good a time as any.
	limiterRetryAfter = time.Second
)

// limiterQueue is how many misses may wait for a slot: a quarter of the
// slots, at least one. More would only hold more requests for the whole
// limiterWait behind an AS that is not keeping up.
func limiterQueue(slots int) int { return max(1, slots/4) }

// guards holds the AS guards by cache identity and guard settings, so
// that every handler talking to the same AS with the same identity shares
// one limit and one breaker, and a reload that keeps them keeps an open
// breaker open rather than sending a fresh flood to a failing AS.
var guards = caddy.NewUsagePool()

// asGuard is what guards holds: the limiter and, unless it is off, the
// breaker of one identity.
type asGuard struct {
	limiter *asguard.Limiter
	breaker *asguard.Breaker // nil when the breaker is off
}

// Destruct implements caddy.Destructor: the breaker leaves the state
// metric with its last user.
func (g *asGuard) Destruct() error {
	breakerStates.remove(g.breaker)
	return nil
}

// guardSettings returns the effective limit and breaker settings;
// failures is breakerOff when the breaker is off.
func (h *Handler) guardSettings() (slots, failures int, coolOff time.Duration) {
	slots, failures, coolOff = defaultMaxConcurrentIntrospections, defaultBreakerFailures, defaultBreakerCoolOff
	if h.MaxConcurrentIntrospections != 0 {
		slots = h.MaxConcurrentIntrospections
	}
	if c := h.CircuitBreaker; c != nil {
		if c.Failures != 0 {
			failures = c.Failures
		}
		if c.CoolOff != 0 {
			coolOff = time.Duration(c.CoolOff)
		}
	}
	return slots, failures, coolOff
}

// validateGuard checks the guard settings; each error names the field.
func (h *Handler) validateGuard() error {
	if h.MaxConcurrentIntrospections < 0 {
		return fmt.Errorf("max_concurrent_introspections: must be positive, got %d", h.MaxConcurrentIntrospections)
	}
	c := h.CircuitBreaker
	if c == nil {
		return nil
	}
	if c.Failures < breakerOff {
		return fmt.Errorf("circuit_breaker.failures: must be positive, or -1 to turn the breaker off, got %d", c.Failures)
	}
	if c.CoolOff < 0 {
		return fmt.Errorf("circuit_breaker.cool_off: must be positive")
	}
	if c.Failures == breakerOff && c.CoolOff != 0 {
		return fmt.Errorf("circuit_breaker.cool_off: has no effect with failures -1 (breaker off)")
	}
	return nil
}

// provisionGuard takes this handler's share of the guard of its identity.
func (h *Handler) provisionGuard(identity string) error {
	slots, failures, coolOff := h.guardSettings()
	key := identity + "\x00" + strconv.Itoa(slots) + "\x00" + strconv.Itoa(failures) + "\x00" + coolOff.String()
	val, _, err := guards.LoadOrNew(key, func() (caddy.Destructor, error) {
		g := &asGuard{limiter: asguard.NewLimiter(slots, limiterQueue(slots), limiterWait)}
		if failures != breakerOff {
			b, err := asguard.NewBreaker(asguard.BreakerConfig{
				Failures: failures,
				CoolOff:  coolOff,
				Now:      func() time.Time { return now() },
			})
			if err != nil {
				return nil, err
			}
			g.breaker = b
			breakerStates.add(b)
		}
		return g, nil
	})
	if err != nil {
		return fmt.Errorf("circuit_breaker: %v", err)
	}
	h.guardKey, h.guard = key, val.(*asGuard)
	return nil
}

// releaseGuard gives back this handler's share of its guard, if it took
// one. h.guard stays set: requests of the old config may still be in
// flight during a reload, and read it.
func (h *Handler) releaseGuard() error {
	if h.guardKey == "" {
		return nil
	}
	_, err := guards.Delete(h.guardKey)
	h.guardKey = ""
	return err
}

// guardedLoad is load behind the breaker and the concurrency limit. It
// runs once per token flight, on a miss only: a cache hit never gets
// here, so no hit waits for, locks or counts anything of the guard.
//
// The breaker is asked first: while it is open, a miss is refused before
// it takes (or waits for) a slot. A refusal never calls the AS and is
// returned as an unavailable *introspect.Error with a Retry-After, which
// loadFailed answers with 503.
//
// timeout bounds the whole miss from here: the wait for a slot,
// introspection, the JWKS it may need and a token exchange, which would
// otherwise each get a timeout of their own.
func (h *Handler) guardedLoad(ctx context.Context, token, traceparent string) (entry, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	g := h.guard
	if g == nil {
		return h.load(ctx, token, traceparent)
	}
	var ticket asguard.Ticket
	if g.breaker != nil {
		t, err := g.breaker.Allow()
		if err != nil {
			var oe *asguard.OpenError
			errors.As(err, &oe)
			return entry{}, 0, &introspect.Error{Kind: introspect.KindUnavailable, RetryAfter: oe.RetryAfter, Err: err}
		}
		ticket = t
	}
	if err := g.limiter.Acquire(ctx); err != nil {
		if g.breaker != nil {
			g.breaker.Record(ticket, asguard.Ignore) // a probe that never ran proves nothing
		}
		if errors.Is(err, asguard.ErrOverloaded) {
			err = &introspect.Error{Kind: introspect.KindUnavailable, RetryAfter: limiterRetryAfter, Err: err}
		}
		return entry{}, 0, err
	}
	defer g.limiter.Release()
	if g.breaker == nil {
		return h.load(ctx, token, traceparent)
	}
	outcome := asguard.Ignore // if load panics: that says nothing about the AS
	defer func() { g.breaker.Record(ticket, outcome) }()
	e, ttl, err := h.load(ctx, token, traceparent)
	outcome = breakerOutcome(ctx, err)
	return e, ttl, err
}

// breakerOutcome decides what a load tells the breaker about the AS. Only
// the AS being unavailable (no connection, a time-out, a 503) or failing
// (any 5xx) is a failure. Any other answer, an inactive token or a reply
// the gateway cannot use included, shows the AS is up. A load whose
// callers all left and cancelled it says nothing either way.
func breakerOutcome(ctx context.Context, err error) asguard.Outcome {
	if err == nil {
		return asguard.Success
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return asguard.Ignore
	}
	var ie *introspect.Error
	if !errors.As(err, &ie) {
		return asguard.Ignore // not about the AS (a gateway-side error)
	}
	if ie.Kind == introspect.KindUnavailable || ie.Status >= 500 {
		return asguard.Failure
	}
	return asguard.Success
}

// failureResult is the requests metric's result for a failed load: the
// guard's refusals are told apart from the AS's own failures.
func failureResult(err error) requestResult {
	var oe *asguard.OpenError
	switch {
	case errors.Is(err, asguard.ErrOverloaded):
		return resultOverloaded
	case errors.As(err, &oe):
		return resultCircuitOpen
	}
	return resultASError
}
