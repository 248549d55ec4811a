package caddymodule_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// An AS answering a hostile media type gets a 502 whose body, and every
// log line above DEBUG, holds at most a short quoted prefix of it: the
// part carrying a fake token never appears.
func TestASTextNotLoggedAboveDebug(t *testing.T) {
	as, up := newStubAS(t), newRecorder(t)
	const marker = "leaked-fake-token-eyjhbgcioijub25lin0"
	hostile := "application/x-padding-padding-padding-" + marker
	as.on("hostile-ctype", func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", hostile)
		_, _ = io.WriteString(w, "x.y.z")
	})
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	g := startCaddyLogging(t, as, up, defaultSite, logFile)

	resp, body := g.do(t, http.MethodGet, "/mcp", "Authorization", "Bearer hostile-ctype")
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status = %d, want 502", resp.StatusCode)
	}
	if strings.Contains(body, marker) {
		t.Errorf("the response body carries AS text: %q", body)
	}
	_ = caddy.Stop() // flushes the log file

	f, err := os.Open(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sawError := false
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var entry struct{ Level string }
		if err := json.Unmarshal(sc.Bytes(), &entry); err != nil {
			t.Fatalf("log line is not JSON: %v\n%s", err, sc.Text())
		}
		if entry.Level == "debug" {
			continue
		}
		if strings.Contains(sc.Text(), marker) {
			t.Errorf("a %s log line carries AS text:\n%s", entry.Level, sc.Text())
		}
		if entry.Level == "error" && strings.Contains(sc.Text(), "media type") {
			sawError = true
		}
	}
	if !sawError {
		t.Error("no ERROR line reported the AS failure; the test saw no logs")
	}
}

// startCaddyLogging is startCaddy with every log, DEBUG included, written
// as JSON to logFile.
func startCaddyLogging(t *testing.T, as *stubAS, up *recorder, site, logFile string) *gateway {
	t.Helper()
	g := &gateway{addr: freePort(t)}
	g.url = "http://" + g.addr
	r := strings.NewReplacer("{AS}", as.srv.URL, "{UPSTREAM}", strings.TrimPrefix(up.srv.URL, "http://"), "{LISTEN}", g.addr)
	cfgText := r.Replace("{\n\tadmin off\n\tauto_https off\n\tpersist_config off\n}\nhttp://{LISTEN} {\n" + site + "\n}\n")
	cfgJSON, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cfgText), nil)
	if err != nil {
		t.Fatalf("adapting the Caddyfile: %v", err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["logging"] = map[string]any{"logs": map[string]any{"default": map[string]any{
		"writer":  map[string]any{"output": "file", "filename": logFile},
		"encoder": map[string]any{"format": "json"},
		"level":   "DEBUG",
	}}}
	if cfgJSON, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Load(cfgJSON, true); err != nil {
		t.Fatalf("loading the config: %v", err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	return g
}
