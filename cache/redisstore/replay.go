package redisstore

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// FirstSeen records id for ttl and reports whether this is its first use
// in the fleet: SET NX PX, so of any number of nodes that see the same id
// at once, exactly one gets true. It is the shared replay check of DPoP
// proofs (their jti, RFC 9449 §11.1). The id is stored only as an HMAC
// under the store's secret, like cache keys, so Redis never holds it.
//
// An error (Redis down, the breaker open) means the answer is unknown: the
// caller must fail closed, since accepting would let a replay through.
func (s *Store) FirstSeen(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, errors.New("redis: replay record needs a positive ttl")
	}
	m := hmac.New(sha256.New, s.nameKey)
	m.Write([]byte("replay\x00"))
	m.Write([]byte(id))
	key := s.prefix + "r:" + hex.EncodeToString(m.Sum(nil))
	var first bool
	err := s.call(ctx, func(ctx context.Context) error {
		ok, err := s.client.SetNX(ctx, key, "1", ttl).Result()
		first = ok
		return err
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, err
	}
	return first, nil
}
