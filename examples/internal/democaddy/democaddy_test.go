package democaddy

import (
	"strings"
	"testing"
)

func TestBindListeners(t *testing.T) {
	cfg := map[string]any{"apps": map[string]any{"http": map[string]any{"servers": map[string]any{
		"srv0": map[string]any{"listen": []any{":8080", "10.0.0.1:9090"}},
	}}}}
	if err := BindListeners(cfg, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	got := cfg["apps"].(map[string]any)["http"].(map[string]any)["servers"].(map[string]any)["srv0"].(map[string]any)["listen"].([]any)
	if got[0] != "127.0.0.1:8080" || got[1] != "10.0.0.1:9090" {
		t.Fatalf("listen = %v", got)
	}
	if err := BindListeners(map[string]any{}, "127.0.0.1"); err == nil {
		t.Fatal("a config without servers was accepted")
	}
}

func TestParseListen(t *testing.T) {
	for _, c := range []struct{ in, host, port, origin string }{
		{"127.0.0.1:8080", "127.0.0.1", "8080", "http://127.0.0.1:8080"},
		{":9000", "127.0.0.1", "9000", "http://127.0.0.1:9000"},
		{"[::1]:8080", "::1", "8080", "http://[::1]:8080"},
	} {
		host, port, origin, err := ParseListen(c.in)
		if err != nil || host != c.host || port != c.port || origin != c.origin {
			t.Errorf("ParseListen(%q) = %q %q %q %v", c.in, host, port, origin, err)
		}
	}
	for _, bad := range []string{"127.0.0.1", "127.0.0.1:0", "127.0.0.1:", ""} {
		if _, _, _, err := ParseListen(bad); err == nil || !strings.Contains(err.Error(), "-listen") {
			t.Errorf("ParseListen(%q): %v, want an error naming -listen", bad, err)
		}
	}
}
