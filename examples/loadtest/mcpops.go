package main

import (
	"fmt"
	"io"
	"os"
	"time"
)

// runMCPOps measures (h): POSTs of a 1 KiB tools/call with the warm hit
// token through a route with five mcp_operation rules, each round between
// two POSTs of the same body through the plain reverse_proxy route, (a
// POST). The gateway reads, classifies and scope-checks every body, then
// forwards it; the ratio and the CPU per request show what that costs.
func runMCPOps(rep *report, gw gateway, as *stubAS, addrA, addrH, token string, logf func(string, ...any)) error {
	cfg := rep.cfg
	rep.aPost.name, rep.h.name = "(a POST)", "(h)"
	rounds := max(2, cfg.Rounds/4)
	if cfg.Quick {
		rounds = 1
	}
	hot := func(int, int) string { return token }
	post := func(addr string) loadSpec {
		return loadSpec{addr: addr, conc: cfg.Concurrency, duration: cfg.Duration, maxRequests: 1 << 40, token: hot, body: mcpBody}
	}
	// The hit token is warm for the route's identity already ((b) shares
	// it); one request warms this route's connection pools.
	if res, err := (loadSpec{addr: addrH, conc: 1, duration: time.Minute, maxRequests: 1, token: hot, body: mcpBody}).run(); err != nil {
		return err
	} else if res.errors > 0 {
		return fmt.Errorf("(h) warm-up: %s", res.firstErr)
	}
	measure := func(s *scenario, spec loadSpec) (float64, error) {
		before := as.callCount("hit")
		cpuBefore, selfBefore := cpuTime(gw.pid()), cpuTime(os.Getpid())
		res, err := spec.run()
		if err != nil {
			return 0, err
		}
		s.cpu += cpuTime(gw.pid()) - cpuBefore
		s.selfCPU += cpuTime(os.Getpid()) - selfBefore
		s.asCalls += as.callCount("hit") - before
		s.res.add(res)
		return res.rps(), nil
	}
	for r := range rounds {
		a1, err := measure(&rep.aPost, post(addrA))
		if err != nil {
			return err
		}
		h, err := measure(&rep.h, post(addrH))
		if err != nil {
			return err
		}
		a2, err := measure(&rep.aPost, post(addrA))
		if err != nil {
			return err
		}
		rep.h.ratios = append(rep.h.ratios, h/((a1+a2)/2))
		logf("round %d (h) %9.0f req/s against (a POST) %.0f and %.0f", r+1, h, a1, a2)
	}
	return nil
}

// printMCPOps prints (h) beside its baseline.
func (r *report) printMCPOps(w io.Writer) {
	if r.h.res.requests == 0 {
		return
	}
	perReq := func(s *scenario) string {
		if s.res.requests == 0 || s.cpu == 0 {
			return "—"
		}
		return fmt.Sprintf("%.1f µs", float64(s.cpu.Microseconds())/float64(s.res.requests))
	}
	fmt.Fprintf(w, "\n\nper-operation authorization: POSTs of a %d-byte tools/call, one warm token, %d rounds\n", len(mcpBody), len(r.h.ratios))
	fmt.Fprintf(w, "| scenario | req/s | p50 | p99 | ratio to (a POST) | gateway CPU/request | AS calls |\n|---|--:|--:|--:|--:|--:|--:|\n")
	fmt.Fprintf(w, "| (a POST) reverse_proxy | %s | %s | %s | 1.00 | %s | — |\n", fmtInt(int64(r.aPost.res.rps())),
		fmtDur(r.aPost.res.hist.quantile(0.5)), fmtDur(r.aPost.res.hist.quantile(0.99)), perReq(&r.aPost))
	fmt.Fprintf(w, "| (h) phantom_token hits, five mcp_operation rules | %s | %s | %s | %.2f | %s | %s |\n", fmtInt(int64(r.h.res.rps())),
		fmtDur(r.h.res.hist.quantile(0.5)), fmtDur(r.h.res.hist.quantile(0.99)), median(r.h.ratios), perReq(&r.h), fmtInt(r.h.asCalls))
}
