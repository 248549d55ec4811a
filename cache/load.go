package cache

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
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

// flight is one load shared by every concurrent caller of a key.
type flight[V any] struct {
	done chan struct{} // closed when val, hit and err are set
	val  V
	hit  bool // the flight found the value already cached
	err  error

	// waiters counts the callers still waiting, under flightsMu; when it
	// drops to zero before done, nobody wants the answer any more and
	// cancel stops the load (and its retries).
	waiters int
	cancel  context.CancelFunc
}

// flights is the single-flight table of a Cache.
type flights[V any] struct {
	mu sync.Mutex
	m  map[Key]*flight[V]
}

// GetOrLoad is [Cache.GetOrLoadIf] accepting every cached value.
func (c *Cache[V]) GetOrLoad(ctx context.Context, key Key, load func(ctx context.Context) (V, time.Duration, error)) (v V, hit bool, err error) {
	return c.GetOrLoadIf(ctx, key, nil, load)
}

// GetOrLoadIf returns the value cached under key (hit=true) when accept
// (nil: always) takes it. Otherwise it runs load exactly once for all
// concurrent callers of that key (single-flight), stores the value for the
// ttl load returns, and returns it (hit=false) to every waiter.
//
// accept lets callers that share a cache but differ in how old an entry
// they take (routes with different revocation windows) refuse an entry
// another caller would still use: their miss loads a fresh value, which
// then replaces the entry.
//
// Nothing is stored when err != nil (authorization-server errors are never
// cached: the next request tries again). When ttl <= 0 the fresh value is
// not stored and the entry it supersedes, if any, is removed: the load's
// answer is newer than it (a token found revoked by a route that caches
// nothing must not stay cached for the others). Storage may also be refused
// by admission (see [Cache.Set]); the value is returned regardless.
//
// load runs on the goroutine of the caller that started the flight, with a
// context derived from context.WithoutCancel(ctx): it keeps that caller's
// values (logger, trace) but not its cancellation, so one client
// disconnecting does not fail the others waiting on the same token. Every
// other waiter returns early with its own ctx.Err() when its ctx is done;
// the starter, whose goroutine runs the load, returns ctx.Err() once the
// load ends. When the last waiter has gone, the load's context is cancelled
// (nobody wants the answer: it must not keep retrying) and the next caller
// starts a new flight. load must bound its own duration (e.g.
// context.WithTimeout) and may still store a value it completed.
//
// hit is also true when the flight found an accepted value already stored
// by a flight that finished just before it started: no load ran for it.
//
// A panic in load is returned to every waiter as a *[PanicError].
func (c *Cache[V]) GetOrLoadIf(ctx context.Context, key Key, accept func(Key, V) bool, load func(ctx context.Context) (V, time.Duration, error)) (v V, hit bool, err error) {
	if v, ok := c.Get(key); ok && (accept == nil || accept(key, v)) {
		return v, true, nil
	}
	if err := ctx.Err(); err != nil {
		// Do not start an AS call for a caller that is already gone.
		var zero V
		return zero, false, err
	}
	f, loadCtx := c.join(ctx, key)
	if loadCtx != nil {
		// This caller started the flight and runs the load itself: a
		// goroutine of its own would start with a small stack and grow
		// it through the HTTP client and the JWT checks on every miss
		// (about a tenth of a miss's CPU). If this caller's ctx ends
		// first it leaves like any waiter, which cancels the load when
		// nobody else waits, but it returns only once the load has.
		stop := context.AfterFunc(ctx, func() { c.leave(key, f) })
		if c.onWait != nil {
			c.onWait()
		}
		c.run(loadCtx, key, f, accept, load)
		if !stop() {
			var zero V
			return zero, false, ctx.Err()
		}
	} else {
		if c.onWait != nil {
			c.onWait()
		}
		select {
		case <-f.done:
		case <-ctx.Done():
			c.leave(key, f)
			var zero V
			return zero, false, ctx.Err()
		}
	}
	if f.err != nil {
		var zero V
		return zero, false, f.err
	}
	if f.hit && accept != nil && !accept(key, f.val) {
		// The flight's starter took a cached value this caller refuses
		// (another route with a longer revocation window). Rare: load
		// for this caller alone rather than queue behind other flights.
		return c.loadAlone(ctx, key, load)
	}
	return f.val, f.hit, nil
}

// join adds the caller to the flight for key. When none runs, it starts
// one and returns the context the caller must run its load with; a caller
// joining a running flight gets a nil context.
func (c *Cache[V]) join(ctx context.Context, key Key) (*flight[V], context.Context) {
	c.flights.mu.Lock()
	defer c.flights.mu.Unlock()
	if f := c.flights.m[key]; f != nil {
		f.waiters++
		return f, nil
	}
	if c.flights.m == nil {
		c.flights.m = make(map[Key]*flight[V])
	}
	loadCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	f := &flight[V]{done: make(chan struct{}), waiters: 1, cancel: cancel}
	c.flights.m[key] = f
	return f, loadCtx
}

// leave removes a waiter that stopped waiting; the last one to leave
// cancels the load and retires the flight so that later callers start
// afresh instead of joining a cancelled load.
func (c *Cache[V]) leave(key Key, f *flight[V]) {
	c.flights.mu.Lock()
	defer c.flights.mu.Unlock()
	f.waiters--
	if f.waiters > 0 {
		return
	}
	if c.flights.m[key] == f {
		delete(c.flights.m, key)
	}
	f.cancel()
}

// run is the body of a flight.
func (c *Cache[V]) run(ctx context.Context, key Key, f *flight[V], accept func(Key, V) bool, load func(context.Context) (V, time.Duration, error)) {
	defer f.cancel()
	// A flight that finished between the caller's Get and join has
	// already stored (Set waits for visibility): do not load twice.
	if v, ok := c.Get(key); ok && (accept == nil || accept(key, v)) {
		f.val, f.hit = v, true
	} else {
		f.val, f.err = c.loadAndStore(ctx, key, load)
	}
	c.flights.mu.Lock()
	if c.flights.m[key] == f {
		delete(c.flights.m, key)
	}
	c.flights.mu.Unlock()
	close(f.done)
}

// loadAlone loads and stores for one caller, outside the flight table.
func (c *Cache[V]) loadAlone(ctx context.Context, key Key, load func(context.Context) (V, time.Duration, error)) (V, bool, error) {
	v, err := c.loadAndStore(ctx, key, load)
	return v, false, err
}

// loadAndStore runs load and stores its value (see GetOrLoadIf for when a
// value is not stored).
func (c *Cache[V]) loadAndStore(ctx context.Context, key Key, load func(context.Context) (V, time.Duration, error)) (V, error) {
	v, ttl, err := safeLoad(ctx, load)
	if err != nil {
		var zero V
		return zero, err
	}
	if ttl <= 0 {
		c.Del(key)
	} else {
		c.Set(key, v, ttl) // refused admission: not stored, still returned
	}
	return v, nil
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
