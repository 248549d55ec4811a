package caddymodule

import (
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"time"

	"github.com/phantomgate/caddy-phantom-token/introspect"
)

// The shared cache stores entries in this binary form (inside the
// encrypted envelope): a version byte, flags, four Unix-nanosecond times,
// then length-prefixed strings. Each node rebuilds an entry under its own
// policy from it.
//
// Version 2 added the binding (cnf.jkt, cnf.x5t#S256, token_type DPoP).
// Other versions are refused, not read: a version-1 entry cannot say
// whether its token was bound, and reading it as unbound would let a node
// accept a sender-constrained token as a bearer token.
const entryCodecVersion = 2

const (
	flagActive = 1 << iota
	flagHasAudience
	flagDPoPType
)

// activeFixedStrings is how many strings an active entry has before its
// extra audience values: scope, aud, JWT, sub, client_id, jkt, x5t#S256.
const activeFixedStrings = 7

var errEntryCodec = errors.New("shared cache: malformed entry")

// encodeEntry serializes e; until is when the storing node's TTL for it
// ends, which no reader may exceed.
func encodeEntry(e *entry, until time.Time) []byte {
	var strs []string
	if e.active {
		x := e.extras
		strs = append(strs, e.scope(), e.audience(), strings.TrimPrefix(e.header(), "Bearer "), x.subject, x.clientID, x.jkt, x.x5t)
		strs = append(strs, x.moreAudience...)
	}
	n := 2 + 4*8 + binary.MaxVarintLen64
	for _, s := range strs {
		n += binary.MaxVarintLen64 + len(s)
	}
	b := make([]byte, 0, n)
	var flags byte
	if e.active {
		flags |= flagActive
	}
	if e.hasAudience {
		flags |= flagHasAudience
	}
	if e.extras != nil && e.extras.dpopType {
		flags |= flagDPoPType
	}
	b = append(b, entryCodecVersion, flags)
	for _, t := range []int64{e.loadedAt, e.expiresAt, e.notBefore, until.UnixNano()} {
		b = binary.BigEndian.AppendUint64(b, uint64(t))
	}
	b = binary.AppendUvarint(b, uint64(len(strs)))
	for _, s := range strs {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// decodeEntry rebuilds an entry under p, marked as from the fleet, and
// returns with it when the storing node's TTL ends.
func decodeEntry(b []byte, p *policy) (entry, time.Time, error) {
	if len(b) < 2+4*8 || b[0] != entryCodecVersion {
		return entry{}, time.Time{}, errEntryCodec
	}
	flags := b[1]
	var t [4]int64
	for i := range t {
		t[i] = int64(binary.BigEndian.Uint64(b[2+8*i:]))
	}
	rest := b[2+4*8:]
	count, n := binary.Uvarint(rest)
	if n <= 0 || count > uint64(len(rest)) {
		return entry{}, time.Time{}, errEntryCodec
	}
	rest = rest[n:]
	strs := make([]string, 0, count)
	for range count {
		l, n := binary.Uvarint(rest)
		if n <= 0 || l > uint64(len(rest)-n) {
			return entry{}, time.Time{}, errEntryCodec
		}
		strs = append(strs, string(rest[n:n+int(l)]))
		rest = rest[n+int(l):]
	}
	if len(rest) != 0 {
		return entry{}, time.Time{}, errEntryCodec
	}
	loadedAt, until := time.Unix(0, t[0]), time.Unix(0, t[3])
	if flags&flagActive == 0 {
		if count != 0 {
			return entry{}, time.Time{}, errEntryCodec
		}
		e := newEntry(&introspect.Result{}, p, loadedAt)
		e.marks |= markFromFleet
		return e, until, nil
	}
	if count < activeFixedStrings || (flags&flagHasAudience == 0 && count != activeFixedStrings) {
		return entry{}, time.Time{}, errEntryCodec
	}
	r := &introspect.Result{
		Active:    true,
		Scope:     strs[0],
		JWT:       strs[2],
		Subject:   strs[3],
		ClientID:  strs[4],
		JKT:       strs[5],
		X5TS256:   strs[6],
		ExpiresAt: timeOrZero(t[1], math.MaxInt64),
		NotBefore: timeOrZero(t[2], math.MinInt64),
	}
	if flags&flagDPoPType != 0 {
		r.TokenType = "DPoP"
	}
	if flags&flagHasAudience != 0 {
		r.Audience = append([]string{strs[1]}, strs[activeFixedStrings:]...)
	}
	e := newEntry(r, p, loadedAt)
	e.marks |= markFromFleet
	return e, until, nil
}

// timeOrZero undoes unixNano: the sentinel for an absent claim becomes the
// zero time.
func timeOrZero(ns, absent int64) time.Time {
	if ns == absent {
		return time.Time{}
	}
	return time.Unix(0, ns)
}
