package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/phantomgate/caddy-phantom-token/cache"
)

// Lock is this node's claim to introspect one token for the whole fleet.
type Lock struct {
	value string // random: only its taker releases it
}

// unlockScript deletes the lock only if it is still this node's: a lock
// that expired and was taken by another node stays taken.
var unlockScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// pollInterval is how often a waiting node looks for the entry when no
// message came: the fallback when pub/sub is slow or was disconnected.
const pollInterval = 25 * time.Millisecond

// TryLock claims the right to introspect the token behind key for the
// fleet, for at most hold (the introspection's own bound). In the same
// round trip it reads the entry: when a node stored it just before the
// lock was free again, that entry is returned (res Hit) and the lock given
// back. It returns no lock when another node holds it (err nil: wait for
// it with Wait), or when Redis failed (err set): then the caller
// introspects on its own.
func (s *Store) TryLock(ctx context.Context, key cache.Key, token string, hold time.Duration) (*Lock, []byte, Result, error) {
	if !s.ready(ctx) {
		return nil, nil, Error, errNotSynced
	}
	name := s.name(key)
	var b [16]byte
	_, _ = rand.Read(b[:])
	l := &Lock{value: hex.EncodeToString(b[:])}
	var setnx *redis.BoolCmd
	var get *redis.StringCmd
	err := s.call(ctx, func(ctx context.Context) error {
		_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			setnx = p.SetNX(ctx, s.lockKey(name), l.value, hold)
			get = p.Get(ctx, s.entryKey(name))
			return nil
		})
		return err
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, Error, err
	}
	sealed, gerr := get.Bytes()
	if gerr == nil {
		if setnx.Val() {
			s.Unlock(ctx, key, l)
		}
		plain, err := s.envelope.Open(token, s.entryKey(name), sealed)
		if err != nil {
			return nil, nil, Rejected, nil
		}
		return nil, plain, Hit, nil
	}
	if !setnx.Val() {
		return nil, nil, Miss, nil
	}
	return l, nil, Miss, nil
}

// Unlock releases a lock whose introspection stored nothing (it failed),
// so that waiting nodes stop waiting and introspect on their own.
func (s *Store) Unlock(ctx context.Context, key cache.Key, l *Lock) {
	name := s.name(key)
	_ = s.call(ctx, func(ctx context.Context) error {
		_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			unlockScript.Eval(ctx, p, []string{s.lockKey(name)}, l.value)
			p.Publish(ctx, s.readyChannel(), name)
			return nil
		})
		return err
	})
}

// Wait waits, until ctx ends, for the node holding key's lock to store the
// entry, and returns it opened with token. It returns Miss as soon as the
// lock is gone without an entry (that node failed or gave up), or when ctx
// ends: the caller then introspects on its own rather than fail.
func (s *Store) Wait(ctx context.Context, key cache.Key, token string) ([]byte, Result) {
	name := s.name(key)
	ready := s.addWaiter(name)
	defer s.removeWaiter(name, ready)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		plain, res, locked := s.getOrLocked(ctx, name, token)
		if callerDone(ctx) {
			return nil, Miss
		}
		if res != Miss || !locked {
			return plain, res
		}
		select {
		case <-ready:
		case <-tick.C:
		case <-ctx.Done():
			return nil, Miss
		}
	}
}

// getOrLocked reads the entry and, in the same round trip, whether its
// lock is still held.
func (s *Store) getOrLocked(ctx context.Context, name, token string) ([]byte, Result, bool) {
	if !s.ready(ctx) {
		return nil, Error, false
	}
	var get *redis.StringCmd
	var exists *redis.IntCmd
	err := s.call(ctx, func(ctx context.Context) error {
		_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			get = p.Get(ctx, s.entryKey(name))
			exists = p.Exists(ctx, s.lockKey(name))
			return nil
		})
		return err
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, Error, false
	}
	sealed, err := get.Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, Miss, exists.Val() > 0
	}
	if err != nil {
		return nil, Error, false
	}
	plain, err := s.envelope.Open(token, s.entryKey(name), sealed)
	if err != nil {
		return nil, Rejected, false
	}
	return plain, Hit, false
}

// addWaiter registers a channel that the listener signals when a node
// announces that key name is ready.
func (s *Store) addWaiter(name string) chan struct{} {
	ch := make(chan struct{}, 1)
	s.waitersMu.Lock()
	s.waiters[name] = append(s.waiters[name], ch)
	s.waitersMu.Unlock()
	return ch
}

func (s *Store) removeWaiter(name string, ch chan struct{}) {
	s.waitersMu.Lock()
	defer s.waitersMu.Unlock()
	list := s.waiters[name]
	for i, c := range list {
		if c == ch {
			list[i] = list[len(list)-1]
			list = list[:len(list)-1]
			break
		}
	}
	if len(list) == 0 {
		delete(s.waiters, name)
	} else {
		s.waiters[name] = list
	}
}

// wake signals every goroutine waiting for key name.
func (s *Store) wake(name string) {
	s.waitersMu.Lock()
	defer s.waitersMu.Unlock()
	for _, ch := range s.waiters[name] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
