package cache

import "time"

// TTL computes how long an introspection result may be cached (DESIGN §6):
//
//	min(maxTTL, e − now for each non-zero e in expiries, maxAge if maxAge >= 0)
//
// maxTTL is the operator's revocation window: maxTTL <= 0 disables caching
// and TTL returns 0. expiries are the token's exp, the forwarded JWT's exp,
// …; a zero time.Time means "absent" and is ignored, so callers can pass
// optional claims unconditionally. maxAge is the AS's Cache-Control max-age;
// pass a negative value when the response carried none (max-age=0 is
// meaningful: it means "do not reuse", and yields 0).
//
// Any result <= 0 is returned as 0, meaning "do not cache"; [Cache.Set]
// refuses such TTLs. For negative (inactive) results pass negative_ttl as
// maxTTL.
func TTL(now time.Time, maxTTL, maxAge time.Duration, expiries ...time.Time) time.Duration {
	if maxTTL <= 0 {
		return 0
	}
	ttl := maxTTL
	for _, exp := range expiries {
		if exp.IsZero() {
			continue
		}
		// Sub saturates instead of overflowing, so far-future or
		// far-past expiries are handled.
		if d := exp.Sub(now); d < ttl {
			ttl = d
		}
	}
	if maxAge >= 0 && maxAge < ttl {
		ttl = maxAge
	}
	if ttl <= 0 {
		return 0
	}
	return ttl
}
