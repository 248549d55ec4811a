package caddymodule

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// The Caddyfile forms of sender-constrained tokens (see dpop.go):
//
//	dpop {
//	    required
//	    algorithms <alg>...
//	    max_age    <duration>
//	    nonce
//	    origin     <scheme://host[:port]>
//	}
//	mtls_bound
func (c *DPoPConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return block(d, "dpop", func(name string) error {
		switch name {
		case "required":
			return flagArg(d, "dpop required", &c.Required)
		case "nonce":
			return flagArg(d, "dpop nonce", &c.Nonce)
		case "algorithms":
			return someArgs(d, &c.Algorithms, "<alg>... such as ES256 EdDSA PS256")
		case "max_age":
			return durationArg(d, &c.MaxAge, false)
		case "origin":
			return oneArg(d, &c.Origin)
		default:
			return d.Errf("dpop: unknown subdirective '%s' (expected required, algorithms, max_age, nonce or origin)", name)
		}
	})
}

// flagArg sets a subdirective that takes no arguments.
func flagArg(d *caddyfile.Dispenser, what string, dst *bool) error {
	if d.NextArg() {
		return d.Errf("%s: takes no arguments, got '%s'", what, d.Val())
	}
	*dst = true
	return nil
}
