package caddymodule

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/phantomgate/caddy-phantom-token/introspect"
)

func TestUnmarshalCaddyfileRedis(t *testing.T) {
	d := caddyfile.NewTestDispenser(`phantom_token {
		cache {
			max_ttl 5m
			redis {
				address 10.0.0.1:6379 10.0.0.2:6379 10.0.0.3:6379
				username gw
				password {env.REDIS_PASSWORD}
				tls
				tls_ca /etc/redis/ca.pem
				secret {file./run/secrets/fleet}
				key_prefix gw1:
				timeout 80ms
			}
		}
	}`)
	var h Handler
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	want := &RedisConfig{
		Address:  []string{"10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"},
		Username: "gw", Password: "{env.REDIS_PASSWORD}", TLS: true, TLSCA: "/etc/redis/ca.pem",
		Secret: "{file./run/secrets/fleet}", KeyPrefix: "gw1:", Timeout: caddy.Duration(80 * time.Millisecond),
	}
	if h.Cache == nil || !reflect.DeepEqual(h.Cache.Redis, want) {
		t.Fatalf("redis = %+v, want %+v", h.Cache.Redis, want)
	}
}

func TestUnmarshalCaddyfileRedisErrors(t *testing.T) {
	for _, tc := range []struct{ input, wantErr string }{
		{"redis {\naddress\n}", "address: expected <host:port>..."},
		{"redis {\ndb -1\n}", "db: expected a database number"},
		{"redis {\ndb x\n}", "db: expected a database number"},
		{"redis {\ntls yes\n}", "tls: takes no argument"},
		{"redis {\ntimeout 0\n}", "timeout: expected a positive duration"},
		{"redis {\nsecret\n}", "secret"},
		{"redis {\ncolour blue\n}", "redis: unknown subdirective 'colour'"},
		{"redis {\nsecret a\nsecret b\n}", "duplicate subdirective 'secret'"},
		{"redis 10.0.0.1:6379", "redis: expected a block"},
	} {
		d := caddyfile.NewTestDispenser("phantom_token {\n cache {\n" + tc.input + "\n}\n}")
		var h Handler
		if err := h.UnmarshalCaddyfile(d); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: error = %v, want it to contain %q", tc.input, err, tc.wantErr)
		}
	}
}

func TestProvisionRedisErrors(t *testing.T) {
	t.Setenv("PHANTOM_TEST_EMPTY", "")
	for _, tc := range []struct {
		name    string
		redis   RedisConfig
		wantErr string
	}{
		{"no address", RedisConfig{Secret: "s"}, "cache.redis.address: required"},
		{"bad address", RedisConfig{Address: []string{"localhost"}, Secret: "s"}, `cache.redis.address: expected host:port, got "localhost"`},
		{"bad port", RedisConfig{Address: []string{"localhost:99999"}, Secret: "s"}, "cache.redis.address: expected host:port"},
		{"no secret", RedisConfig{Address: []string{"127.0.0.1:6379"}}, "cache.redis.secret: required"},
		{"empty secret placeholder", RedisConfig{Address: []string{"127.0.0.1:6379"}, Secret: "{env.PHANTOM_TEST_EMPTY}"}, "cache.redis.secret: empty after resolving placeholders in \"{env.PHANTOM_TEST_EMPTY}\""},
		{"db on a cluster", RedisConfig{Address: []string{"127.0.0.1:7000", "127.0.0.1:7001"}, Secret: "s", DB: 1}, "cache.redis.db: a Redis Cluster"},
		{"tls_ca without tls", RedisConfig{Address: []string{"127.0.0.1:6379"}, Secret: "s", TLSCA: "/x.pem"}, "cache.redis.tls_ca: only valid with tls"},
		{"unreadable tls_ca", RedisConfig{Address: []string{"127.0.0.1:6379"}, Secret: "s", TLS: true, TLSCA: "/nonexistent/ca.pem"}, "cache.redis.tls_ca:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := validHandler()
			r := tc.redis
			h.Cache = &CacheConfig{Redis: &r}
			err := provision(t, h)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "{env.PHANTOM_TEST_EMPTY}") && !strings.Contains(tc.wantErr, "{env") {
				t.Errorf("error shows the placeholder unexpectedly: %v", err)
			}
		})
	}
}

// A shared entry survives the round trip through Redis's encoding as the
// same decision inputs, rebuilt under the reader's policy.
func TestEntryCodecRoundTrip(t *testing.T) {
	p := newPolicy(policy{requiredScopes: [][]string{{"mcp:tools"}}})
	loaded := time.Unix(1_700_000_000, 123)
	for _, r := range []*introspect.Result{
		{Active: true, Scope: "mcp:tools openid", Audience: []string{"https://mcp/a", "https://mcp/b"}, JWT: "eyJh.eyJi.c2ln",
			Subject: "alice", ClientID: "agent", ExpiresAt: time.Unix(1_700_003_600, 0), NotBefore: time.Unix(1_699_999_000, 0)},
		{Active: true, Scope: "", JWT: "eyJh.eyJi.c2ln", ClientID: "agent"},
		{Active: true, Audience: []string{}, JWT: "j"},
		{Active: true, JWT: "j", ClientID: "agent", JKT: "jkt-1", TokenType: "DPoP", Audience: []string{"https://mcp/a", "https://mcp/b"}},
		{Active: true, JWT: "j", ClientID: "agent", X5TS256: "x5t-1"},
		{Active: true, JWT: "j", ClientID: "agent", TokenType: "DPoP"},
		{Active: false},
	} {
		want := newEntry(r, p, loaded)
		until := loaded.Add(time.Minute)
		got, gotUntil, err := decodeEntry(encodeEntry(&want, until), p)
		if err != nil {
			t.Fatalf("%+v: %v", r, err)
		}
		if !gotUntil.Equal(until) {
			t.Errorf("until = %v, want %v", gotUntil, until)
		}
		if got.active != want.active || got.expiresAt != want.expiresAt || got.notBefore != want.notBefore ||
			got.loadedAt != want.loadedAt || got.block != want.block || got.hasAudience != want.hasAudience ||
			got.checked != want.checked || got.checkedBy != want.checkedBy || !got.fromFleet() || got.bound() != want.bound() {
			t.Errorf("round trip of %+v:\n got %+v\nwant %+v", r, got, want)
		}
		if want.extras != nil {
			g, w := got.extras, want.extras
			if g.userID != w.userID || g.subject != w.subject || g.clientID != w.clientID || !reflect.DeepEqual(g.moreAudience, w.moreAudience) ||
				g.jkt != w.jkt || g.x5t != w.x5t || g.dpopType != w.dpopType {
				t.Errorf("extras of %+v:\n got %+v\nwant %+v", r, g, w)
			}
		}
	}
}

func TestEntryCodecRefusesMalformed(t *testing.T) {
	p := newPolicy(policy{})
	e := newEntry(&introspect.Result{Active: true, JWT: "j", Subject: "s", ClientID: "c"}, p, time.Now())
	good := encodeEntry(&e, time.Now().Add(time.Minute))
	bad := [][]byte{nil, {}, good[:10], good[:len(good)-1], append(append([]byte{}, good...), 0)}
	// Version 1 (before bindings) is refused too: it cannot say whether
	// its token was bound.
	for _, v := range []byte{1, 9} {
		wrongVersion := append([]byte{}, good...)
		wrongVersion[0] = v
		bad = append(bad, wrongVersion)
	}
	for _, b := range bad {
		if _, _, err := decodeEntry(b, p); err == nil {
			t.Errorf("decodeEntry(%q) accepted it", b)
		}
	}
}

func TestReadPurgeRequest(t *testing.T) {
	for _, ok := range []string{`{"token":"t"}`, `{"subject":"alice"}`, `{"client_id":"agent"}`, `{"all":true}`} {
		if _, err := readPurgeRequest(strings.NewReader(ok)); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{``, `{}`, `[]`, `{"token":""}`, `{"all":false}`, `{"token":"t","subject":"s"}`,
		`{"user":"x"}`, `{"token":"t"} {"token":"u"}`, `{"token":1}`} {
		if _, err := readPurgeRequest(strings.NewReader(bad)); err == nil || !strings.HasPrefix(err.Error(), "body: ") {
			t.Errorf("%s: error = %v, want a body error", bad, err)
		}
	}
}
