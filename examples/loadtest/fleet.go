package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"
)

// The fleet rows: two gateway processes sharing one Redis.
//
//	(f) 10,000 tokens used on both nodes at once, then load on both nodes
//	    with tokens drawn from them: AS calls must equal 10,000.
//	(g) L2 hits: tokens node 1 introspected, each used once on node 2 (so
//	    in Redis, never in node 2's own cache), against L1 hits of one
//	    token on node 2 measured just before and just after.
//
// They need a gateway binary (two processes) and redis-server on PATH.

// fleetResult is what the fleet rows measured.
type fleetResult struct {
	skipped           string // why the rows were not measured
	f, gL1, gL2       scenario
	fTokens           int
	gL1Before, gL1Aft scenario
}

const fleetTokens = 10_000

func runFleet(rep *report, bin, dir string, as *stubAS, start func(name, admin, probe string, routes []route) (gateway, error),
	logf func(string, ...any)) error {
	cfg := rep.cfg
	fr := &rep.fleet
	if bin == "inprocess" {
		fr.skipped = "needs two gateway processes (not the in-process smoke run)"
		return nil
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		fr.skipped = "redis-server not on PATH"
		return nil
	}
	addrs, err := freeAddrs(5)
	if err != nil {
		return err
	}
	redisAddr, admin1, addr1, admin2, addr2 := addrs[0], addrs[1], addrs[2], addrs[3], addrs[4]
	stopRedis, err := startRedis(dir, redisAddr)
	if err != nil {
		return err
	}
	defer stopRedis()
	n1, err := start("fleet1", admin1, addr1, []route{{listen: addr1, asRoute: "fleet", redis: redisAddr}})
	if err != nil {
		return err
	}
	defer n1.stop()
	n2, err := start("fleet2", admin2, addr2, []route{{listen: addr2, asRoute: "fleet", redis: redisAddr}})
	if err != nil {
		return err
	}
	defer n2.stop()

	// (f): every token on both nodes at once, then a timed load on both.
	fr.f.name, fr.fTokens = "(f)", fleetTokens
	pool := make([]string, fleetTokens)
	for i := range pool {
		pool[i] = fmt.Sprintf("fleet-opaque-token-%06d", i)
	}
	before := as.callCount("fleet")
	errs := make(chan error, 2)
	for _, addr := range []string{addr1, addr2} {
		go func() { errs <- warmTokens(addr, cfg.Concurrency/2, pool) }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			return err
		}
	}
	var seq atomic.Int64
	draw := func(int, int) string { return pool[seq.Add(7919)%fleetTokens] }
	results := make(chan *loadResult, 2)
	cpu0 := cpuTime(n1.pid()) + cpuTime(n2.pid())
	for _, addr := range []string{addr1, addr2} {
		go func() {
			res, err := loadSpec{addr: addr, conc: max(1, cfg.Concurrency/2), duration: cfg.Duration * 5, maxRequests: 1 << 40, token: draw}.run()
			if err != nil {
				errs <- err
				results <- nil
				return
			}
			errs <- nil
			results <- res
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			return err
		}
		fr.f.res.add(<-results)
	}
	fr.f.cpu = cpuTime(n1.pid()) + cpuTime(n2.pid()) - cpu0
	fr.f.asCalls = as.callCount("fleet") - before
	logf("(f) two nodes + Redis: %d AS calls for %d tokens; %.0f req/s", fr.f.asCalls, fleetTokens, fr.f.res.rps())

	// (g): L1 hits of one token, L2 hits, L1 hits again, all on node 2,
	// with one connection per CPU: enough to load the node, few enough
	// that p50 shows a request's latency more than the queue's.
	conc := fleetConc(cfg)
	l2Tokens := 20_000
	if cfg.Quick {
		l2Tokens = 2_000
	}
	fresh := make([]string, l2Tokens)
	for i := range fresh {
		fresh[i] = fmt.Sprintf("fleet-l2-opaque-token-%06d", i)
	}
	if err := warmTokens(addr1, cfg.Concurrency, fresh); err != nil {
		return err
	}
	const hot = "fleet-hot-opaque-token"
	if err := warmTokens(addr2, 1, []string{hot}); err != nil {
		return err
	}
	measure := func(s *scenario, name string, spec loadSpec) error {
		s.name = name
		asBefore := as.callCount("fleet")
		cpuBefore := cpuTime(n2.pid())
		res, err := spec.run()
		if err != nil {
			return err
		}
		s.cpu += cpuTime(n2.pid()) - cpuBefore
		s.asCalls += as.callCount("fleet") - asBefore
		s.res.add(res)
		return nil
	}
	hotSpec := loadSpec{addr: addr2, conc: conc, duration: cfg.Duration * 2, maxRequests: 1 << 40, token: func(int, int) string { return hot }}
	var next atomic.Int64
	l2Spec := loadSpec{addr: addr2, conc: conc, duration: cfg.Duration * 2, maxRequests: int64(l2Tokens),
		token: func(int, int) string { return fresh[(next.Add(1)-1)%int64(l2Tokens)] }}
	if err := measure(&fr.gL1Before, "(g) L1 before", hotSpec); err != nil {
		return err
	}
	if err := measure(&fr.gL2, "(g) L2", l2Spec); err != nil {
		return err
	}
	if err := measure(&fr.gL1Aft, "(g) L1 after", hotSpec); err != nil {
		return err
	}
	fr.gL1.name = "(g) L1"
	fr.gL1.res.add(&fr.gL1Before.res)
	fr.gL1.res.add(&fr.gL1Aft.res)
	fr.gL1.cpu = fr.gL1Before.cpu + fr.gL1Aft.cpu
	logf("(g) node 2: L1 hits p50 %s, L2 hits p50 %s (%d requests, %d AS calls)", fmtDur(fr.gL1.res.hist.quantile(0.5)),
		fmtDur(fr.gL2.res.hist.quantile(0.5)), fr.gL2.res.requests, fr.gL2.asCalls)
	return nil
}

// structural reports the fleet rows' exact expectations.
func (fr *fleetResult) structural() []string {
	if fr.skipped != "" {
		return nil
	}
	var f []string
	if fr.f.asCalls != fleetTokens {
		f = append(f, fmt.Sprintf("(f) made %d AS calls for %d tokens on two nodes, want %d", fr.f.asCalls, fleetTokens, fleetTokens))
	}
	if fr.f.res.errors+fr.gL1.res.errors+fr.gL2.res.errors > 0 {
		f = append(f, "(f)/(g) had failed requests")
	}
	if fr.gL2.asCalls != 0 {
		f = append(f, fmt.Sprintf("(g) L2 hits made %d AS calls, want 0", fr.gL2.asCalls))
	}
	return f
}

func (fr *fleetResult) print(w io.Writer, cfg config) {
	fmt.Fprintf(w, "\n\nfleet: two gateway processes sharing one Redis (loopback)\n")
	if fr.skipped != "" {
		fmt.Fprintf(w, "(f) and (g) skipped: %s\n", fr.skipped)
		return
	}
	perReq := func(s *scenario) string {
		if s.res.requests == 0 {
			return "—"
		}
		return fmt.Sprintf("%.1f µs", float64(s.cpu.Microseconds())/float64(s.res.requests))
	}
	fmt.Fprintf(w, "| scenario | req/s | p50 | p99 | gateway CPU/request | AS calls |\n|---|--:|--:|--:|--:|--:|\n")
	row := func(label string, s *scenario, as string) {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", label, fmtInt(int64(s.res.rps())), fmtDur(s.res.hist.quantile(0.5)),
			fmtDur(s.res.hist.quantile(0.99)), perReq(s), as)
	}
	row(fmt.Sprintf("(f) %s tokens across two nodes (both nodes' CPU)", fmtInt(int64(fr.fTokens))), &fr.f, fmt.Sprintf("%s (tokens %s)", fmtInt(fr.f.asCalls), fmtInt(int64(fr.fTokens))))
	row(fmt.Sprintf("(g) L1 hits on node 2, 1 token, %d connections (before and after L2)", fleetConc(cfg)), &fr.gL1, fmtInt(fr.gL1.asCalls))
	row(fmt.Sprintf("(g) L2 hits on node 2 (tokens node 1 introspected), %d connections", fleetConc(cfg)), &fr.gL2, fmtInt(fr.gL2.asCalls))
	d := fr.gL2.res.hist.quantile(0.5) - fr.gL1.res.hist.quantile(0.5)
	fmt.Fprintf(w, "L2 hit p50 − L1 hit p50: %+.3f ms (target ≤ +0.3 ms); L1 hits before/after: p50 %s / %s\n", float64(d)/1e6,
		fmtDur(fr.gL1Before.res.hist.quantile(0.5)), fmtDur(fr.gL1Aft.res.hist.quantile(0.5)))
}

// fleetConc is (g)'s number of connections.
func fleetConc(cfg config) int { return max(1, min(cfg.Concurrency, runtime.NumCPU())) }

// startRedis runs a redis-server without persistence on addr.
func startRedis(dir, addr string) (stop func(), err error) {
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command("redis-server", "--port", port, "--bind", host, "--save", "", "--appendonly", "no",
		"--dir", dir, "--protected-mode", "no", "--loglevel", "warning")
	logf, err := os.Create(filepath.Join(dir, "redis.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting redis-server: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	stop = func() { _ = cmd.Process.Kill(); <-done }
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_, _ = c.Write([]byte("PING\r\n"))
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "+PONG") {
				return stop, nil
			}
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("redis-server on %s did not answer PING within 10 s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
