// Package cache is the gateway's token cache: a generic, byte-bounded,
// TTL-aware cache of introspection results with per-key single-flight loading.
//
// It implements the cache rules of DESIGN §6:
//
//   - entries are keyed by a SHA-256 over the configuration identity and the
//     token ([Keyer]), never by the raw token, so a heap dump or a shared tier
//     never holds a usable credential;
//   - every entry carries an absolute expiry taken from the injected clock and
//     [Cache.Get] refuses it once that instant is reached, so an entry is never
//     served past the token's exp (the TTL is computed by [TTL]);
//   - the total size is bounded in bytes ([Config.MaxBytes]), charged as
//     [Config.Cost] plus a fixed per-entry overhead;
//   - concurrent misses for one key cause exactly one load ([Cache.GetOrLoad]),
//     and load errors are never cached.
//
// Storage and eviction are delegated to ristretto (TinyLFU admission, sampled
// LFU eviction), which keeps each entry by value inside its map slot. Expiry
// is decided here, with the injected clock; a sweeper goroutine frees
// expired entries' memory ([Config.SweepInterval]).
//
// This package must not import Caddy: it is shared by the Caddy glue and by
// tests and tools that run without Caddy.
package cache
