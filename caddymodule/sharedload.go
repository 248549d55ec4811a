package caddymodule

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/phantomgate/caddy-phantom-token/cache"
	"github.com/phantomgate/caddy-phantom-token/cache/redisstore"
)

// lockMargin is added to timeout for the fleet lock's lifetime: the lock
// outlives the introspection it guards, and no longer, should its node die.
const lockMargin = time.Second

// loadThrough is the miss path: the shared level first when there is one,
// then the AS, once for the fleet. Redis failing never fails the request:
// every step degrades to introspecting here.
func (h *Handler) loadThrough(ctx context.Context, key cache.Key, token, traceparent string) (entry, time.Duration, error) {
	s := h.shared
	if s == nil || h.maxTTL <= 0 {
		return h.guardedLoad(ctx, token, traceparent)
	}
	plain, res := s.store.Get(ctx, key, token)
	if e, ttl, ok := h.fromShared(plain, res, key); ok {
		return e, ttl, nil
	}
	lock, plain, res, err := s.store.TryLock(ctx, key, token, h.timeout+lockMargin)
	if res == redisstore.Hit {
		if e, ttl, ok := h.fromShared(plain, res, key); ok {
			return e, ttl, nil
		}
	}
	if lock == nil && err == nil && res == redisstore.Miss {
		// Another node is introspecting this token: wait for its answer
		// as long as an introspection of our own could take, then ask
		// the AS ourselves rather than fail.
		wctx, cancel := context.WithTimeout(ctx, h.timeout)
		plain, res := s.store.Wait(wctx, key, token)
		cancel()
		if e, ttl, ok := h.fromShared(plain, res, key); ok {
			return e, ttl, nil
		}
	}
	e, ttl, err := h.guardedLoad(ctx, token, traceparent)
	// Whatever the requests do now, the fleet gets the answer (or the
	// lock back): a request that left must not make other nodes wait.
	wctx := context.WithoutCancel(ctx)
	if err != nil {
		if lock != nil {
			s.store.Unlock(wctx, key, lock)
		}
		return e, ttl, err
	}
	var value []byte
	if ttl > 0 {
		value = encodeEntry(&e, now().Add(ttl))
	}
	_ = s.store.Set(wctx, key, token, value, ttl, lock)
	return e, ttl, nil
}

// fromShared turns what the shared level returned into an entry under this
// handler's policy, with its L1 TTL, when this handler may use it: within
// its own max_ttl or negative_ttl, not purged, and never past the storing
// node's TTL.
func (h *Handler) fromShared(plain []byte, res redisstore.Result, key cache.Key) (entry, time.Duration, bool) {
	if res != redisstore.Hit {
		countShared(res)
		return entry{}, 0, false
	}
	e, until, err := decodeEntry(plain, h.policy)
	if err != nil {
		countShared(redisstore.Rejected)
		return entry{}, 0, false
	}
	t := now()
	if !h.usable(&e, key, t) {
		countShared(redisstore.Miss)
		return entry{}, 0, false
	}
	window := h.maxTTL
	if !e.active {
		window = h.negTTL
	}
	ttl := min(until.Sub(t), time.Duration(e.loadedAt+int64(window)-t.UnixNano()))
	if e.active && e.expiresAt != maxUnixNano.UnixNano() {
		ttl = min(ttl, time.Duration(e.expiresAt-t.UnixNano()))
	}
	if ttl <= 0 {
		countShared(redisstore.Miss)
		return entry{}, 0, false
	}
	countShared(redisstore.Hit)
	return e, ttl, true
}

// sharedResults is caddy_phantom_token_shared_cache_total: reads of the
// shared level by result.
var sharedResults = prometheus.NewCounterVec(prometheus.CounterOpts{
	Namespace: "caddy",
	Subsystem: "phantom_token",
	Name:      "shared_cache_total",
	Help:      "Reads of the shared Redis cache level, by result (hit, miss, error, rejected).",
}, []string{"result"})

// sharedCounters are the counters by result, looked up once.
var sharedCounters = func() (c [redisstore.NumResults]prometheus.Counter) {
	for r := range redisstore.NumResults {
		c[r] = sharedResults.WithLabelValues(r.String())
	}
	return c
}()

func countShared(r redisstore.Result) { sharedCounters[r].Inc() }
