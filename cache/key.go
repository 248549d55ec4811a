package cache

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"unsafe"
)

// Key identifies a cached introspection result. It is a SHA-256 over the
// configuration identity and the token, never the raw token, so the cache
// (and anything that inspects it: heap dumps, metrics, a shared tier) never
// holds a usable credential. Derive Keys with a [Keyer].
type Key [32]byte

// Fingerprint returns a short hex prefix of the key, suitable for logs
// (DESIGN §7): it identifies an entry without revealing the token.
func (k Key) Fingerprint() string {
	return hex.EncodeToString(k[:8])
}

// Keyer derives Keys for one configuration identity (introspection endpoint,
// client, resource, …). Two gateway configurations that could reach different
// decisions about the same token must use different identities, so that one
// never serves the other's cached result.
//
// A Keyer is a small immutable value, safe for concurrent use. Its zero value
// is equivalent to NewKeyer("").
type Keyer struct {
	identity string
}

// NewKeyer returns a Keyer for the given configuration identity.
func NewKeyer(identity string) Keyer {
	return Keyer{identity: identity}
}

// Key returns sha256(uint64be(len(identity)) || identity || token).
//
// The length prefix makes the encoding injective: identity "ab" with token
// "c" and identity "a" with token "bc" hash different byte strings. Key does
// not allocate: the digest stays on the stack and the strings are hashed in
// place (without a []byte copy), which matters because it runs on every
// request, hits included.
func (k Keyer) Key(token string) Key {
	var lenPrefix [8]byte
	binary.BigEndian.PutUint64(lenPrefix[:], uint64(len(k.identity)))

	h := sha256.New()
	h.Write(lenPrefix[:])
	h.Write(stringBytes(k.identity))
	h.Write(stringBytes(token))

	var out Key
	h.Sum(out[:0])
	return out
}

// stringBytes views s as a byte slice without copying. The hash only reads
// its input, so the immutability of s is preserved.
func stringBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
