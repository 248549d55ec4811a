package caddymodule

import (
	"strconv"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// The Caddyfile forms of the AS guard settings (see asguard.go):
//
//	max_concurrent_introspections <n>
//	circuit_breaker off
//	circuit_breaker {
//	    failures <n>
//	    cool_off <duration>
//	}

// positiveIntArg reads one argument that must be a positive integer.
func positiveIntArg(d *caddyfile.Dispenser, dst *int) error {
	name := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return d.Errf("%s: expected a positive whole number, got '%s'", name, s)
	}
	*dst = n
	return nil
}

func (c *CircuitBreakerConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		if d.Val() != "off" || d.NextArg() {
			return d.Errf("circuit_breaker: expected 'off' or a block, got '%s'", d.Val())
		}
		if d.NextBlock(d.Nesting()) {
			return d.Errf("circuit_breaker: 'off' takes no block")
		}
		c.Failures = breakerOff
		return nil
	}
	return block(d, "circuit_breaker", func(name string) error {
		switch name {
		case "failures":
			return positiveIntArg(d, &c.Failures)
		case "cool_off":
			return durationArg(d, &c.CoolOff, false)
		}
		return d.Errf("circuit_breaker: unknown subdirective '%s'", name)
	})
}
