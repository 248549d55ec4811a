package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// gateway is a running Caddy: a separate process of the custom binary
// (honest: it has its own heap and RSS), or, for the smoke test, Caddy
// loaded in this process.
type gateway interface {
	pid() int
	stop() error
}

// buildCaddy builds the custom Caddy binary (examples/caddy: Caddy's
// standard modules plus phantom_token) into dir.
func buildCaddy(dir string) (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("locating the examples module: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if filepath.Base(gomod) != "go.mod" || !strings.HasSuffix(filepath.Dir(gomod), "examples") {
		return "", fmt.Errorf("run from inside the examples module (found %q)", gomod)
	}
	bin := filepath.Join(dir, "caddy-phantom")
	cmd := exec.Command("go", "build", "-o", bin, "./caddy")
	cmd.Dir = filepath.Dir(gomod)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building the custom caddy: %v", err)
	}
	return bin, nil
}

// processGateway is `caddy run --config <json>` as a child process.
type processGateway struct {
	cmd     *exec.Cmd
	logPath string
	done    chan error
}

func startProcess(bin, dir, name string, config []byte, probe string, env ...string) (*processGateway, error) {
	cfgPath := filepath.Join(dir, name+".json")
	if err := os.WriteFile(cfgPath, config, 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "run", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Caddy looks for its config and data dirs under HOME/XDG; keep them
	// in the temp dir so a run leaves nothing behind.
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	cmd.Env = append(cmd.Env, env...)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting caddy: %v", err)
	}
	g := &processGateway{cmd: cmd, logPath: logPath, done: make(chan error, 1)}
	go func() { g.done <- cmd.Wait() }()
	if err := waitListening(probe, g.done); err != nil {
		_ = g.stop()
		return nil, fmt.Errorf("caddy did not start: %v\n%s", err, tail(logPath))
	}
	return g, nil
}

func (g *processGateway) pid() int { return g.cmd.Process.Pid }

// stop asks Caddy to exit (SIGINT: a graceful stop) and kills it if it
// has not within 10 seconds.
func (g *processGateway) stop() error {
	_ = g.cmd.Process.Signal(os.Interrupt)
	select {
	case <-g.done:
		return nil
	case <-time.After(10 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.done
		return errors.New("caddy did not stop on SIGINT; killed")
	}
}

// inProcessGateway is Caddy loaded into this process: no second build of
// Caddy, which keeps the smoke test cheap. Its RSS is this whole process.
type inProcessGateway struct{}

func startInProcess(config []byte, probe string) (*inProcessGateway, error) {
	if err := caddy.Load(config, true); err != nil {
		return nil, fmt.Errorf("loading the caddy config: %v", err)
	}
	if err := waitListening(probe, nil); err != nil {
		_ = caddy.Stop()
		return nil, err
	}
	return &inProcessGateway{}, nil
}

func (inProcessGateway) pid() int    { return os.Getpid() }
func (inProcessGateway) stop() error { return caddy.Stop() }

// waitListening polls until addr accepts connections (at most 30 s), or
// the process exits.
func waitListening(addr string, exited <-chan error) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = c.Close()
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("caddy exited: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not listening after 30s", addr)
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// rssBytes reads VmRSS of a process from /proc.
func rssBytes(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// cpuTime returns the user plus system CPU time the process has used so
// far, from /proc/PID/stat (in USER_HZ ticks, 100 per second on Linux:
// over a 2 s round at thousands of requests per second that resolves well
// under a microsecond per request). 0 where /proc is missing.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may contain spaces: the fields
	// counted by proc(5) start after its closing parenthesis.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64) // field 14 of proc(5)
	stime, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	return time.Duration(utime+stime) * (time.Second / 100)
}

// idleTime is the machine's idle CPU time so far, all CPUs, from the
// first line of /proc/stat (in USER_HZ ticks).
func idleTime() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0
	}
	idle, _ := strconv.ParseInt(f[4], 10, 64)
	return time.Duration(idle) * (time.Second / 100)
}

// heapAfterGC asks the gateway to collect garbage and returns its live
// heap (HeapAlloc) from expvar. Caddy's admin endpoint serves both
// /debug/pprof/heap?gc=1 (which runs a GC) and /debug/vars. For an
// in-process gateway the same is done directly.
func heapAfterGC(adminAddr string) (int64, error) {
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get("http://" + adminAddr + "/debug/pprof/heap?gc=1")
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	resp, err = c.Get("http://" + adminAddr + "/debug/vars")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var vars struct {
		MemStats struct{ HeapAlloc int64 } `json:"memstats"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&vars); err != nil {
		return 0, err
	}
	return vars.MemStats.HeapAlloc, nil
}

// route names a phantom_token route of the gateway config.
type route struct {
	listen  string // 127.0.0.1:port
	asRoute string // "" = plain reverse_proxy, else /introspect/<asRoute>
	maxSize int64  // cache max_size in bytes; 0 = default
	// noNegative sets negative_ttl 0: inactive answers are not cached.
	noNegative bool
	// setAuthorization, on a plain reverse_proxy route, replaces the
	// Authorization header sent upstream, as phantom_token does.
	setAuthorization string
	// redis, when set, is the address of the shared cache level.
	redis string
	// mcpRules adds five mcp_operation rules (the matching one last).
	mcpRules bool
}

// mcpRules are (h)'s five per-operation rules; its tools/call matches the
// last, whose scope the stub AS's JWT grants.
var mcpRules = []map[string]any{
	{"method": "tools/call", "name": "delete_*", "scopes": []string{"files:write"}},
	{"method": "tools/call", "name": "get_weather", "scopes": []string{"weather:read"}},
	{"method": "resources/read", "name": "file:///private/*", "scopes": []string{"files:read"}},
	{"method": "prompts/get", "scopes": []string{"prompts:read"}},
	{"method": "tools/call", "name": "search_*", "scopes": []string{"openid"}},
}

// mcpBody is (h)'s tools/call, about 1 KiB.
var mcpBody = []byte(`{"jsonrpc":"2.0","id":17,"method":"tools/call","params":{"name":"search_documents","arguments":{"query":"` +
	strings.Repeat("q", 900) + `","limit":10},"_meta":{"progressToken":"p-17"}}}`)

const (
	resource = "https://mcp.loadtest.example/mcp"
	scope    = "mcp:tools"
)

// gatewayConfig is the Caddy JSON config: one server per route, each
// either a plain reverse_proxy to the upstream (a) or phantom_token
// followed by the same reverse_proxy. No access logs on any of them (the
// default), so (a) and the others differ by the handler alone.
func gatewayConfig(dir, adminAddr, asAddr, upstreamAddr string, routes []route) []byte {
	servers := map[string]any{}
	for i, r := range routes {
		proxy := map[string]any{"handler": "reverse_proxy", "upstreams": []any{map[string]any{"dial": upstreamAddr}}}
		handlers := []any{proxy}
		if r.setAuthorization != "" {
			proxy["headers"] = map[string]any{"request": map[string]any{"set": map[string]any{"Authorization": []string{r.setAuthorization}}}}
		}
		if r.asRoute != "" {
			pt := map[string]any{
				"handler":                "phantom_token",
				"introspection_endpoint": "http://" + asAddr + "/introspect/" + r.asRoute,
				"client_id":              "gateway",
				"client_secret":          "loadtest-secret",
				"introspection_format":   "jwt",
				"as_jwks_uri":            "http://" + asAddr + "/jwks",
				"issuer":                 "http://" + asAddr,
				"resource":               resource,
				"authorization_servers":  []string{"http://" + asAddr},
				"required_scopes":        []string{scope},
			}
			c := map[string]any{}
			if r.maxSize > 0 {
				c["max_size"] = r.maxSize
			}
			if r.noNegative {
				c["negative_ttl"] = 0
			}
			if r.redis != "" {
				c["redis"] = map[string]any{"address": []string{r.redis}, "secret": "loadtest-fleet-secret"}
			}
			if len(c) > 0 {
				pt["cache"] = c
			}
			if r.mcpRules {
				pt["mcp_operations"] = mcpRules
				pt["scope_implies"] = map[string][]string{"mcp:admin": {"files:write", "files:read"}}
			}
			handlers = []any{pt, proxy}
		}
		servers["srv"+strconv.Itoa(i)] = map[string]any{
			"listen":          []string{r.listen},
			"routes":          []any{map[string]any{"handle": handlers}},
			"automatic_https": map[string]any{"disable": true},
		}
	}
	cfg := map[string]any{
		"admin":   map[string]any{"listen": adminAddr, "config": map[string]any{"persist": false}},
		"logging": map[string]any{"logs": map[string]any{"default": map[string]any{"level": "WARN"}}},
		"storage": map[string]any{"module": "file_system", "root": filepath.Join(dir, "storage")},
		"apps":    map[string]any{"http": map[string]any{"servers": servers}},
	}
	b, _ := json.Marshal(cfg)
	return b
}

// freeAddrs reserves n distinct 127.0.0.1 ports (closed again before use;
// on loopback the race with another process taking one is negligible).
func freeAddrs(n int) ([]string, error) {
	var out []string
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	return out, nil
}

// raiseNoFile lifts the soft open-files limit to the hard one: the
// stampede holds 1,000 client connections plus the upstream's. (Go does
// this itself since 1.19; this is for clarity and older toolchains.)
func raiseNoFile() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}
