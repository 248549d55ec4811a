// Package democaddy runs Caddy in-process for the examples' demos (the
// quickstart, the example deployment): it adapts a Caddyfile for a demo on
// loopback, and has the small helpers both need.
package democaddy

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// Adapt adapts the Caddyfile at path to Caddy's JSON config and
// patches it for an in-process demo: the admin endpoint is off (so it never
// collides with another Caddy) and does not persist the config, listeners
// without a host are bound to bindHost, and, unless verbose, Caddy logs only
// errors.
func Adapt(path, bindHost string, verbose bool) ([]byte, error) {
	body, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read Caddyfile: %w", err)
	}
	adapter := caddyconfig.GetAdapter("caddyfile")
	if adapter == nil {
		return nil, errors.New("adapt Caddyfile: the caddyfile adapter is not registered")
	}
	raw, _, err := adapter.Adapt(body, map[string]any{"filename": path})
	if err != nil {
		return nil, fmt.Errorf("adapt %s: %w", path, err)
	}

	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("adapt %s: decode JSON: %w", path, err)
	}
	cfg["admin"] = map[string]any{
		"disabled": true,
		"config":   map[string]any{"persist": false},
	}
	if !verbose {
		cfg["logging"] = map[string]any{
			"logs": map[string]any{"default": map[string]any{"level": "ERROR"}},
		}
	}
	if err := BindListeners(cfg, bindHost); err != nil {
		return nil, fmt.Errorf("adapt %s: %w", path, err)
	}
	out, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("adapt %s: encode JSON: %w", path, err)
	}
	return out, nil
}

// BindListeners rewrites every HTTP server listen address that has no host
// (":8080") to bindHost (e.g. "127.0.0.1:8080"). A Caddyfile site address
// selects requests by host but binds every interface.
func BindListeners(cfg map[string]any, bindHost string) error {
	apps, _ := cfg["apps"].(map[string]any)
	httpApp, _ := apps["http"].(map[string]any)
	servers, _ := httpApp["servers"].(map[string]any)
	if len(servers) == 0 {
		return errors.New("the config has no HTTP server")
	}
	for name, v := range servers {
		srv, _ := v.(map[string]any)
		listen, _ := srv["listen"].([]any)
		for i, l := range listen {
			addr, _ := l.(string)
			if h, p, err := net.SplitHostPort(addr); err == nil && h == "" {
				listen[i] = net.JoinHostPort(bindHost, p)
			}
		}
		if len(listen) == 0 {
			return fmt.Errorf("server %s has no listen address", name)
		}
	}
	return nil
}

// RandomSecret returns 32 random bytes, base64url-encoded.
func RandomSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// IsAddrInUse reports whether err is a listen failure on a busy address.
// Caddy does not always wrap the cause, hence the text fallback.
func IsAddrInUse(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use")
}

// ParseListen checks a -listen value: host:port with a fixed port (the
// URLs clients use are built from it); an empty host is 127.0.0.1. It
// returns the host, the port and the origin "http://host:port".
func ParseListen(listen string) (host, port, origin string, err error) {
	host, port, err = net.SplitHostPort(listen)
	if err != nil || port == "" || port == "0" {
		return "", "", "", fmt.Errorf("bad -listen %q: want host:port with a fixed port, e.g. 127.0.0.1:8080", listen)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return host, port, "http://" + net.JoinHostPort(host, port), nil
}
