package caddymodule

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// The Caddyfile form of the shared cache (see sharedcache.go):
//
//	redis {
//	    address    <host:port>...
//	    username   <name>
//	    password   <secret>
//	    db         <n>
//	    tls
//	    tls_ca     <file>
//	    secret     <secret>
//	    key_prefix <prefix>
//	    timeout    <duration>
//	}
func (c *RedisConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return block(d, "redis", func(name string) error {
		switch name {
		case "address":
			return someArgs(d, &c.Address, "<host:port>... (one: a standalone server; several: a Redis Cluster)")
		case "username":
			return oneArg(d, &c.Username)
		case "password":
			return oneArg(d, &c.Password)
		case "db":
			var s string
			if err := oneArg(d, &s); err != nil {
				return err
			}
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				return d.Errf("db: expected a database number (0 or more), got '%s'", s)
			}
			c.DB = n
			return nil
		case "tls":
			if d.NextArg() {
				return d.Errf("tls: takes no argument (use tls_ca <file> for a private CA), got '%s'", d.Val())
			}
			c.TLS = true
			return nil
		case "tls_ca":
			return oneArg(d, &c.TLSCA)
		case "secret":
			return oneArg(d, &c.Secret)
		case "key_prefix":
			return oneArg(d, &c.KeyPrefix)
		case "timeout":
			var dur caddy.Duration
			err := durationArg(d, &dur, false)
			c.Timeout = dur
			return err
		}
		return d.Errf("redis: unknown subdirective '%s'", name)
	})
}
