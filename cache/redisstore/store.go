package redisstore

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/phantomgate/caddy-phantom-token/asguard"
	"github.com/phantomgate/caddy-phantom-token/cache"
)

// DefaultKeyPrefix starts every Redis key and channel the store uses unless
// Config.KeyPrefix says otherwise.
const DefaultKeyPrefix = "phantom_token:"

// DefaultTimeout bounds each Redis operation unless Config.Timeout says
// otherwise: a shared cache slower than this is no faster than the AS.
const DefaultTimeout = 50 * time.Millisecond

// Config configures a [Store].
type Config struct {
	// Addresses are host:port pairs: one is a standalone server, several
	// are the seed nodes of a Redis Cluster.
	Addresses []string
	// Username and Password authenticate to Redis (ACL or requirepass).
	Username, Password string
	// DB selects the database of a standalone server.
	DB int
	// TLS, when set, is used for every connection to Redis.
	TLS *tls.Config
	// Secret is shared by every node of the fleet: it keys the entries'
	// encryption and the names of keys and purge marks. Required.
	Secret string
	// KeyPrefix starts every key and channel name. Default DefaultKeyPrefix.
	KeyPrefix string
	// Timeout bounds each Redis operation. Default DefaultTimeout.
	Timeout time.Duration
	// MarkRetention is how long purge marks are kept in Redis for nodes
	// that were away when a purge happened: at least the longest time an
	// entry may be served. Default 24h.
	MarkRetention time.Duration
	// OnHealth is called once per change between reachable and
	// unreachable, with the error that made Redis unreachable. Optional.
	OnHealth func(reachable bool, err error)
	// OnMarks is called with the purge marks of the fleet the store learns
	// of: one from each pub/sub message, and all those a periodic read of
	// the recorded marks found, in one call (at start, every mark kept).
	// A mark may come more than once. Optional.
	OnMarks func([]Mark)
}

// Result is the outcome of reading an entry, also the label of the shared
// cache metric.
type Result uint8

const (
	// Hit is a value that opened.
	Hit Result = iota
	// Miss is no value (or none that the waiting ended with).
	Miss
	// Error is Redis unreachable, slow or failing, or the breaker open.
	Error
	// Rejected is a value that did not open: tampered with, truncated,
	// or written by a node with another secret.
	Rejected
	// NumResults is the number of results, for tables indexed by Result.
	NumResults
)

// String returns the result's metric label.
func (r Result) String() string {
	switch r {
	case Hit:
		return "hit"
	case Miss:
		return "miss"
	case Error:
		return "error"
	case Rejected:
		return "rejected"
	}
	return fmt.Sprintf("result(%d)", uint8(r))
}

// Store is the shared second cache level in Redis. Every method is bounded
// by Config.Timeout and degrades to a miss or a no-op when Redis fails: the
// caller carries on with its own cache and the AS. A circuit breaker stops
// calling Redis for a few seconds after consecutive failures, so a dead
// Redis adds no latency.
//
// A Store is safe for concurrent use.
type Store struct {
	client   redis.UniversalClient
	envelope *Envelope
	prefix   string
	timeout  time.Duration
	// nameKey keys the HMAC that names entry and lock keys, markKey the one
	// that hashes subjects and client ids in purge marks.
	nameKey, markKey []byte
	breaker          *asguard.Breaker
	reachable        atomic.Bool
	// synced is whether the recorded purge marks were read since Redis
	// last failed: until then a purge may have been missed, so entries
	// are not read (firstSync is closed after the first attempt).
	synced    atomic.Bool
	firstSync chan struct{}
	onHealth  func(bool, error)
	onMarks   func([]Mark)
	retention time.Duration

	waitersMu sync.Mutex
	waiters   map[string][]chan struct{} // entry key name → goroutines waiting for it

	stop context.CancelFunc
	done chan struct{}
}

// Breaker settings: a few failures in a row open it; it probes again
// after a few seconds.
const (
	breakerFailures = 3
	breakerCoolOff  = 3 * time.Second
)

// New connects to Redis (lazily: an unreachable Redis is not an error
// here, the store starts as reachable and finds out on first use) and
// starts listening for the fleet's purges and entries.
func New(cfg Config) (*Store, error) {
	if len(cfg.Addresses) == 0 {
		return nil, errors.New("address: at least one host:port is required")
	}
	env, err := NewEnvelope(cfg.Secret)
	if err != nil {
		return nil, errors.New("secret: required (shared by every gateway node)")
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = DefaultKeyPrefix
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MarkRetention <= 0 {
		cfg.MarkRetention = 24 * time.Hour
	}
	if len(cfg.Addresses) > 1 && cfg.DB != 0 {
		return nil, errors.New("db: a Redis Cluster has only database 0")
	}
	quietOnce.Do(func() { redis.SetLogger(quietLogger{}) })
	breaker, err := asguard.NewBreaker(asguard.BreakerConfig{Failures: breakerFailures, CoolOff: breakerCoolOff})
	if err != nil {
		return nil, err
	}
	s := &Store{
		client: redis.NewUniversalClient(&redis.UniversalOptions{
			Addrs:    cfg.Addresses,
			Username: cfg.Username,
			Password: cfg.Password,
			DB:       cfg.DB,
			// One address is a standalone server even if it is a
			// cluster node: the operator said which it is.
			IsClusterMode:         len(cfg.Addresses) > 1,
			TLSConfig:             cfg.TLS,
			ContextTimeoutEnabled: true,
			DialTimeout:           max(cfg.Timeout, time.Second),
			ReadTimeout:           cfg.Timeout,
			WriteTimeout:          cfg.Timeout,
			PoolTimeout:           cfg.Timeout,
			// A retry would outlast the timeout; the next request
			// tries again anyway.
			MaxRetries:      -1,
			DisableIdentity: true,
			// Redis Enterprise maintenance notifications: not used, and
			// open-source Redis refuses the handshake.
			MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
		}),
		envelope:  env,
		prefix:    cfg.KeyPrefix,
		timeout:   cfg.Timeout,
		nameKey:   derive(cfg.Secret, "phantom_token key names v1"),
		markKey:   derive(cfg.Secret, "phantom_token purge marks v1"),
		breaker:   breaker,
		onHealth:  cfg.OnHealth,
		onMarks:   cfg.OnMarks,
		retention: cfg.MarkRetention,
		waiters:   map[string][]chan struct{}{},
		done:      make(chan struct{}),
		firstSync: make(chan struct{}),
	}
	s.reachable.Store(true)
	ctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	go s.listen(ctx)
	return s, nil
}

// quietLogger drops go-redis's own log lines: it prints one per failed
// dial, per request, where the store reports each health change once.
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

var quietOnce sync.Once

// derive returns a 32-byte key for one use of the secret.
func derive(secret, info string) []byte {
	k, err := hkdf.Key(sha256.New, []byte(secret), nil, info, 32)
	if err != nil {
		panic(err) // only for lengths HKDF-SHA256 cannot produce
	}
	return k
}

// Close stops listening and closes the connections.
func (s *Store) Close() error {
	s.stop()
	<-s.done
	return s.client.Close()
}

// name returns the hex HMAC of key under the store's name key: entry and
// lock names depend on the secret, so fleets with different secrets never
// touch each other's keys, and a name says nothing without the secret.
func (s *Store) name(key cache.Key) string {
	m := hmac.New(sha256.New, s.nameKey)
	m.Write(key[:])
	return hex.EncodeToString(m.Sum(nil))
}

// An entry and its lock share a hash tag, so that in a Redis Cluster they
// live on one node and a pipeline's commands on them run in order: the
// entry is written before the lock is released, and a lock taken is
// followed by a read that sees the entry of the node that released it.
func (s *Store) entryKey(name string) string { return s.prefix + "e:{" + name + "}" }
func (s *Store) lockKey(name string) string  { return s.prefix + "l:{" + name + "}" }

// call runs op within the timeout and through the breaker, and reports
// Redis's health changes. A refused call returns errBreakerOpen.
func (s *Store) call(ctx context.Context, op func(ctx context.Context) error) error {
	ticket, err := s.breaker.Allow()
	if err != nil {
		return errBreakerOpen
	}
	opCtx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err = op(opCtx)
	switch {
	case err == nil || errors.Is(err, redis.Nil):
		s.breaker.Record(ticket, asguard.Success)
		s.setReachable(true, nil)
		return err
	case callerDone(ctx):
		// The caller went away or ran out of time: that says nothing
		// about Redis.
		s.breaker.Record(ticket, asguard.Ignore)
		return err
	}
	s.breaker.Record(ticket, asguard.Failure)
	s.setReachable(false, err)
	s.synced.Store(false)
	return err
}

// callerDone reports whether ctx has ended or reached its deadline: the
// network deadline go-redis derives from it can fire a moment before the
// context's own timer, and such a failure is the caller's, not Redis's.
func callerDone(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

var (
	errBreakerOpen = errors.New("redis: circuit breaker open")
	errNotSynced   = errors.New("redis: purge marks not read since Redis last failed")
)

// ready reports whether entries may be read: the purge marks have been
// read since Redis last failed. Right after start it waits for the first
// read, within the store's timeout.
func (s *Store) ready(ctx context.Context) bool {
	select {
	case <-s.firstSync:
	default:
		t := time.NewTimer(s.timeout)
		defer t.Stop()
		select {
		case <-s.firstSync:
		case <-t.C:
		case <-ctx.Done():
		}
	}
	return s.synced.Load()
}

func (s *Store) setReachable(ok bool, err error) {
	if s.reachable.CompareAndSwap(!ok, ok) && s.onHealth != nil {
		s.onHealth(ok, err)
	}
}

// Reachable reports whether the last Redis call succeeded.
func (s *Store) Reachable() bool { return s.reachable.Load() }

// BreakerState is the state of the store's circuit breaker.
func (s *Store) BreakerState() asguard.State { return s.breaker.State() }

// Breaker is the store's circuit breaker, for metrics.
func (s *Store) Breaker() *asguard.Breaker { return s.breaker }

// Get reads the entry for key and opens it with token.
func (s *Store) Get(ctx context.Context, key cache.Key, token string) ([]byte, Result) {
	return s.get(ctx, s.name(key), token)
}

func (s *Store) get(ctx context.Context, name, token string) ([]byte, Result) {
	if !s.ready(ctx) {
		return nil, Error
	}
	var sealed []byte
	err := s.call(ctx, func(ctx context.Context) error {
		var err error
		sealed, err = s.client.Get(ctx, s.entryKey(name)).Bytes()
		return err
	})
	switch {
	case errors.Is(err, redis.Nil):
		return nil, Miss
	case err != nil:
		return nil, Error
	}
	plain, err := s.envelope.Open(token, s.entryKey(name), sealed)
	if err != nil {
		return nil, Rejected
	}
	return plain, Hit
}

// Set writes the entry for key, sealed with token, for ttl (nothing when
// ttl is not positive), releases the lock this node may hold on it and
// tells waiting nodes.
func (s *Store) Set(ctx context.Context, key cache.Key, token string, plain []byte, ttl time.Duration, lock *Lock) error {
	name := s.name(key)
	var sealed []byte
	if ttl > 0 {
		var err error
		if sealed, err = s.envelope.Seal(token, s.entryKey(name), plain); err != nil {
			return err
		}
	}
	return s.call(ctx, func(ctx context.Context) error {
		_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			if sealed != nil {
				p.Set(ctx, s.entryKey(name), sealed, ttl)
			}
			if lock != nil {
				unlockScript.Eval(ctx, p, []string{s.lockKey(name)}, lock.value)
			}
			p.Publish(ctx, s.readyChannel(), name)
			return nil
		})
		return err
	})
}
