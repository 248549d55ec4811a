package cache

import (
	"encoding/binary"
	"errors"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/dgraph-io/ristretto/v2"
)

// EntryOverhead is the fixed number of bytes charged for every entry on top
// of [Config.Cost] and the inline size of V (unsafe.Sizeof of the value type,
// which the cache adds itself).
//
// It approximates what one resident entry costs the process beyond the
// value's own bytes: the item's key check and expiry, ristretto's map slot
// (and the empty share of its map), and the policy's key→cost entry.
// Measured on amd64 (see TestEntryOverheadIsRealistic: about 170 bytes) and
// rounded up, so that MaxBytes is a bound on memory actually held and not
// just on payload.
const EntryOverhead = 256

// Ristretto sizing. NumCounters (TinyLFU frequency counters) should be about
// ten times the number of entries expected when full; we estimate that from
// MaxBytes and a typical entry size (a JWT of ~1 KiB plus claims would be
// larger, an inactive result much smaller), then clamp: a floor so tiny
// caches still admit sensibly, a ceiling so a huge MaxBytes does not make the
// sketch itself (~3 bytes per counter, outside MaxBytes) excessive.
const (
	typicalEntryBytes = 512
	minCounters       = 1 << 10
	maxCounters       = 1 << 24
	bufferItems       = 64
)

// Config configures a [Cache].
type Config[V any] struct {
	// MaxBytes bounds the sum, over resident entries, of
	// Cost(v) + unsafe.Sizeof(v) + EntryOverhead. Required, > 0.
	MaxBytes int64

	// Cost reports the bytes v references beyond its inline size: string
	// and slice contents, pointed-to structs. Nil means 0 (only the inline
	// size and EntryOverhead are charged); negative results count as 0.
	// It is called once per Set, never on Get.
	Cost func(V) int64

	// Now is the clock for expiry decisions. Nil means time.Now. Tests
	// inject a fake clock here so that they never sleep for a TTL.
	Now func() time.Time

	// SweepInterval is how often expired entries are removed to free
	// their memory (Get never returns them, swept or not). Zero means
	// DefaultSweepInterval; negative disables sweeping (tests).
	SweepInterval time.Duration
}

// DefaultSweepInterval is the default [Config.SweepInterval]. A sweep reads
// every entry once (about a millisecond per 10,000 entries), so once a
// minute costs next to nothing and frees expired entries' memory well
// within the usual token lifetimes.
const DefaultSweepInterval = time.Minute

// Cache is a byte-bounded cache of values of type V with absolute expiries
// and single-flight loading. It is safe for concurrent use. Create one with
// [New] and release it with [Cache.Close].
//
// Values are returned as stored (no copy): when V is or contains a pointer,
// callers must treat what they get as read-only, since every hit and every
// single-flight waiter shares it.
type Cache[V any] struct {
	now      func() time.Time
	cost     func(V) int64
	overhead int64
	maxBytes int64

	// guard keeps Close away from every use of rc; closed is written
	// under all its stripes and read under one.
	guard  closeGuard
	closed bool
	rc     *ristretto.Cache[uint64, item[V]]

	flights flights[V]

	// entries and bytes count what Set handed to ristretto minus what
	// ristretto reported leaving (OnExit: evicted, rejected, replaced,
	// deleted, expired). Ristretto exposes neither without enabling its
	// (costly) metrics.
	entries atomic.Int64
	bytes   atomic.Int64

	// stopSweep ends the sweeper goroutine; swept is closed when it has.
	stopSweep chan struct{}
	swept     chan struct{}

	// onSweepListed, when non-nil, is called by sweep between listing the
	// expired entries and deleting them. Tests use it to replace an entry
	// in that window; it is never set in production.
	onSweepListed func()

	// onWait, when non-nil, is called by GetOrLoad right before a caller
	// starts waiting for a load. Tests use it as a barrier; it is never set
	// in production.
	onWait func()
}

// item is what ristretto stores, by value, in its map: a hit then reads
// one map slot and nothing else of the cache's. Go keeps map values of up
// to 128 bytes inside the map's slots (larger ones behind a pointer: one
// more CPU cache miss per hit when there are many entries); ristretto's
// slot adds 40 bytes to the item, so items whose V is at most
// [InlineValueBytes] stay inline.
//
// The item does not repeat the whole key: ristretto's key is its first 8
// bytes (hash64) and the item keeps the next 8 (check), so Get matches 128
// bits of it. A false hit would need two tokens whose SHA-256 keys share
// 128 bits.
type item[V any] struct {
	hash  uint64 // key bytes 0..8, ristretto's key: what the sweeper deletes
	check uint64 // key bytes 8..16
	exp   int64  // absolute expiry, Unix nanoseconds by Cache.now; dead from exp on. 0: no item
	val   V
}

// InlineValueBytes is the largest unsafe.Sizeof of V for which the cache's
// items stay inside ristretto's map slots (see item). Larger values work,
// at the cost of one more pointer to follow on every hit.
const InlineValueBytes = 64

// New returns a Cache configured by cfg.
func New[V any](cfg Config[V]) (*Cache[V], error) {
	if cfg.MaxBytes <= 0 {
		return nil, errors.New("cache: MaxBytes must be > 0")
	}
	c := &Cache[V]{
		now:      cfg.Now,
		cost:     cfg.Cost,
		overhead: EntryOverhead + int64(unsafe.Sizeof(*new(V))),
		maxBytes: cfg.MaxBytes,
	}
	if c.now == nil {
		c.now = time.Now
	}
	counters := min(max(cfg.MaxBytes/typicalEntryBytes*10, minCounters), maxCounters)
	rc, err := ristretto.NewCache(&ristretto.Config[uint64, item[V]]{
		NumCounters: counters,
		MaxCost:     cfg.MaxBytes,
		BufferItems: bufferItems,
		// Costs are in our bytes (Cost + overhead); ristretto must not
		// add its own guess on top.
		IgnoreInternalCost: true,
		// The key already is a uniform SHA-256; its first 8 bytes are a
		// perfect hash and need no rehashing. Passing uint64 keys (not
		// string(key[:])) keeps Get free of allocations. No conflict
		// hash: item.check is compared instead.
		KeyToHash: func(h uint64) (uint64, uint64) { return h, 0 },
		// Called exactly once for every value leaving the store (also
		// after OnReject/OnEvict), with the zero item for deletions of
		// absent keys. The cost is recomputed rather than stored: it is
		// a pure function of the value, and storing it would push the
		// item out of the map slot.
		OnExit: func(it item[V]) {
			if it.exp != 0 {
				c.entries.Add(-1)
				c.bytes.Add(-c.costOf(it.val))
			}
		},
	})
	if err != nil {
		return nil, err
	}
	c.rc = rc
	interval := cfg.SweepInterval
	if interval == 0 {
		interval = DefaultSweepInterval
	}
	c.stopSweep, c.swept = make(chan struct{}), make(chan struct{})
	if interval > 0 {
		go c.sweepEvery(interval)
	} else {
		close(c.swept)
	}
	return c, nil
}

// hash64 is ristretto's key for k, and check64 what the item keeps to
// compare the next 64 bits.
func hash64(k Key) uint64  { return binary.LittleEndian.Uint64(k[:8]) }
func check64(k Key) uint64 { return binary.LittleEndian.Uint64(k[8:16]) }

// costOf is what an entry holding v is charged against MaxBytes.
func (c *Cache[V]) costOf(v V) int64 {
	cost := c.overhead
	if c.cost != nil {
		if n := c.cost(v); n > 0 {
			cost += n
		}
	}
	return cost
}

// Get returns the value stored under key, if any. It never returns an entry
// whose expiry has been reached by the cache's clock, whether or not the
// sweeper has removed it yet. A hit does not allocate.
func (c *Cache[V]) Get(key Key) (V, bool) {
	return c.GetAt(key, c.now())
}

// GetAt is Get with the current time supplied by the caller, who must
// read it from the same clock as the cache's. A handler that needs the
// time anyway (to check a token's exp on every request) saves a second
// clock read per lookup, which costs ~50 ns on virtual machines.
func (c *Cache[V]) GetAt(key Key, now time.Time) (V, bool) {
	m := c.guard.rlock()
	if c.closed {
		m.RUnlock()
		var zero V
		return zero, false
	}
	it, ok := c.rc.Get(hash64(key))
	m.RUnlock()
	if !ok || it.check != check64(key) || now.UnixNano() >= it.exp {
		var zero V
		return zero, false
	}
	return it.val, true
}

// Set stores v under key until now+ttl and reports whether it was stored.
//
// It returns false, storing nothing, when ttl <= 0 (DESIGN §6: not cached),
// when the entry alone exceeds MaxBytes, when ristretto's TinyLFU admission
// rejects it because the cache is full of entries used more often (an
// intended property: a flood of one-shot tokens cannot flush hot entries),
// or after Close. A false return is not an error: the caller still has the
// value and simply loads it again next time.
//
// After Set returns true, a Get for key from any goroutine sees v (until it
// expires, is deleted, or is evicted to make room for later entries): Set
// waits for ristretto's asynchronous admission, so the very next request
// does not miss again. That wait costs a channel round trip, on the miss
// path only.
//
// An existing entry under key is replaced. The old one is removed first so
// the new one goes through admission and eviction: ristretto's in-place
// update adjusts the cost without evicting and could overshoot MaxBytes.
func (c *Cache[V]) Set(key Key, v V, ttl time.Duration) bool {
	if ttl <= 0 {
		return false
	}
	cost := c.costOf(v)
	if cost > c.maxBytes {
		return false
	}
	it := item[V]{hash: hash64(key), check: check64(key), exp: c.now().Add(ttl).UnixNano(), val: v}
	k := it.hash

	defer c.guard.rlock().RUnlock()
	if c.closed {
		return false
	}
	c.rc.Del(k)
	// Count before handing over: ristretto may reject (and call OnExit)
	// on its own goroutine before Set even returns.
	c.entries.Add(1)
	c.bytes.Add(cost)
	// No ristretto TTL: its Get would then read the clock on every hit
	// (~100 ns on virtual machines), and expiry is it.exp's job anyway.
	// The sweeper frees expired entries' memory.
	if !c.rc.Set(k, it, cost) {
		// Dropped before reaching ristretto's store (full set buffer):
		// no OnExit will come for it.
		c.entries.Add(-1)
		c.bytes.Add(-cost)
		return false
	}
	c.rc.Wait()
	// Admission has run. GetTTL looks without counting as an access (Get
	// would feed the frequency sketch); a concurrent Set of the same key
	// also counts as stored, which is what the caller wants to know.
	_, stored := c.rc.GetTTL(k)
	return stored
}

// Del removes the entry stored under key, if any. The removal is visible to
// Get immediately.
func (c *Cache[V]) Del(key Key) {
	defer c.guard.rlock().RUnlock()
	if c.closed {
		return
	}
	// Del may hit another key sharing the 64-bit hash; that only costs
	// that key a reload.
	c.rc.Del(hash64(key))
}

// Len returns the approximate number of resident entries, for tests and
// metrics. Entries that have expired but not yet been reclaimed are counted.
func (c *Cache[V]) Len() int {
	defer c.guard.rlock().RUnlock()
	if c.closed {
		return 0
	}
	return int(max(c.entries.Load(), 0))
}

// Bytes returns the approximate sum of the costs charged for resident
// entries (Cost + inline size + EntryOverhead). It stays <= MaxBytes except
// for a moment while a concurrent Set awaits admission. For metrics and
// tests.
func (c *Cache[V]) Bytes() int64 {
	defer c.guard.rlock().RUnlock()
	if c.closed {
		return 0
	}
	return max(c.bytes.Load(), 0)
}

// sweepEvery runs sweep at each interval until Close.
func (c *Cache[V]) sweepEvery(interval time.Duration) {
	defer close(c.swept)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-c.stopSweep:
			return
		case <-t.C:
			c.sweep()
		}
	}
}

// sweepBatch bounds how many deletions one hold of the read lock covers,
// so that a Close waiting for the write lock (and the requests queued
// behind it) is not held up by a large sweep.
const sweepBatch = 256

// sweep deletes the entries expired by now and returns how many. It looks
// at each candidate again just before deleting it, so that an entry
// replaced by a fresh one for the same token in between is spared (what
// remains of that race costs one reload, never a stale answer).
func (c *Cache[V]) sweep() int {
	now := c.now().UnixNano()
	var dead []uint64
	m := c.guard.rlock()
	if !c.closed {
		c.rc.IterValues(func(it item[V]) bool {
			if now >= it.exp {
				dead = append(dead, it.hash)
			}
			return false
		})
	}
	m.RUnlock()
	if c.onSweepListed != nil {
		c.onSweepListed()
	}

	n := 0
	for len(dead) > 0 {
		batch := dead[:min(sweepBatch, len(dead))]
		dead = dead[len(batch):]
		m := c.guard.rlock()
		if c.closed {
			m.RUnlock()
			break
		}
		for _, h := range batch {
			if it, ok := c.rc.Get(h); ok && now >= it.exp {
				c.rc.Del(h)
				n++
			}
		}
		m.RUnlock()
	}
	return n
}

// Close releases the cache's goroutines and entries. It is idempotent and
// safe to call concurrently with any other method; afterwards Get misses,
// Set returns false, and GetOrLoad still loads (without storing).
func (c *Cache[V]) Close() {
	c.guard.lockAll()
	defer c.guard.unlockAll()
	if c.closed {
		return
	}
	c.closed = true
	c.rc.Close()
	close(c.stopSweep)
}
