package caddymodule

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/phantomgate/caddy-phantom-token/cache/redisstore"
)

// RedisConfig configures the shared second cache level (docs/fleet.md).
type RedisConfig struct {
	// Address is one host:port (a standalone server) or several (the seed
	// nodes of a Redis Cluster). Required.
	Address []string `json:"address,omitempty"`
	// Username authenticates with a Redis ACL user. Optional.
	Username string `json:"username,omitempty"`
	// Password authenticates to Redis; {env.*} and {file.*} placeholders
	// are resolved, like client_secret. Optional.
	Password string `json:"password,omitempty"`
	// DB selects the database of a standalone server. Default: 0.
	DB int `json:"db,omitempty"`
	// TLS connects to Redis over TLS, trusting the system roots or TLSCA.
	TLS bool `json:"tls,omitempty"`
	// TLSCA is a PEM file of the CA certificates to trust for Redis's TLS
	// certificate instead of the system roots. Needs TLS.
	TLSCA string `json:"tls_ca,omitempty"`
	// Secret is shared by every gateway node: it keys the encryption and
	// authentication of the entries in Redis and the names of their keys.
	// Placeholders are resolved like Password. Required.
	Secret string `json:"secret,omitempty"`
	// KeyPrefix starts every Redis key (and pub/sub channel) the gateway
	// uses. Default: "phantom_token:".
	KeyPrefix string `json:"key_prefix,omitempty"`
	// Timeout bounds each Redis operation. Default: 50ms.
	Timeout caddy.Duration `json:"timeout,omitempty"`
}

// sharedStores holds the open Redis stores by configuration, so that the
// handlers of one config (and of the next, across a reload) share one
// connection pool, one breaker and one purge domain.
var sharedStores = caddy.NewUsagePool()

// sharedStore is a Redis store with the purge domain of its fleet.
type sharedStore struct {
	store  *redisstore.Store
	domain *purgeDomain
}

// Destruct implements caddy.Destructor.
func (s *sharedStore) Destruct() error {
	sharedCacheBreakerStates.remove(s.store.Breaker())
	return s.store.Close()
}

// resolve resolves placeholders and checks the settings; errors name the
// subdirective.
func (c *RedisConfig) resolve(repl *caddy.Replacer) error {
	for _, f := range []struct {
		name string
		val  *string
	}{
		{"username", &c.Username}, {"password", &c.Password}, {"secret", &c.Secret},
		{"tls_ca", &c.TLSCA}, {"key_prefix", &c.KeyPrefix},
	} {
		raw := *f.val
		*f.val = repl.ReplaceKnown(raw, "")
		if f.name != "key_prefix" {
			*f.val = strings.TrimSpace(*f.val)
		}
		if raw != "" && *f.val == "" {
			return fmt.Errorf("cache.redis.%s: empty after resolving placeholders in %q", f.name, redactPlaceholders(raw))
		}
	}
	if len(c.Address) == 0 {
		return fmt.Errorf("cache.redis.address: required (host:port; several for a Redis Cluster)")
	}
	for i, a := range c.Address {
		a = strings.TrimSpace(repl.ReplaceKnown(a, ""))
		c.Address[i] = a
		host, port, err := net.SplitHostPort(a)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			return fmt.Errorf("cache.redis.address: expected host:port, got %q", a)
		}
	}
	switch {
	case c.Secret == "":
		return fmt.Errorf("cache.redis.secret: required (shared by every gateway node; authenticates the entries)")
	case c.DB < 0:
		return fmt.Errorf("cache.redis.db: expected 0 or more, got %d", c.DB)
	case c.DB != 0 && len(c.Address) > 1:
		return fmt.Errorf("cache.redis.db: a Redis Cluster (several addresses) has only database 0")
	case c.TLSCA != "" && !c.TLS:
		return fmt.Errorf("cache.redis.tls_ca: only valid with tls")
	case c.Timeout < 0:
		return fmt.Errorf("cache.redis.timeout: must be positive")
	}
	return nil
}

// poolKey identifies the store: everything that changes the connection or
// the fleet, the secrets only as a hash.
func (c *RedisConfig) poolKey() string {
	h := sha256.New()
	for _, p := range append([]string{c.Username, c.Password, c.Secret, strconv.Itoa(c.DB),
		strconv.FormatBool(c.TLS), c.TLSCA, c.KeyPrefix, time.Duration(c.Timeout).String()}, c.Address...) {
		fmt.Fprintf(h, "%d:%s,", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// tlsConfig is the TLS configuration for Redis, nil without tls.
func (c *RedisConfig) tlsConfig() (*tls.Config, error) {
	if !c.TLS {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.TLSCA != "" {
		pem, err := os.ReadFile(c.TLSCA)
		if err != nil {
			return nil, fmt.Errorf("cache.redis.tls_ca: %v", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cache.redis.tls_ca: no PEM certificate in %s", c.TLSCA)
		}
		cfg.RootCAs = roots
	}
	return cfg, nil
}

// provisionSharedStore opens (or joins) the handler's Redis store. It does
// no network I/O: an unreachable Redis is found out, and logged, on use.
func (h *Handler) provisionSharedStore(repl *caddy.Replacer) error {
	c := h.Cache.Redis
	if err := c.resolve(repl); err != nil {
		return err
	}
	tlsCfg, err := c.tlsConfig()
	if err != nil {
		return err
	}
	key := c.poolKey()
	logger := h.logger
	val, _, err := sharedStores.LoadOrNew(key, func() (caddy.Destructor, error) {
		// The domain exists before the store starts listening: marks
		// may arrive at once.
		s := &sharedStore{domain: &purgeDomain{}}
		store, err := redisstore.New(redisstore.Config{
			Addresses: c.Address,
			Username:  c.Username,
			Password:  c.Password,
			DB:        c.DB,
			TLS:       tlsCfg,
			Secret:    c.Secret,
			KeyPrefix: c.KeyPrefix,
			Timeout:   time.Duration(c.Timeout),
			OnHealth: func(ok bool, err error) {
				if ok {
					logger.Warn("shared cache: Redis reachable again; sharing resumes")
				} else {
					logger.Warn("shared cache: Redis unreachable; carrying on with the local cache and the AS", zap.Error(err))
				}
			},
			OnMarks: func(ms []redisstore.Mark) { s.domain.add(ms...) },
			// Marks must outlive every entry they may refuse.
			MarkRetention: max(24*time.Hour, h.maxTTL, h.negTTL),
		})
		if err != nil {
			return nil, fmt.Errorf("cache.redis: %v", err)
		}
		s.store = store
		s.domain.store = store
		sharedCacheBreakerStates.add(store.Breaker())
		return s, nil
	})
	if err != nil {
		return err
	}
	h.shared = val.(*sharedStore)
	h.sharedKey = key
	h.domain = h.shared.domain
	return nil
}

// releaseSharedStore gives the handler's share of its store back.
func (h *Handler) releaseSharedStore() error {
	if h.sharedKey == "" {
		return nil
	}
	_, err := sharedStores.Delete(h.sharedKey)
	h.sharedKey = ""
	return err
}
