package caddymodule_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The cache survives a config reload: the AS is not asked again for a
// token it already answered, and metrics keep counting in the new config.
func TestCacheAndMetricsSurviveReload(t *testing.T) {
	as, up := newStubAS(t), newRecorder(t)
	site := defaultSite + "\n\thandle /metrics {\n\t\tmetrics\n\t}\n"
	site = strings.Replace(site, "reverse_proxy {UPSTREAM}", "route /mcp* {\n\t\treverse_proxy {UPSTREAM}\n\t}", 1)
	site = strings.Replace(site, "\tphantom_token {", "\tphantom_token /mcp* {", 1)
	g := startCaddy(t, as, up, site)
	as.active(t, "sticky-token", nil)

	if resp, _ := g.do(t, http.MethodGet, "/mcp", "Authorization", "Bearer sticky-token"); resp.StatusCode != 200 {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	before := requestsMetric(t, g, "hit") + requestsMetric(t, g, "miss")

	// Reload with a change elsewhere in the config.
	loadCaddy(t, g, as, up, site+"\n\theader X-Reloaded yes\n")
	resp, _ := g.do(t, http.MethodGet, "/mcp", "Authorization", "Bearer sticky-token")
	if resp.StatusCode != 200 || resp.Header.Get("X-Reloaded") != "yes" {
		t.Fatalf("after reload: status %d, X-Reloaded %q", resp.StatusCode, resp.Header.Get("X-Reloaded"))
	}
	if n := as.calls.Load(); n != 1 {
		t.Errorf("AS calls = %d, want 1: the cache must survive the reload", n)
	}
	after := requestsMetric(t, g, "hit") + requestsMetric(t, g, "miss")
	if after != before+1 {
		t.Errorf("requests metric went from %v to %v across the reload, want +1", before, after)
	}
	if h := requestsMetric(t, g, "hit"); h < 1 {
		t.Errorf("hit metric = %v, want ≥ 1", h)
	}
}

var metricLine = regexp.MustCompile(`^caddy_phantom_token_requests_total\{result="([a-z_]+)"\} ([0-9.e+]+)$`)

// requestsMetric reads caddy_phantom_token_requests_total{result} from the
// config's own /metrics endpoint; 0 when the series is absent.
func requestsMetric(t *testing.T, g *gateway, result string) float64 {
	t.Helper()
	v, _ := readMetric(t, g, metricLine, result)
	return v
}

// readMetric reads, from the config's own /metrics endpoint, the value of
// the series that line matches (label value, then value) with the given
// label value.
func readMetric(t *testing.T, g *gateway, line *regexp.Regexp, label string) (float64, bool) {
	t.Helper()
	resp, err := http.Get(g.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if m := line.FindStringSubmatch(sc.Text()); m != nil && m[1] == label {
			v, _ := strconv.ParseFloat(m[2], 64)
			return v, true
		}
	}
	return 0, false
}

// Two phantom_token handlers in one config (two routes, two ASes' worth of
// settings) provision without a duplicate-metrics panic and work apart.
func TestTwoHandlersInOneConfig(t *testing.T) {
	as, up := newStubAS(t), newRecorder(t)
	site := `
	handle /a/* {
		phantom_token {
			introspection_endpoint {AS}/introspect
			client_id gateway
			client_secret s3cret
			required_scopes mcp:tools
		}
		reverse_proxy {UPSTREAM}
	}
	handle /b/* {
		phantom_token {
			introspection_endpoint {AS}/introspect
			client_id gateway
			client_secret s3cret
			required_scopes admin
		}
		reverse_proxy {UPSTREAM}
	}
	handle /metrics {
		metrics
	}
`
	g := startCaddy(t, as, up, site)
	as.active(t, "tools-token", nil)
	if resp, _ := g.do(t, http.MethodGet, "/a/x", "Authorization", "Bearer tools-token"); resp.StatusCode != 200 {
		t.Errorf("/a: status = %d, want 200", resp.StatusCode)
	}
	if resp, _ := g.do(t, http.MethodGet, "/b/x", "Authorization", "Bearer tools-token"); resp.StatusCode != 403 {
		t.Errorf("/b: status = %d, want 403", resp.StatusCode)
	}
	if requestsMetric(t, g, "hit")+requestsMetric(t, g, "miss") < 2 {
		t.Error("metrics not exposed through the config's registry")
	}
}

// The access log carries phantom_token_cache=miss then hit, and never the
// token or the JWT.
func TestAccessLogField(t *testing.T) {
	as, up := newStubAS(t), newRecorder(t)
	logFile := filepath.Join(t.TempDir(), "access.log")
	site := defaultSite + "\n\tlog {\n\t\toutput file " + logFile + "\n\t\tformat json\n\t}\n"
	g := startCaddy(t, as, up, site)
	jwt := as.active(t, "logged-token", map[string]any{"sub": "alice"})
	for i := 0; i < 2; i++ {
		if resp, _ := g.do(t, http.MethodGet, "/mcp", "Authorization", "Bearer logged-token"); resp.StatusCode != 200 {
			t.Fatalf("status = %d", resp.StatusCode)
		}
	}
	as.status("revoked-token", http.StatusNoContent)
	for i := 0; i < 2; i++ {
		g.do(t, http.MethodGet, "/mcp", "Authorization", "Bearer revoked-token")
	}
	var fields []string
	var raw string
	deadline := time.Now().Add(5 * time.Second)
	for len(fields) < 4 && time.Now().Before(deadline) {
		data, _ := os.ReadFile(logFile)
		raw = string(data)
		fields = fields[:0]
		for _, line := range strings.Split(strings.TrimSpace(raw), "\n") {
			var entry map[string]any
			if json.Unmarshal([]byte(line), &entry) == nil {
				if v, ok := entry["phantom_token_cache"].(string); ok {
					fields = append(fields, v)
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	want := []string{"miss", "hit", "miss", "negative_hit"}
	if strings.Join(fields, ",") != strings.Join(want, ",") {
		t.Errorf("phantom_token_cache fields = %v, want %v", fields, want)
	}
	for _, secret := range []string{"logged-token", "revoked-token", jwt} {
		if strings.Contains(raw, secret) {
			t.Errorf("the access log contains a token or JWT:\n%s", raw)
		}
	}
}
