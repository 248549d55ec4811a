package cache

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"
)

// PanicError is returned by [Cache.GetOrLoad] to every waiter when load
// panicked. The load runs on its own goroutine, where a panic could not be
// recovered by any request's handler and would crash the whole gateway; it
// is turned into an error instead (and, like every load error, not cached).
type PanicError struct {
	Value any    // the value passed to panic
	Stack []byte // the stack of the panicking load
}

// Error reports the panic value; the stack is kept out of the message so
// that logging the error stays one line.
func (e *PanicError) Error() string {
	return fmt.Sprintf("cache: load panicked: %v", e.Value)
}

// flightResult is what one single-flight load hands to all of its waiters.
type flightResult[V any] struct {
	val V
	hit bool // the flight found the value already cached
}

// GetOrLoad returns the value cached under key (hit=true). On a miss it runs
// load exactly once for all concurrent callers of that key (single-flight),
// stores the value for the ttl load returns, and returns it (hit=false) to
// every waiter.
//
// Nothing is stored when err != nil (authorization-server errors are never
// cached: the next request tries again) or ttl <= 0. Storage may also be
// refused by admission (see [Cache.Set]); the value is returned regardless.
//
// load runs on its own goroutine with context.WithoutCancel(ctx) of the
// caller that started it: it keeps that caller's values (logger, trace) but
// not its cancellation, so one client disconnecting does not fail the others
// waiting on the same token. load must therefore bound its own duration
// (e.g. context.WithTimeout): until it returns, every caller of this key
// joins it. Each waiter still returns early with its own ctx.Err() when its
// ctx is done; the load then carries on and stores its result for the next
// request.
//
// hit is also true when the flight found the value already stored by a
// flight that finished just before it started: no load ran for it.
//
// A panic in load is returned to every waiter as a *[PanicError].
func (c *Cache[V]) GetOrLoad(ctx context.Context, key Key, load func(ctx context.Context) (V, time.Duration, error)) (v V, hit bool, err error) {
	if v, ok := c.Get(key); ok {
		return v, true, nil
	}
	if err := ctx.Err(); err != nil {
		// Do not start an AS call for a caller that is already gone.
		var zero V
		return zero, false, err
	}
	loadCtx := context.WithoutCancel(ctx)
	ch := c.flights.DoChan(string(key[:]), func() (any, error) {
		// A flight that finished between our Get and DoChan has already
		// stored (Set waits for visibility): do not load twice.
		if v, ok := c.Get(key); ok {
			return flightResult[V]{val: v, hit: true}, nil
		}
		v, ttl, err := safeLoad(loadCtx, load)
		if err != nil {
			return nil, err
		}
		c.Set(key, v, ttl) // ttl <= 0 or refused admission: not stored, still returned
		return flightResult[V]{val: v}, nil
	})
	if c.onWait != nil {
		c.onWait()
	}
	select {
	case r := <-ch:
		if r.Err != nil {
			var zero V
			return zero, false, r.Err
		}
		res := r.Val.(flightResult[V])
		return res.val, res.hit, nil
	case <-ctx.Done():
		var zero V
		return zero, false, ctx.Err()
	}
}

// safeLoad calls load, converting a panic into a *PanicError (see there).
func safeLoad[V any](ctx context.Context, load func(context.Context) (V, time.Duration, error)) (v V, ttl time.Duration, err error) {
	defer func() {
		if r := recover(); r != nil {
			var zero V
			v, ttl, err = zero, 0, &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return load(ctx)
}
