package caddymodule

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// parseErrSuffix is how a caddyfile.Dispenser error ends: the position of
// the offending token (Dispenser.WrapErr).
var parseErrSuffix = regexp.MustCompile(`, at Caddyfile:\d+$`)

// FuzzUnmarshalCaddyfile parses a whole Caddyfile the way Caddy does
// (caddyfile.Parse: lexing, braces, snippets, environment variables) and
// runs the handler's unmarshaler on every phantom_token segment, as
// httpcaddyfile does. Inputs that do not lex or parse are Caddy's to
// reject, not ours; inputs with "import" are skipped because an import
// reads files (a fuzzed /dev/zero would hang the run).
//
// Properties: no panic; every error is a positioned Caddyfile parse error
// whose message names what is wrong — it starts with the subdirective
// ("cache: ...", "timeout: ...") or quotes the offending token; a success
// has no negative duration or size anywhere, and the handler round-trips
// through JSON unchanged (the Caddyfile adapter hands Caddy the JSON, so
// anything lost there is lost from the running config).
func FuzzUnmarshalCaddyfile(f *testing.F) {
	f.Add(`example.com {
	phantom_token {
		introspection_endpoint https://as.example.com/introspect
		client_id gateway
		client_secret {env.PHANTOM_CLIENT_SECRET}
		introspection_format json
		jwt_claim phantom_token
		as_jwks_uri https://as.example.com/jwks
		issuer https://as.example.com
		resource https://mcp.example.com/mcp
		authorization_server https://as.example.com
		scopes_supported mcp:tools
		required_scopes mcp:tools
		cache {
			max_ttl 5m
			negative_ttl 0
			max_size 64MiB
		}
		timeout 3s
		realm "My MCP"
	}
	reverse_proxy 127.0.0.1:9000
}`)
	f.Add(`:8080 {
	phantom_token /mcp* {
		introspection_endpoint http://127.0.0.1:4444/admin/oauth2/introspect
		client_id gateway
		client_secret {file./run/secrets/gw}
		client_auth client_secret_post
		introspection_format json
		token_exchange {
			endpoint http://127.0.0.1:3000/token
			audience https://mcp.example.com/mcp
			requested_token_type urn:ietf:params:oauth:token-type:jwt
			scope mcp:tools mcp:read
		}
	}
}`)
	f.Add(`localhost {
	phantom_token {
		introspection_endpoint https://as.example.com/introspect
		client_id gateway
		client_assertion_key /etc/caddy/gw.pem
		introspection_format rfc9701
		introspection_iat_skew 30s
		as_jwks_uri https://as.example.com/jwks
		issuer https://as.example.com
		sign {
			issuer https://gw.example.com
			key /etc/caddy/sign.pem
			lifetime 5m
			jwks_path /.well-known/gw-jwks.json
		}
		allow_missing_audience
		audience api://one api://two
	}
}`)
	f.Add(`a {
	phantom_token {
		sign {
			ephemeral_key
		}
		resource_name "Tools \"beta\""
		resource_documentation https://docs.example.com
		metadata_path /.well-known/oauth-protected-resource/mcp
	}
}`)
	f.Add("a {\n\tphantom_token {\n\t\tcache {\n\t\t\tmax_size 0\n\t\t}\n\t}\n}")
	f.Add("a {\n\tphantom_token {\n\t\tmcp_operation tools/call delete_* {\n\t\t\tscopes files:write\n\t\t}\n\t\tmcp_operation prompts/get {\n\t\t\tscopes p\n\t\t}\n\t\tscope_implies a b c\n\t\tmax_body 1MiB\n\t\tcache {\n\t\t\tredis {\n\t\t\t\taddress 127.0.0.1:6379\n\t\t\t\tsecret s\n\t\t\t\ttls\n\t\t\t}\n\t\t}\n\t}\n}")
	f.Add("a {\n\tphantom_token {\n\t\ttimeout -1s\n\t\ttimeout 2s\n\t}\n}")
	f.Add("a {\n\tphantom_token {\n\t\tclient_id a b\n\t}\n}")
	f.Add("a {\n\tphantom_token extra {\n\t}\n}")
	f.Add("a {\n\tphantom_token {\n\t\tsign x {\n\t\t}\n\t}\n}")
	f.Add("a {\n\tphantom_token {\n\t\tbogus\n\t}\n}")
	f.Add("a {\n\tphantom_token {\n\t\tcache {\n\t\t\tmax_ttl\n\t\t}\n\t}\n}")
	f.Add("a {\n\tphantom_token {\n\t\tclient_secret <<EOF\n\t\tline1\n\t\tEOF\n\t}\n}")
	f.Add("(snip) {\n\tclient_id gw\n}\na {\n\tphantom_token {\n\t\tclient_id `raw {value}`\n\t}\n}")

	f.Fuzz(func(t *testing.T, input string) {
		tokens, err := caddyfile.Tokenize([]byte(input), "Caddyfile")
		if err != nil {
			return
		}
		for _, tok := range tokens {
			if tok.Text == "import" {
				return
			}
		}
		blocks, err := caddyfile.Parse("Caddyfile", []byte(input))
		if err != nil {
			return
		}
		for _, sb := range blocks {
			for _, seg := range sb.Segments {
				if seg.Directive() == "phantom_token" {
					checkUnmarshal(t, withoutMatcher(seg))
				}
			}
		}
	})
}

// withoutMatcher drops the matcher token after the directive, as
// httpcaddyfile does before it calls a handler's unmarshaler
// ("phantom_token /mcp* {", "phantom_token @api {", "phantom_token * {").
func withoutMatcher(seg caddyfile.Segment) caddyfile.Segment {
	if len(seg) < 2 || seg[1].Line != seg[0].Line {
		return seg
	}
	if m := seg[1].Text; m == "*" || strings.HasPrefix(m, "/") || strings.HasPrefix(m, "@") {
		return append(caddyfile.Segment{seg[0]}, seg[2:]...)
	}
	return seg
}

// checkUnmarshal runs the unmarshaler on one segment and checks the
// properties FuzzUnmarshalCaddyfile describes.
func checkUnmarshal(t *testing.T, seg caddyfile.Segment) {
	t.Helper()
	var h Handler
	err := h.UnmarshalCaddyfile(caddyfile.NewDispenser(seg))
	if err != nil {
		msg := err.Error()
		if !parseErrSuffix.MatchString(msg) {
			t.Fatalf("error is not a positioned parse error: %q", msg)
		}
		msg = parseErrSuffix.ReplaceAllString(msg, "")
		if !namesToken(msg, seg) {
			t.Fatalf("error names no subdirective or token of the segment: %q", msg)
		}
		return
	}

	checkNonNegative(t, reflect.ValueOf(h), "handler")
	for _, tok := range seg {
		if !utf8.ValidString(tok.Text) {
			// JSON replaces invalid UTF-8 with U+FFFD, as Caddy's own
			// adapter does for every module: not this handler's to fix.
			return
		}
	}
	b, err := json.Marshal(&h)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var back Handler
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("unmarshal %s: %v", b, err)
	}
	if !reflect.DeepEqual(h, back) {
		b2, _ := json.Marshal(&back)
		t.Fatalf("json round trip changed the handler:\n%s\n%s", b, b2)
	}
}

// namesToken reports whether msg starts with "<token>:" or quotes a
// token ('<token>') of seg: the subdirective or the offending value.
func namesToken(msg string, seg caddyfile.Segment) bool {
	for _, tok := range seg {
		// An empty token ("") is named as ''.
		if (tok.Text != "" && strings.HasPrefix(msg, tok.Text+":")) || strings.Contains(msg, "'"+tok.Text+"'") {
			return true
		}
	}
	// Dispenser.ArgErr on a '{' where an argument was expected.
	return strings.HasPrefix(msg, "unexpected token '{'")
}

// checkNonNegative walks v and fails on a negative caddy.Duration or
// integer: no Caddyfile value may configure a negative time or size.
func checkNonNegative(t *testing.T, v reflect.Value, path string) {
	t.Helper()
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			checkNonNegative(t, v.Elem(), path)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				checkNonNegative(t, v.Field(i), path+"."+v.Type().Field(i).Name)
			}
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if v.Int() < 0 {
			if v.Type() == reflect.TypeOf(caddy.Duration(0)) {
				t.Fatalf("%s is a negative duration %s", path, time.Duration(v.Int()))
			}
			t.Fatalf("%s is negative: %d", path, v.Int())
		}
	}
}
