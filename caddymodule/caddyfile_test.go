package caddymodule

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddytest"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	d := caddyfile.NewTestDispenser(`phantom_token {
		introspection_endpoint https://as.example.com/introspect
		client_id gateway
		client_secret {env.SECRET}
		client_auth client_secret_post
		introspection_format json
		jwt_claim phantom_token
		as_jwks_uri https://as.example.com/jwks
		issuer https://as.example.com
		resource https://mcp.example.com/mcp
		audience api://one api://two
		allow_missing_audience
		authorization_server https://as.example.com https://as2.example.com
		scopes_supported mcp:tools
		resource_name "My MCP"
		resource_documentation https://docs.example.com
		metadata_path /gw/.well-known/oauth-protected-resource/mcp
		required_scopes mcp:tools mcp:read
		cache {
			max_ttl 0
			negative_ttl 2s
			max_size 1MiB
		}
		timeout 3s
		realm mcp
		leeway 30s
	}`)
	var h Handler
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	zero, two := caddy.Duration(0), caddy.Duration(2*time.Second)
	want := Handler{
		IntrospectionEndpoint: "https://as.example.com/introspect",
		ClientID:              "gateway",
		ClientSecret:          "{env.SECRET}",
		ClientAuth:            "client_secret_post",
		IntrospectionFormat:   "json",
		JWTClaim:              "phantom_token",
		ASJWKSURI:             "https://as.example.com/jwks",
		Issuer:                "https://as.example.com",
		Resource:              "https://mcp.example.com/mcp",
		Audience:              []string{"api://one", "api://two"},
		AllowMissingAudience:  true,
		AuthorizationServers:  []string{"https://as.example.com", "https://as2.example.com"},
		ScopesSupported:       []string{"mcp:tools"},
		ResourceName:          "My MCP",
		ResourceDocumentation: "https://docs.example.com",
		MetadataPath:          "/gw/.well-known/oauth-protected-resource/mcp",
		RequiredScopes:        []string{"mcp:tools", "mcp:read"},
		Cache:                 &CacheConfig{MaxTTL: &zero, NegativeTTL: &two, MaxSize: 1 << 20},
		Timeout:               caddy.Duration(3 * time.Second),
		Realm:                 "mcp",
		Leeway:                caddy.Duration(30 * time.Second),
	}
	if !reflect.DeepEqual(h, want) {
		got, _ := json.Marshal(h)
		exp, _ := json.Marshal(want)
		t.Fatalf("got  %s\nwant %s", got, exp)
	}
}

func TestUnmarshalCaddyfileErrors(t *testing.T) {
	for _, tc := range []struct {
		name, input, wantErr string
	}{
		{"unknown subdirective", `phantom_token { introspection_url https://x }`, "unknown subdirective 'introspection_url'"},
		{"duplicate subdirective", "phantom_token {\nclient_id a\nclient_id b\n}", "duplicate subdirective 'client_id'"},
		{"missing value", "phantom_token {\nclient_id\n}", "client_id: expected one argument"},
		{"two values", "phantom_token {\nclient_id a b\n}", "client_id: expected one argument, got another"},
		{"bad client_auth", "phantom_token {\nclient_auth private\n}", "client_auth: expected one of [client_secret_basic client_secret_post private_key_jwt tls_client_auth]"},
		{"bad format", "phantom_token {\nintrospection_format xml\n}", "introspection_format: expected one of [jwt json rfc9701]"},
		{"bad timeout", "phantom_token {\ntimeout soon\n}", "timeout: expected a positive duration"},
		{"zero timeout", "phantom_token {\ntimeout 0\n}", "timeout: expected a positive duration"},
		{"negative max_ttl", "phantom_token {\ncache {\nmax_ttl -1s\n}\n}", "max_ttl: expected a duration such as 5m, or 0 to disable"},
		{"bad negative_ttl", "phantom_token {\ncache {\nnegative_ttl x\n}\n}", "negative_ttl: expected a duration"},
		{"bad max_size", "phantom_token {\ncache {\nmax_size lots\n}\n}", "max_size: expected a positive size such as 64MiB"},
		{"zero max_size", "phantom_token {\ncache {\nmax_size 0\n}\n}", "max_size: expected a positive size"},
		{"unknown cache subdirective", "phantom_token {\ncache {\nttl 5m\n}\n}", "cache: unknown subdirective 'ttl'"},
		{"duplicate cache subdirective", "phantom_token {\ncache {\nmax_ttl 5m\nmax_ttl 1m\n}\n}", "cache: duplicate subdirective 'max_ttl'"},
		{"duplicate cache block", "phantom_token {\ncache {\n}\ncache {\n}\n}", "duplicate subdirective 'cache'"},
		{"cache argument", "phantom_token {\ncache 5m\n}", "cache: expected a block"},
		{"no scopes", "phantom_token {\nrequired_scopes\n}", "required_scopes: expected <scope>..."},
		{"no authorization server", "phantom_token {\nauthorization_server\n}", "authorization_server: expected <issuer url>..."},
		{"flag with argument", "phantom_token {\nallow_missing_audience yes\n}", "allow_missing_audience: takes no arguments"},
		{"unknown sign subdirective", "phantom_token {\nsign {\nalg RS256\n}\n}", "sign: unknown subdirective 'alg'"},
		{"duplicate sign subdirective", "phantom_token {\nsign {\nkey a\nkey b\n}\n}", "sign: duplicate subdirective 'key'"},
		{"bad sign lifetime", "phantom_token {\nsign {\nlifetime forever\n}\n}", "lifetime: expected a positive duration"},
		{"ephemeral_key argument", "phantom_token {\nsign {\nephemeral_key yes\n}\n}", "ephemeral_key: takes no arguments"},
		{"unknown token_exchange subdirective", "phantom_token {\ntoken_exchange {\nurl x\n}\n}", "token_exchange: unknown subdirective 'url'"},
		{"token_exchange argument", "phantom_token {\ntoken_exchange https://x\n}", "token_exchange: expected a block"},
		{"inline argument", `phantom_token https://as.example.com`, "wrong argument count"},
		{"dpop argument", "phantom_token {\ndpop on\n}", "dpop: expected a block"},
		{"unknown dpop subdirective", "phantom_token {\ndpop {\nalgs ES256\n}\n}", "dpop: unknown subdirective 'algs'"},
		{"duplicate dpop subdirective", "phantom_token {\ndpop {\nnonce\nnonce\n}\n}", "dpop: duplicate subdirective 'nonce'"},
		{"dpop required argument", "phantom_token {\ndpop {\nrequired yes\n}\n}", "dpop required: takes no arguments"},
		{"dpop no algorithms", "phantom_token {\ndpop {\nalgorithms\n}\n}", "algorithms: expected <alg>..."},
		{"dpop zero max_age", "phantom_token {\ndpop {\nmax_age 0\n}\n}", "max_age: expected a positive duration"},
		{"dpop two origins", "phantom_token {\ndpop {\norigin a b\n}\n}", "origin: expected one argument, got another"},
		{"mtls_bound argument", "phantom_token {\nmtls_bound yes\n}", "mtls_bound: takes no arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestUnmarshalCaddyfileJWTSources(t *testing.T) {
	d := caddyfile.NewTestDispenser(`phantom_token {
		client_auth private_key_jwt
		client_assertion_key /etc/gw/key.pem
		client_assertion_audience https://as.example.com
		introspection_format rfc9701
		introspection_iat_skew 30s
		token_exchange {
			endpoint https://as.example.com/token
			audience api://mcp
			requested_token_type urn:ietf:params:oauth:token-type:jwt
			scope mcp:tools mcp:read
		}
		sign {
			issuer https://gw.example.com
			key /etc/gw/sign.pem
			previous_key /etc/gw/old.pem
			lifetime 2m
			jwks_path /keys.json
		}
	}`)
	var h Handler
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	wantTE := TokenExchangeConfig{Endpoint: "https://as.example.com/token", Audience: "api://mcp",
		RequestedTokenType: "urn:ietf:params:oauth:token-type:jwt", Scope: "mcp:tools mcp:read"}
	wantSign := SignConfig{Issuer: "https://gw.example.com", Key: "/etc/gw/sign.pem", PreviousKey: "/etc/gw/old.pem",
		Lifetime: caddy.Duration(2 * time.Minute), JWKSPath: "/keys.json"}
	if h.TokenExchange == nil || *h.TokenExchange != wantTE || h.Sign == nil || *h.Sign != wantSign ||
		h.ClientAssertionKey != "/etc/gw/key.pem" || h.ClientAssertionAudience != "https://as.example.com" ||
		h.IntrospectionIATSkew != caddy.Duration(30*time.Second) || h.IntrospectionFormat != "rfc9701" {
		got, _ := json.Marshal(h)
		t.Fatalf("got %s", got)
	}
	var tls Handler
	if err := tls.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`phantom_token {
		client_auth tls_client_auth
		tls_client_cert /c.pem
		tls_client_key /k.pem
		tls_ca /ca.pem
		sign {
			issuer https://gw
			ephemeral_key
		}
	}`)); err != nil {
		t.Fatal(err)
	}
	if tls.TLSClientCert != "/c.pem" || tls.TLSClientKey != "/k.pem" || tls.TLSCA != "/ca.pem" || !tls.Sign.EphemeralKey {
		t.Errorf("tls settings not parsed: %+v", tls)
	}
}

// TestCaddyfileAdapt compares Caddyfile→JSON adaptation with golden files:
// each testdata/*.caddyfiletest holds a Caddyfile, a line of dashes, and
// the JSON it must adapt to.
func TestCaddyfileAdapt(t *testing.T) {
	files, err := filepath.Glob("testdata/*.caddyfiletest")
	if err != nil || len(files) == 0 {
		t.Fatalf("no adapt golden files: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			parts := strings.Split(string(data), "----------")
			if len(parts) != 2 {
				t.Fatalf("%s: want a Caddyfile and JSON separated by ----------", f)
			}
			input, want := strings.TrimSpace(parts[0])+"\n", strings.TrimSpace(parts[1])
			if !caddytest.CompareAdapt(t, f, input, "caddyfile", want) {
				t.Errorf("%s: adapted JSON differs (diff above)", f)
			}
		})
	}
}

func TestUnmarshalCaddyfileDPoP(t *testing.T) {
	var h Handler
	input := "phantom_token {\ndpop {\nrequired\nalgorithms ES256 EdDSA\nmax_age 30s\nnonce\norigin https://mcp.example.com\n}\nmtls_bound\n}"
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
		t.Fatal(err)
	}
	want := &DPoPConfig{Required: true, Algorithms: []string{"ES256", "EdDSA"}, MaxAge: caddy.Duration(30 * time.Second), Nonce: true, Origin: "https://mcp.example.com"}
	if !reflect.DeepEqual(h.DPoP, want) || !h.MTLSBound {
		t.Errorf("dpop = %+v, mtls_bound = %v; want %+v, true", h.DPoP, h.MTLSBound, want)
	}
	var empty Handler
	if err := empty.UnmarshalCaddyfile(caddyfile.NewTestDispenser("phantom_token {\ndpop {\n}\n}")); err != nil || empty.DPoP == nil || empty.DPoP.Required {
		t.Errorf("an empty dpop block: %+v, %v; want DPoP on with defaults", empty.DPoP, err)
	}
}
