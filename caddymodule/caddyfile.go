package caddymodule

import (
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("phantom_token", parseCaddyfile)
	// Right after forward_auth: authentication runs before the handlers
	// that proxy or serve, and users need no "order" line.
	httpcaddyfile.RegisterDirectiveOrder("phantom_token", httpcaddyfile.After, "forward_auth")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var handler Handler
	err := handler.UnmarshalCaddyfile(h.Dispenser)
	return &handler, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	phantom_token [<matcher>] {
//	    introspection_endpoint <url>
//	    client_id              <id>
//	    client_secret          <secret>
//	    client_auth            client_secret_basic|client_secret_post
//	    introspection_format   jwt|json
//	    jwt_claim              <name>
//	    client_assertion_key   <file>
//	    client_assertion_audience <url>
//	    tls_client_cert        <file>
//	    tls_client_key         <file>
//	    tls_ca                 <file>
//	    introspection_iat_skew <duration>
//	    token_exchange {
//	        endpoint             <url>
//	        audience             <aud>
//	        requested_token_type <urn>
//	        scope                <scope>...
//	    }
//	    sign {
//	        issuer        <url>
//	        key           <file>
//	        previous_key  <file>
//	        lifetime      <duration>
//	        jwks_path     <path>
//	        ephemeral_key
//	    }
//	    as_jwks_uri            <url>
//	    issuer                 <url>
//	    resource               <url>
//	    audience               <value>...
//	    allow_missing_audience
//	    authorization_server   <issuer url>...
//	    scopes_supported       <scope>...
//	    resource_name          <text>
//	    resource_documentation <url>
//	    metadata_path          <path>
//	    required_scopes        <scope>...
//	    cache {
//	        max_ttl      <duration>
//	        negative_ttl <duration>
//	        max_size     <size>
//	    }
//	    timeout <duration>
//	    realm   <name>
//	    max_concurrent_introspections <n>
//	    circuit_breaker off | {
//	        failures <n>
//	        cool_off <duration>
//	    }
//	    mcp_operation <method> [<name pattern>] {   # repeatable
//	        scopes <scope>...
//	    }
//	    scope_implies <broad> <narrow>...            # repeatable
//	    max_body <size>
//	    dpop {
//	        required
//	        algorithms <alg>...
//	        max_age    <duration>
//	        nonce
//	        origin     <scheme://host[:port]>
//	    }
//	    mtls_bound
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	for d.NextBlock(0) {
		name := d.Val()
		if seen[name] {
			return d.Errf("duplicate subdirective '%s'", name)
		}
		if name != "mcp_operation" && name != "scope_implies" { // repeatable
			seen[name] = true
		}
		var err error
		switch name {
		case "introspection_endpoint":
			err = oneArg(d, &h.IntrospectionEndpoint)
		case "client_id":
			err = oneArg(d, &h.ClientID)
		case "client_secret":
			err = oneArg(d, &h.ClientSecret)
		case "client_auth":
			err = oneOf(d, &h.ClientAuth, clientAuthMethods)
		case "introspection_format":
			err = oneOf(d, &h.IntrospectionFormat, introspectionFormats)
		case "jwt_claim":
			err = oneArg(d, &h.JWTClaim)
		case "client_assertion_key":
			err = oneArg(d, &h.ClientAssertionKey)
		case "client_assertion_audience":
			err = oneArg(d, &h.ClientAssertionAudience)
		case "tls_client_cert":
			err = oneArg(d, &h.TLSClientCert)
		case "tls_client_key":
			err = oneArg(d, &h.TLSClientKey)
		case "tls_ca":
			err = oneArg(d, &h.TLSCA)
		case "introspection_iat_skew":
			var dur caddy.Duration
			err = durationArg(d, &dur, false)
			h.IntrospectionIATSkew = dur
		case "token_exchange":
			h.TokenExchange = new(TokenExchangeConfig)
			err = h.TokenExchange.unmarshalCaddyfile(d)
		case "sign":
			h.Sign = new(SignConfig)
			err = h.Sign.unmarshalCaddyfile(d)
		case "as_jwks_uri":
			err = oneArg(d, &h.ASJWKSURI)
		case "issuer":
			err = oneArg(d, &h.Issuer)
		case "resource":
			err = oneArg(d, &h.Resource)
		case "audience":
			err = someArgs(d, &h.Audience, "<value>...")
		case "allow_missing_audience":
			if d.NextArg() {
				return d.Errf("allow_missing_audience: takes no arguments")
			}
			h.AllowMissingAudience = true
		case "authorization_server":
			err = someArgs(d, &h.AuthorizationServers, "<issuer url>...")
		case "scopes_supported":
			err = someArgs(d, &h.ScopesSupported, "<scope>...")
		case "resource_name":
			err = oneArg(d, &h.ResourceName)
		case "resource_documentation":
			err = oneArg(d, &h.ResourceDocumentation)
		case "metadata_path":
			err = oneArg(d, &h.MetadataPath)
		case "required_scopes":
			err = someArgs(d, &h.RequiredScopes, "<scope>...")
		case "cache":
			h.Cache = new(CacheConfig)
			err = h.Cache.unmarshalCaddyfile(d)
		case "timeout":
			var dur caddy.Duration
			err = durationArg(d, &dur, false)
			h.Timeout = dur
		case "realm":
			err = oneArg(d, &h.Realm)
		case "leeway":
			var dur caddy.Duration
			err = durationArg(d, &dur, true)
			h.Leeway = dur
		case "max_concurrent_introspections":
			err = positiveIntArg(d, &h.MaxConcurrentIntrospections)
		case "circuit_breaker":
			h.CircuitBreaker = new(CircuitBreakerConfig)
			err = h.CircuitBreaker.unmarshalCaddyfile(d)
		case "mcp_operation":
			err = h.unmarshalMCPOperation(d)
		case "scope_implies":
			err = h.unmarshalScopeImplies(d)
		case "max_body":
			err = sizeArg(d, &h.MaxBody)
		case "dpop":
			h.DPoP = new(DPoPConfig)
			err = h.DPoP.unmarshalCaddyfile(d)
		case "mtls_bound":
			err = flagArg(d, "mtls_bound", &h.MTLSBound)
		default:
			return d.Errf("unknown subdirective '%s'", name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *TokenExchangeConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return block(d, "token_exchange", func(name string) error {
		switch name {
		case "endpoint":
			return oneArg(d, &c.Endpoint)
		case "audience":
			return oneArg(d, &c.Audience)
		case "requested_token_type":
			return oneArg(d, &c.RequestedTokenType)
		case "scope":
			var scopes []string
			err := someArgs(d, &scopes, "<scope>...")
			c.Scope = strings.Join(scopes, " ")
			return err
		}
		return d.Errf("token_exchange: unknown subdirective '%s'", name)
	})
}

func (c *SignConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return block(d, "sign", func(name string) error {
		switch name {
		case "issuer":
			return oneArg(d, &c.Issuer)
		case "key":
			return oneArg(d, &c.Key)
		case "previous_key":
			return oneArg(d, &c.PreviousKey)
		case "lifetime":
			return durationArg(d, &c.Lifetime, false)
		case "jwks_path":
			return oneArg(d, &c.JWKSPath)
		case "ephemeral_key":
			if d.NextArg() {
				return d.Errf("ephemeral_key: takes no arguments")
			}
			c.EphemeralKey = true
			return nil
		}
		return d.Errf("sign: unknown subdirective '%s'", name)
	})
}

// block walks a nested block, refusing arguments on its line and
// duplicate subdirectives; each subdirective goes to parse.
func block(d *caddyfile.Dispenser, what string, parse func(name string) error) error {
	if d.NextArg() {
		return d.Errf("%s: expected a block, got argument '%s'", what, d.Val())
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if seen[name] {
			return d.Errf("%s: duplicate subdirective '%s'", what, name)
		}
		seen[name] = true
		if err := parse(name); err != nil {
			return err
		}
	}
	return nil
}

func (c *CacheConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return block(d, "cache", func(name string) error {
		switch name {
		case "max_ttl":
			c.MaxTTL = new(caddy.Duration)
			return durationArg(d, c.MaxTTL, true)
		case "negative_ttl":
			c.NegativeTTL = new(caddy.Duration)
			return durationArg(d, c.NegativeTTL, true)
		case "max_size":
			var s string
			if err := oneArg(d, &s); err != nil {
				return err
			}
			return sizeArgValue(d, "max_size", s, &c.MaxSize)
		case "redis":
			c.Redis = new(RedisConfig)
			return c.Redis.unmarshalCaddyfile(d)
		}
		return d.Errf("cache: unknown subdirective '%s'", name)
	})
}

// sizeArg reads one positive size such as 64MiB.
func sizeArg(d *caddyfile.Dispenser, dst *int64) error {
	name := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	return sizeArgValue(d, name, s, dst)
}

func sizeArgValue(d *caddyfile.Dispenser, name, s string, dst *int64) error {
	n, err := humanize.ParseBytes(s)
	if err != nil || n == 0 || n > 1<<62 {
		return d.Errf("%s: expected a positive size such as 64MiB, got '%s'", name, s)
	}
	*dst = int64(n)
	return nil
}

// oneArg reads exactly one argument for the current subdirective.
func oneArg(d *caddyfile.Dispenser, dst *string) error {
	name := d.Val()
	if !d.NextArg() {
		return d.Errf("%s: expected one argument", name)
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.Errf("%s: expected one argument, got another: '%s'", name, d.Val())
	}
	return nil
}

// oneOf reads one argument that must be one of allowed.
func oneOf(d *caddyfile.Dispenser, dst *string, allowed []string) error {
	name := d.Val()
	if err := oneArg(d, dst); err != nil {
		return err
	}
	for _, a := range allowed {
		if *dst == a {
			return nil
		}
	}
	return d.Errf("%s: expected one of %v, got '%s'", name, allowed, *dst)
}

// someArgs reads one or more arguments.
func someArgs(d *caddyfile.Dispenser, dst *[]string, form string) error {
	name := d.Val()
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.Errf("%s: expected %s", name, form)
	}
	*dst = args
	return nil
}

// durationArg reads one duration; zero is accepted only where it means
// "disabled".
func durationArg(d *caddyfile.Dispenser, dst *caddy.Duration, zeroOK bool) error {
	name := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil || dur < 0 || (dur == 0 && !zeroOK) {
		want := "a positive duration such as 5s"
		if zeroOK {
			want = "a duration such as 5m, or 0 to disable"
		}
		return d.Errf("%s: expected %s, got '%s'", name, want, s)
	}
	*dst = caddy.Duration(dur)
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
