package caddymodule

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/phantomgate/caddy-phantom-token/cache"
	"github.com/phantomgate/caddy-phantom-token/cache/redisstore"
)

// purgeSkew widens purge marks for entries read from the shared level:
// one whose introspection started, by its writer's clock, up to this long
// after the purge is refused too, so that a node whose clock runs ahead of
// the purging node's never spreads a purged token. Entries this node
// introspected itself are judged by this node's clock: refused when their
// introspection started before the mark reached this node.
const purgeSkew = time.Second

// purgeMark is one mark's times in Unix nanoseconds: at is the purge's
// time plus purgeSkew (for entries from the fleet), seen when this node
// learnt of it (for its own entries).
type purgeMark struct{ at, seen int64 }

// covers reports whether the mark refuses e.
func (m purgeMark) covers(e *entry) bool {
	if e.fromFleet() {
		return e.loadedAt < m.at
	}
	return e.loadedAt < min(m.at, m.seen)
}

// markHash is the hash of a subject or client id in a purge domain.
type markHash [16]byte

// markHashes are an entry's subject and client id as its domain hashes
// them.
type markHashes struct {
	subject, client markHash
	hasSubject      bool
	hasClient       bool
}

// markSet is an immutable snapshot of a domain's purge marks: each value
// is the Unix nanosecond before which (plus purgeSkew) an entry's
// introspection must have started for the mark to refuse it. Hits read it
// through an atomic pointer: no lock, and nil when there are no marks.
type markSet struct {
	all      purgeMark
	keys     map[cache.Key]purgeMark
	subjects map[markHash]purgeMark
	clients  map[markHash]purgeMark
}

// refuses reports whether a mark covers the entry stored under key; d
// hashes the entry's subject and client id the first time it is asked.
func (m *markSet) refuses(d *purgeDomain, e *entry, key cache.Key) bool {
	if m.all.covers(e) {
		return true
	}
	if pm, ok := m.keys[key]; ok && pm.covers(e) {
		return true
	}
	x := e.extras
	if x == nil || len(m.subjects)+len(m.clients) == 0 {
		return false
	}
	h := x.marks.Load()
	if h == nil {
		// Racing callers compute the same hashes: either store is right.
		h = d.hashes(x.subject, x.clientID)
		x.marks.Store(h)
	}
	if pm, ok := m.subjects[h.subject]; ok && h.hasSubject && pm.covers(e) {
		return true
	}
	if pm, ok := m.clients[h.client]; ok && h.hasClient && pm.covers(e) {
		return true
	}
	return false
}

// A purgeDomain is the set of caches one purge reaches with one set of
// marks: the process's caches without Redis (the local domain), or the
// caches of every node sharing one Redis store, whose marks travel through
// it. Subjects and client ids are hashed with the domain's key: a random
// one for the local domain, the fleet's (from its secret) for a store.
type purgeDomain struct {
	store *redisstore.Store // nil: the local domain
	key   []byte            // HMAC key for the local domain

	mu   sync.Mutex // serialises writers of snap
	snap atomic.Pointer[markSet]
	// retention is how long a mark is kept: the longest max_ttl or
	// negative_ttl of the handlers in the domain, past which no entry
	// older than the mark can be served anyway.
	retention atomic.Int64
}

// localDomain is the purge domain of every handler without redis.
var localDomain = newLocalDomain()

func newLocalDomain() *purgeDomain {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return &purgeDomain{key: k}
}

// hash hashes a subject or client id for marks of kind.
func (d *purgeDomain) hash(kind redisstore.MarkKind, value string) markHash {
	var h markHash
	if d.store != nil {
		b, _ := hex.DecodeString(d.store.Hash(kind, value))
		copy(h[:], b)
		return h
	}
	m := hmac.New(sha256.New, d.key)
	m.Write([]byte{byte(kind)})
	m.Write([]byte(value))
	copy(h[:], m.Sum(nil))
	return h
}

// hashes returns the mark hashes of an entry's subject and client id.
func (d *purgeDomain) hashes(subject, clientID string) *markHashes {
	m := new(markHashes)
	if subject != "" {
		m.subject, m.hasSubject = d.hash(redisstore.MarkSubject, subject), true
	}
	if clientID != "" {
		m.client, m.hasClient = d.hash(redisstore.MarkClient, clientID), true
	}
	return m
}

// keep makes the domain keep marks for at least window.
func (d *purgeDomain) keep(window time.Duration) {
	for {
		cur := d.retention.Load()
		if int64(window) <= cur || d.retention.CompareAndSwap(cur, int64(window)) {
			return
		}
	}
}

// add records marks, keeping each one's latest, and drops marks past the
// retention.
func (d *purgeDomain) add(marks ...redisstore.Mark) {
	d.mu.Lock()
	defer d.mu.Unlock()
	old := d.snap.Load()
	next := &markSet{keys: map[cache.Key]purgeMark{}, subjects: map[markHash]purgeMark{}, clients: map[markHash]purgeMark{}}
	seen := time.Now().UnixNano()
	cutoff := seen - d.retention.Load() - int64(purgeSkew)
	stale := func(m purgeMark) bool { return m.at < cutoff }
	if old != nil {
		if !stale(old.all) {
			next.all = old.all
		}
		maps.Copy(next.keys, old.keys)
		maps.Copy(next.subjects, old.subjects)
		maps.Copy(next.clients, old.clients)
		maps.DeleteFunc(next.keys, func(_ cache.Key, m purgeMark) bool { return stale(m) })
		maps.DeleteFunc(next.subjects, func(_ markHash, m purgeMark) bool { return stale(m) })
		maps.DeleteFunc(next.clients, func(_ markHash, m purgeMark) bool { return stale(m) })
	}
	for _, m := range marks {
		pm := purgeMark{at: m.At.Add(purgeSkew).UnixNano(), seen: seen}
		switch m.Kind {
		case redisstore.MarkAll:
			next.all = later(next.all, pm)
		case redisstore.MarkKey:
			var k cache.Key
			if b, err := hex.DecodeString(m.Hash); err == nil && len(b) == len(k) {
				copy(k[:], b)
				next.keys[k] = later(next.keys[k], pm)
			}
		case redisstore.MarkSubject, redisstore.MarkClient:
			var h markHash
			if b, err := hex.DecodeString(m.Hash); err == nil && len(b) == len(h) {
				copy(h[:], b)
				if m.Kind == redisstore.MarkSubject {
					next.subjects[h] = later(next.subjects[h], pm)
				} else {
					next.clients[h] = later(next.clients[h], pm)
				}
			}
		}
	}
	if next.all == (purgeMark{}) && len(next.keys) == 0 && len(next.subjects) == 0 && len(next.clients) == 0 {
		d.snap.Store(nil)
		return
	}
	d.snap.Store(next)
}

// later keeps the later of two marks for one key. A mark heard again (the
// periodic read of the recorded marks repeats recent ones) keeps the time
// this node first learnt of it: its own entries made since then stand.
func later(old, m purgeMark) purgeMark {
	switch {
	case old == (purgeMark{}) || m.at > old.at:
		return m
	}
	return old
}
