package dpop

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// DefaultNonceLifetime is how long a nonce is accepted when
// [NewNonceSource] is given no lifetime. RFC 9449 §8 leaves it to the
// server; five minutes lets a client reuse a nonce across many requests
// (one extra round trip per five minutes) while a proof made with a stolen
// or pre-computed nonce is soon useless.
const DefaultNonceLifetime = 5 * time.Minute

// minNonceKeyLen is the shortest nonce key [New] accepts: the output size
// of HMAC-SHA256, below which the key, not the MAC, is the weak point.
const minNonceKeyLen = 32

// nonceLabel separates the nonce MACs from anything else the same key
// might ever authenticate.
const nonceLabel = "dpop-nonce-v1\x00"

// nonceLen is the length of a nonce: base64url of an 8-byte timestamp and
// a 32-byte HMAC-SHA256 (54 characters).
var nonceLen = b64.EncodedLen(8 + sha256.Size)

// NonceSource issues and checks the server nonces of RFC 9449 §8 without
// state. A nonce is base64url(t || HMAC-SHA256(key, label || t)), t being
// the issue time in Unix seconds (8 bytes, big-endian), and is accepted
// for its lifetime after t. Any node that has the key can check it, so the
// nodes of a fleet sharing a key accept each other's nonces and a client
// need not stick to one node. A nonce is not single-use: replays are
// caught by the jti check; the nonce bounds how far ahead a proof can be
// made.
//
// A NonceSource is safe for concurrent use. Give it to [Config].Nonces;
// [New] refuses a key shorter than 32 bytes.
type NonceSource struct {
	key      []byte
	lifetime time.Duration
	now      func() time.Time // time.Now; tests replace it
}

// NewNonceSource returns a NonceSource with the given HMAC key (at least
// 32 random bytes, shared by every node of a fleet; [New] checks it) and
// lifetime (DefaultNonceLifetime when zero or negative). The key is
// copied.
func NewNonceSource(key []byte, lifetime time.Duration) *NonceSource {
	if lifetime <= 0 {
		lifetime = DefaultNonceLifetime
	}
	return &NonceSource{key: append([]byte(nil), key...), lifetime: lifetime, now: time.Now}
}

// Nonce returns a fresh nonce for the DPoP-Nonce response header. It is
// the same for every call within one second.
func (n *NonceSource) Nonce() string {
	var buf [8 + sha256.Size]byte
	binary.BigEndian.PutUint64(buf[:8], uint64(n.now().Unix()))
	n.sum(buf[8:8], buf[:8])
	return b64.EncodeToString(buf[:])
}

// valid reports whether nonce was issued by a source with this key no more
// than the lifetime before now. A nonce up to skew in the future is
// accepted too: another node's clock may run ahead of ours.
func (n *NonceSource) valid(nonce string, now time.Time, skew time.Duration) bool {
	if len(nonce) != nonceLen || !isBase64URL(nonce) {
		return false
	}
	var buf [8 + sha256.Size]byte
	if m, err := b64.Decode(buf[:], []byte(nonce)); err != nil || m != len(buf) {
		return false
	}
	var mac [sha256.Size]byte
	if !hmac.Equal(n.sum(mac[:0], buf[:8]), buf[8:]) {
		return false
	}
	issued := int64(binary.BigEndian.Uint64(buf[:8]))
	// Compare in seconds: the nonce carries no more, and an int64 from
	// the client must not overflow a time.Duration.
	age := now.Unix() - issued
	return age <= int64(n.lifetime/time.Second) && -age <= int64(skew/time.Second)
}

// sum appends HMAC-SHA256(key, label || t) to dst.
func (n *NonceSource) sum(dst, t []byte) []byte {
	h := hmac.New(sha256.New, n.key)
	h.Write([]byte(nonceLabel))
	h.Write(t)
	return h.Sum(dst)
}
