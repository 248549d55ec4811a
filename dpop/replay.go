package dpop

import (
	"container/heap"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sync"
	"time"
)

// ReplayCache remembers the jti values of accepted proofs for as long as
// those proofs could be accepted (RFC 9449 §11.1).
//
// Seen atomically records key until the instant until and reports whether
// key was already recorded and has not expired yet. It must be atomic: two
// requests carrying the same proof at once must not both see false. A
// fleet shares one cache (Redis "SET key 1 NX PXAT until" is exactly
// Seen), else a proof replayed at another node is accepted there.
//
// An error makes [Verifier.Verify] fail closed with invalid_dpop_proof,
// reason "replay check unavailable": a proof that cannot be checked for
// replay is not accepted.
type ReplayCache interface {
	Seen(ctx context.Context, key string, until time.Time) (bool, error)
}

// replayKey is the ReplayCache key of a proof: a hash over the key
// thumbprint and the jti. RFC 9449 §11.1 only requires a jti to be unique
// per key, so including the key means that one client cannot make another
// client's proofs fail by sending its jti values first; hashing bounds the
// length whatever the jti, and keeps it out of a shared store.
func replayKey(thumbprint, jti string) string {
	h := sha256.New()
	h.Write([]byte(thumbprint))
	h.Write([]byte{0})
	h.Write([]byte(jti))
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0]))
}

// defaultReplayEntries is NewMemoryReplayCache's bound when given none:
// at the default window of 65 s, it holds the proofs of about 1,500
// requests a second, in about 20 MB.
const defaultReplayEntries = 100_000

// errReplayCacheFull is the memory cache's error when every entry is live.
var errReplayCacheFull = errors.New("dpop: replay cache is full")

// NewMemoryReplayCache returns a ReplayCache for one process, holding at
// most max entries (100,000 when max <= 0). Expired entries are dropped
// first, in order of expiry.
//
// When all max entries are live, Seen returns an error (so the proof is
// refused) rather than forgetting a live entry: evicting one would let the
// proof it records be replayed, and a flood of proofs signed with a key
// the attacker made up would do exactly that. A full cache refuses every
// new proof until entries expire (at most MaxAge + Leeway), so size it
// above the peak number of proofs per window; the refusals are visible as
// "replay check unavailable" errors.
//
// In a fleet, each node's memory cache sees only its own requests: share a
// cache instead (see [ReplayCache]).
func NewMemoryReplayCache(max int) ReplayCache {
	return newMemoryReplayCache(max, time.Now)
}

func newMemoryReplayCache(max int, now func() time.Time) *memoryReplayCache {
	if max <= 0 {
		max = defaultReplayEntries
	}
	return &memoryReplayCache{max: max, now: now, until: make(map[string]int64)}
}

// memoryReplayCache is a map of live keys with a min-heap of their expiry,
// so that expired entries are dropped in O(log n) each as time passes
// rather than by scanning the map when it fills up.
type memoryReplayCache struct {
	max int
	now func() time.Time

	mu     sync.Mutex
	until  map[string]int64 // key → expiry, Unix nanoseconds
	expiry expiryHeap       // the same entries, soonest expiry first
}

// Seen implements ReplayCache.
func (c *memoryReplayCache) Seen(_ context.Context, key string, until time.Time) (bool, error) {
	now := c.now().UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.expiry) > 0 && c.expiry[0].until <= now {
		e := heap.Pop(&c.expiry).(expiryEntry)
		delete(c.until, e.key)
	}
	// Every remaining entry is live: expired ones were just dropped.
	if _, ok := c.until[key]; ok {
		return true, nil
	}
	if len(c.until) >= c.max {
		return false, errReplayCacheFull
	}
	u := until.UnixNano()
	c.until[key] = u
	heap.Push(&c.expiry, expiryEntry{until: u, key: key})
	return false, nil
}

// expiryEntry is one cache entry in the expiry heap.
type expiryEntry struct {
	until int64
	key   string
}

// expiryHeap is a container/heap of entries, soonest expiry first.
type expiryHeap []expiryEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].until < h[j].until }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiryEntry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = expiryEntry{} // let the key be collected
	*h = old[:len(old)-1]
	return e
}
