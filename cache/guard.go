package cache

import (
	"math/rand/v2"
	"sync"
	"unsafe"
)

// guardStripes is the number of read locks of a closeGuard: enough that
// readers of different tokens rarely share one, at 64 bytes each.
const guardStripes = 64

// closeGuard keeps ristretto from being closed under a user. Ristretto is
// not safe to use concurrently with or after its Close (a Set or Get racing
// Close can send on a closed channel and panic), and Caddy may close a
// cache while a straggling request of an old config still uses it.
//
// A single RWMutex would do, but every RLock writes its reader count: on a
// hit path that otherwise only reads, cores serving different tokens would
// fight over that one cache line (measured: a third of the CPU of parallel
// hits on two cores). So the guard is striped: a user read-locks one stripe,
// chosen at random (per-thread generator, no shared state), and Close
// write-locks them all. Holding any one stripe therefore excludes Close,
// and two cores rarely touch the same stripe, even for the same token.
type closeGuard struct {
	stripes [guardStripes]struct {
		sync.RWMutex
		_ [64 - unsafe.Sizeof(sync.RWMutex{})%64]byte // one cache line each
	}
}

// rlock read-locks a stripe and returns it for RUnlock.
func (g *closeGuard) rlock() *sync.RWMutex {
	m := &g.stripes[rand.Uint64()%guardStripes].RWMutex
	m.RLock()
	return m
}

// lockAll write-locks every stripe, waiting out every user.
func (g *closeGuard) lockAll() {
	for i := range g.stripes {
		g.stripes[i].Lock()
	}
}

func (g *closeGuard) unlockAll() {
	for i := range g.stripes {
		g.stripes[i].Unlock()
	}
}
