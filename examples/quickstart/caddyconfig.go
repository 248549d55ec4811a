package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// caddyfileName is the operator-ready config at the repository root.
const caddyfileName = "Caddyfile.example"

// locateCaddyfile returns path when it is set, else the first
// Caddyfile.example found in the parent directory, the working directory, or
// the repository root as seen from this source file.
func locateCaddyfile(path string) (string, error) {
	if path != "" {
		if _, err := os.Stat(path); err != nil {
			return "", fmt.Errorf("read -config: %w", err)
		}
		return path, nil
	}
	candidates := []string{filepath.Join("..", caddyfileName), caddyfileName}
	if _, file, _, ok := runtime.Caller(0); ok {
		candidates = append(candidates, filepath.Join(filepath.Dir(file), "..", "..", caddyfileName))
	}
	for _, c := range candidates {
		if st, err := os.Stat(c); err == nil && st.Mode().IsRegular() {
			if abs, err := filepath.Abs(c); err == nil {
				return abs, nil
			}
			return c, nil
		}
	}
	return "", fmt.Errorf("find %s: tried %s; pass -config", caddyfileName, strings.Join(candidates, ", "))
}

// adaptCaddyfile adapts the Caddyfile at path to Caddy's JSON config and
// patches it for an in-process demo: the admin endpoint is off (so it never
// collides with another Caddy) and does not persist the config, listeners
// without a host are bound to bindHost, and, unless verbose, Caddy logs only
// errors.
func adaptCaddyfile(path, bindHost string, verbose bool) ([]byte, error) {
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
	if err := bindListeners(cfg, bindHost); err != nil {
		return nil, fmt.Errorf("adapt %s: %w", path, err)
	}
	out, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("adapt %s: encode JSON: %w", path, err)
	}
	return out, nil
}

// bindListeners rewrites every HTTP server listen address that has no host
// (":8080") to bindHost (e.g. "127.0.0.1:8080"). A Caddyfile site address
// selects requests by host but binds every interface.
func bindListeners(cfg map[string]any, bindHost string) error {
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
