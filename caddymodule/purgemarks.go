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

// purgeSkew widens every purge mark: an entry whose introspection started
// up to this long after the purge is refused too, so that a node whose
// clock runs behind the purging node's never keeps a purged token. The
// cost is at most this long of re-introspection for the purged tokens.
const purgeSkew = time.Second

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
	all      int64
	keys     map[cache.Key]int64
	subjects map[markHash]int64
	clients  map[markHash]int64
}

// refuses reports whether a mark covers the entry stored under key; d
// hashes the entry's subject and client id the first time it is asked.
func (m *markSet) refuses(d *purgeDomain, e *entry, key cache.Key) bool {
	if e.loadedAt < m.all {
		return true
	}
	if at, ok := m.keys[key]; ok && e.loadedAt < at {
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
	if at, ok := m.subjects[h.subject]; ok && h.hasSubject && e.loadedAt < at {
		return true
	}
	if at, ok := m.clients[h.client]; ok && h.hasClient && e.loadedAt < at {
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

// refuses reports whether a purge mark covers the entry under key. It is
// on the hit path: one atomic load when nothing was ever purged.
func (d *purgeDomain) refuses(e *entry, key cache.Key) bool {
	m := d.snap.Load()
	return m != nil && m.refuses(d, e, key)
}

// add records marks, keeping each kind's latest time, and drops marks past
// the retention.
func (d *purgeDomain) add(marks ...redisstore.Mark) {
	d.mu.Lock()
	defer d.mu.Unlock()
	old := d.snap.Load()
	next := &markSet{keys: map[cache.Key]int64{}, subjects: map[markHash]int64{}, clients: map[markHash]int64{}}
	t := time.Now()
	cutoff := t.Add(-time.Duration(d.retention.Load()) - purgeSkew).UnixNano()
	if old != nil {
		next.all = old.all
		maps.Copy(next.keys, old.keys)
		maps.Copy(next.subjects, old.subjects)
		maps.Copy(next.clients, old.clients)
		maps.DeleteFunc(next.keys, func(_ cache.Key, at int64) bool { return at < cutoff })
		maps.DeleteFunc(next.subjects, func(_ markHash, at int64) bool { return at < cutoff })
		maps.DeleteFunc(next.clients, func(_ markHash, at int64) bool { return at < cutoff })
	}
	for _, m := range marks {
		at := m.At.Add(purgeSkew).UnixNano()
		switch m.Kind {
		case redisstore.MarkAll:
			next.all = max(next.all, at)
		case redisstore.MarkKey:
			var k cache.Key
			if b, err := hex.DecodeString(m.Hash); err == nil && len(b) == len(k) {
				copy(k[:], b)
				next.keys[k] = max(next.keys[k], at)
			}
		case redisstore.MarkSubject, redisstore.MarkClient:
			var h markHash
			if b, err := hex.DecodeString(m.Hash); err == nil && len(b) == len(h) {
				copy(h[:], b)
				if m.Kind == redisstore.MarkSubject {
					next.subjects[h] = max(next.subjects[h], at)
				} else {
					next.clients[h] = max(next.clients[h], at)
				}
			}
		}
	}
	if next.all < cutoff {
		next.all = 0
	}
	if next.all == 0 && len(next.keys) == 0 && len(next.subjects) == 0 && len(next.clients) == 0 {
		d.snap.Store(nil)
		return
	}
	d.snap.Store(next)
}
