package redisstore

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/phantomgate/caddy-phantom-token/cache"
)

// MarkKind says what a purge mark covers.
type MarkKind byte

const (
	// MarkKey covers one cache key: one token under one configuration.
	MarkKey MarkKind = 'k'
	// MarkSubject covers every token of one subject (sub).
	MarkSubject MarkKind = 's'
	// MarkClient covers every token of one client (client_id).
	MarkClient MarkKind = 'c'
	// MarkAll covers every token.
	MarkAll MarkKind = 'a'
)

// A Mark says that entries of its kind and hash whose introspection started
// before At must not be served. Marks carry hashes only: a cache key (for a
// token), or [Store.Hash] of a subject or client id; never a token.
type Mark struct {
	Kind MarkKind
	Hash string // empty for MarkAll
	At   time.Time
}

// member is the mark's sorted-set member and message text without its time.
func (m Mark) member() string { return string(m.Kind) + ":" + m.Hash }

// parseMark reads a member and a time in Unix milliseconds.
func parseMark(member string, ms int64) (Mark, bool) {
	if len(member) < 2 || member[1] != ':' {
		return Mark{}, false
	}
	m := Mark{Kind: MarkKind(member[0]), Hash: member[2:], At: time.UnixMilli(ms)}
	switch m.Kind {
	case MarkKey, MarkSubject, MarkClient:
		return m, m.Hash != ""
	case MarkAll:
		return m, m.Hash == ""
	}
	return Mark{}, false
}

// KeyMark returns the mark for one cache key.
func KeyMark(key cache.Key, at time.Time) Mark {
	return Mark{Kind: MarkKey, Hash: hex.EncodeToString(key[:]), At: at}
}

// Hash returns the fleet's hash of a subject or client id for marks of
// kind: an HMAC under a key derived from the secret, so that Redis and the
// messages between nodes never show a subject or client id, nor a hash
// that a dictionary of them would reverse.
func (s *Store) Hash(kind MarkKind, value string) string {
	m := hmac.New(sha256.New, s.markKey)
	m.Write([]byte{byte(kind)})
	m.Write([]byte(value))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

func (s *Store) marksKey() string     { return s.prefix + "purges" }
func (s *Store) purgeChannel() string { return s.prefix + "purge" }
func (s *Store) readyChannel() string { return s.prefix + "ready" }

// Purge deletes the shared entries of keys, records marks for nodes that
// are away, and sends them to every node now. The error says the fleet was
// not reached.
func (s *Store) Purge(ctx context.Context, keys []cache.Key, marks []Mark) error {
	return s.call(ctx, func(ctx context.Context) error {
		_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range keys {
				p.Del(ctx, s.entryKey(s.name(k)))
			}
			for _, m := range marks {
				p.ZAdd(ctx, s.marksKey(), redis.Z{Score: float64(m.At.UnixMilli()), Member: m.member()})
			}
			p.ZRemRangeByScore(ctx, s.marksKey(), "-inf", "("+strconv.FormatInt(time.Now().Add(-s.retention).UnixMilli(), 10))
			p.PExpire(ctx, s.marksKey(), s.retention)
			for _, m := range marks {
				p.Publish(ctx, s.purgeChannel(), m.member()+" "+strconv.FormatInt(m.At.UnixMilli(), 10))
			}
			return nil
		})
		return err
	})
}

// markSyncInterval is how often the recorded marks are read again: what a
// node missed while its subscription was down reaches it this late.
const markSyncInterval = time.Second

// listen dispatches the fleet's messages and reads the recorded marks
// periodically, until ctx ends.
func (s *Store) listen(ctx context.Context) {
	defer close(s.done)
	ps := s.client.Subscribe(ctx, s.readyChannel(), s.purgeChannel())
	defer ps.Close()
	msgs := ps.Channel(redis.WithChannelHealthCheckInterval(time.Second))
	tick := time.NewTicker(markSyncInterval)
	defer tick.Stop()
	since := time.Now().Add(-s.retention).UnixMilli()
	s.syncMarks(ctx, &since)
	close(s.firstSync)
	for {
		select {
		case <-ctx.Done():
			return
		case msg, ok := <-msgs:
			if !ok {
				return
			}
			s.dispatch(msg)
		case <-tick.C:
			s.syncMarks(ctx, &since)
		}
	}
}

func (s *Store) dispatch(msg *redis.Message) {
	switch msg.Channel {
	case s.readyChannel():
		s.wake(msg.Payload)
	case s.purgeChannel():
		member, at, ok := strings.Cut(msg.Payload, " ")
		ms, err := strconv.ParseInt(at, 10, 64)
		if !ok || err != nil {
			return
		}
		if m, ok := parseMark(member, ms); ok && s.onMarks != nil {
			s.onMarks([]Mark{m})
		}
	}
}

// syncMarks reads the marks recorded since *since (less a margin for
// writers whose clocks lag) and advances it.
func (s *Store) syncMarks(ctx context.Context, since *int64) {
	var got []redis.Z
	err := s.call(ctx, func(ctx context.Context) error {
		var err error
		got, err = s.client.ZRangeByScoreWithScores(ctx, s.marksKey(), &redis.ZRangeBy{
			Min: strconv.FormatInt(*since-markSyncSlack.Milliseconds(), 10), Max: "+inf",
		}).Result()
		return err
	})
	if err != nil {
		return
	}
	marks := make([]Mark, 0, len(got))
	for _, z := range got {
		member, _ := z.Member.(string)
		ms := int64(z.Score)
		if m, ok := parseMark(member, ms); ok {
			marks = append(marks, m)
		}
		*since = max(*since, ms)
	}
	if len(marks) > 0 && s.onMarks != nil {
		s.onMarks(marks)
	}
	s.synced.Store(true) // after the marks are applied
}

// markSyncSlack re-reads marks this much older than the newest seen, so a
// mark recorded by a node whose clock is a little behind is not skipped.
const markSyncSlack = 5 * time.Second
