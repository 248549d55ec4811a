package introspect

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestNewValidation(t *testing.T) {
	ok := Config{Endpoint: "https://as.example.com/introspect", ClientID: "gw", ClientSecret: testSecret}
	tests := []configCase[Config]{
		{"valid https", nil, ""},
		{"missing endpoint", func(c *Config) { c.Endpoint = "" }, "endpoint is required"},
		{"relative endpoint", func(c *Config) { c.Endpoint = "/introspect" }, "endpoint"},
		{"unparseable endpoint", func(c *Config) { c.Endpoint = "https://as example.com/%zz" }, "endpoint"},
		{"ftp endpoint", func(c *Config) { c.Endpoint = "ftp://as.example.com/x" }, "endpoint: scheme"},
		{"http non-loopback", func(c *Config) { c.Endpoint = "http://as.example.com/introspect" }, "endpoint: http is only allowed for loopback"},
		{"http 10.x is not loopback", func(c *Config) { c.Endpoint = "http://10.0.0.1/introspect" }, "endpoint: http"},
		{"http localhost.evil.com is not loopback", func(c *Config) { c.Endpoint = "http://localhost.evil.com/x" }, "endpoint: http"},
		{"http 127.0.0.1", func(c *Config) { c.Endpoint = "http://127.0.0.1:8080/introspect" }, ""},
		{"http 127.1.2.3", func(c *Config) { c.Endpoint = "http://127.1.2.3/introspect" }, ""},
		{"http ::1", func(c *Config) { c.Endpoint = "http://[::1]:9000/introspect" }, ""},
		{"http localhost", func(c *Config) { c.Endpoint = "http://LocalHost:9000/introspect" }, ""},
		{"user info", func(c *Config) { c.Endpoint = "https://u:p@as.example.com/introspect" }, "endpoint: url must not contain user info"},
		{"fragment", func(c *Config) { c.Endpoint = "https://as.example.com/introspect#x" }, "endpoint: url must not contain a fragment"},
		{"missing client_id", func(c *Config) { c.ClientID = "" }, "client_id is required"},
		{"missing client_secret", func(c *Config) { c.ClientSecret = "" }, "client_secret is required"},
		{"client_secret_post", func(c *Config) { c.ClientAuth = ClientSecretPost }, ""},
		{"unknown client_auth", func(c *Config) { c.ClientAuth = "client_secret_jwt" }, `client_auth "client_secret_jwt" is not supported`},
		{"unknown format", func(c *Config) { c.Format = "jwe" }, `format "jwe" is not supported`},
		{"json without jwt_claim", func(c *Config) { c.Format = FormatJSON }, ""},
		{"json with jwt_claim", func(c *Config) { c.Format = FormatJSON; c.JWTClaim = "jwt" }, ""},
		{"jwt with jwt_claim", func(c *Config) { c.JWTClaim = "jwt" }, "jwt_claim is only used"},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, "timeout must not be negative"},
		{"negative max body", func(c *Config) { c.MaxBodyBytes = -1 }, "max_body_bytes must not be negative"},
	}
	runConfigCases(t, ok, tests, New, func(t *testing.T, c *Client) {
		if c == nil {
			t.Fatal("nil client")
		}
	}, func(t *testing.T, err error) {
		if strings.Contains(err.Error(), testSecret) || strings.Contains(err.Error(), "u:p@") {
			t.Fatalf("error leaks a credential: %q", err)
		}
		if m := err.Error(); m[0] >= 'A' && m[0] <= 'Z' || strings.HasSuffix(m, ".") {
			t.Fatalf("error style: %q", m)
		}
	})
}

func TestNewDefaults(t *testing.T) {
	c, err := New(Config{Endpoint: "https://as.example.com/i", ClientID: "a b:c", ClientSecret: "p%w:d"})
	if err != nil {
		t.Fatal(err)
	}
	if c.auth.method != ClientSecretBasic || c.format != FormatJWT || c.accept != "application/jwt" {
		t.Fatalf("defaults: auth=%q format=%q accept=%q", c.auth.method, c.format, c.accept)
	}
	if c.iatSkew != 60*time.Second || c.now == nil {
		t.Fatalf("defaults: iatSkew=%s now=%v", c.iatSkew, c.now != nil)
	}
	if c.timeout != 5*time.Second || c.maxBody != 1<<20 {
		t.Fatalf("defaults: timeout=%s maxBody=%d", c.timeout, c.maxBody)
	}
	// RFC 6749 §2.3.1: form-urlencode each part before joining with ':'.
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("a+b%3Ac:p%25w%3Ad"))
	if c.auth.basic != want {
		t.Fatalf("basic auth = %q, want %q", c.auth.basic, want)
	}
	tr, ok := c.httpClient.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("transport is %T", c.httpClient.Transport)
	}
	if tr.TLSClientConfig == nil || tr.TLSClientConfig.MinVersion < 0x0303 || tr.TLSClientConfig.InsecureSkipVerify {
		t.Fatal("default transport must verify TLS 1.2+")
	}
	if tr.Proxy == nil {
		t.Fatal("default transport must keep ProxyFromEnvironment")
	}
	if tr.MaxIdleConnsPerHost < 16 {
		t.Fatalf("MaxIdleConnsPerHost = %d", tr.MaxIdleConnsPerHost)
	}
	if c.httpClient.CheckRedirect == nil {
		t.Fatal("default client must not follow redirects")
	}
	c.CloseIdleConnections()
}

func TestNewDoesNoNetworkIO(t *testing.T) {
	as := newFakeAS(t, reply(200, ""))
	jwks := newJWKSServer(t, nil)
	for range 3 {
		v, err := NewJWKSVerifier(t.Context(), jwks.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		newTestClient(t, as.URL, func(c *Config) { c.Verifier = v })
	}
	if n := as.hits.Load(); n != 0 {
		t.Fatalf("AS hit %d times by New", n)
	}
	if n := jwks.hits.Load(); n != 0 {
		t.Fatalf("JWKS hit %d times by New/NewJWKSVerifier", n)
	}
}
