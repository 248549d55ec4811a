package democaddy

import "testing"

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
