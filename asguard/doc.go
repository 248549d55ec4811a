// Package asguard keeps a slow, failing or flooded authorization server
// (AS) from taking the gateway down with it. It has two parts, both used
// only on the cache-miss path (a cache hit never reaches them):
//
//   - [Limiter] bounds how many AS calls run at once. Per-token
//     single-flight merges concurrent misses for one token, but a flood of
//     distinct made-up tokens is one AS call each; the limiter admits a
//     fixed number, lets a few more wait briefly, and refuses the rest at
//     once so they can be answered 503 without touching the AS.
//   - [Breaker] is a circuit breaker: after a run of consecutive AS
//     failures it refuses calls for a cool-off, then lets exactly one probe
//     through; the probe's outcome closes or reopens it. While it is open
//     an outage costs the gateway nothing per request, and the AS is not
//     hammered while it tries to recover.
//
// Both report refusals with an error that carries a Retry-After hint.
//
// This package knows nothing of Caddy, of the introspection client or of
// the cache: the caller decides what counts as an AS failure and passes a
// clock in, so tests never sleep.
package asguard
