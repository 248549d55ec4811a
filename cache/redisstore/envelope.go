package redisstore

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
)

// envelopeVersion is the first byte of every sealed value, so that a
// later format can be told apart (and an older node treats it as a miss).
const envelopeVersion = 1

// entryKeyInfo is the HKDF info string for entry keys: it binds the derived
// key to this use, so the same token and secret never key anything else.
const entryKeyInfo = "phantom_token shared cache entry v1"

// ErrOpen is returned for a value that is not a sealed envelope under this
// token, secret and key: tampered with, truncated, written by a node with
// another secret, or copied from another key. Callers treat it as a miss.
var ErrOpen = errors.New("redisstore: value does not open (wrong secret, token or key, or tampered)")

// envelopeOverhead is what sealing adds to a plaintext: the version byte,
// the GCM nonce and the GCM tag.
const envelopeOverhead = 1 + nonceSize + tagSize

const (
	nonceSize = 12
	tagSize   = 16
)

// An Envelope seals entry values for Redis with AES-256-GCM under a key
// derived (HKDF-SHA256) from the token and the fleet's secret. Reading a
// value needs the token, which Redis never holds (its keys are hashes), so
// a dump of Redis yields no JWT, claim or subject; writing a value that a
// node accepts needs the secret, so access to Redis alone cannot forge an
// entry. The Redis key is the GCM additional data: a value moved to another
// key does not open.
//
// An Envelope is immutable and safe for concurrent use.
type Envelope struct {
	secret []byte
}

// NewEnvelope returns an Envelope for the fleet's shared secret, which must
// not be empty.
func NewEnvelope(secret string) (*Envelope, error) {
	if secret == "" {
		return nil, errors.New("redisstore: empty secret")
	}
	return &Envelope{secret: []byte(secret)}, nil
}

// aead derives the entry key for token and returns its AES-256-GCM.
func (e *Envelope) aead(token string) (cipher.AEAD, error) {
	// The token is the input keying material and the secret the salt:
	// both are needed to derive the key, and neither is ever stored.
	key, err := hkdf.Key(sha256.New, []byte(token), e.secret, entryKeyInfo, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Seal encrypts and authenticates plaintext for token, bound to key (the
// Redis key the value is written under).
func (e *Envelope) Seal(token, key string, plaintext []byte) ([]byte, error) {
	gcm, err := e.aead(token)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+nonceSize, envelopeOverhead+len(plaintext))
	out[0] = envelopeVersion
	if _, err := rand.Read(out[1 : 1+nonceSize]); err != nil {
		return nil, err
	}
	return gcm.Seal(out, out[1:1+nonceSize], plaintext, []byte(key)), nil
}

// Open returns the plaintext of a value Seal made for the same token and
// key under the same secret, or ErrOpen.
func (e *Envelope) Open(token, key string, sealed []byte) ([]byte, error) {
	if len(sealed) < envelopeOverhead || sealed[0] != envelopeVersion {
		return nil, ErrOpen
	}
	gcm, err := e.aead(token)
	if err != nil {
		return nil, err
	}
	plain, err := gcm.Open(nil, sealed[1:1+nonceSize], sealed[1+nonceSize:], []byte(key))
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}
