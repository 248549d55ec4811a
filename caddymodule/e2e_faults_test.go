package caddymodule_test

import (
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// gatewayTimeout is the timeout the fault suite's gateway runs with.
const gatewayTimeout = time.Second

// latencyMargin is what a loaded 2-core CI box with -race may add to a
// request on top of what the gateway itself spends.
const latencyMargin = 1500 * time.Millisecond

// faultCase is one fault the AS injects while the gateway runs under load.
type faultCase struct {
	name   string
	format string // "jwt" or "json"
	tls    bool   // the AS speaks TLS with a certificate nobody trusts
	flap   bool   // the AS goes down and comes back every second
	// inject turns the fault on; heal turns it off again.
	inject, heal func(as *faultAS)
	load         load
	// check returns why a fresh token's outcome is wrong, or "".
	check func(as *faultAS, o outcome) string
	// recoverWithin is how long a token that failed may keep failing
	// after heal; 0 means its very next request must succeed.
	recoverWithin time.Duration
	// noFailure means no fresh token is expected to fail (the fault must
	// not show), so there is nothing to recover.
	noFailure bool
	// settle is how long to wait between warming the cache and injecting
	// the fault.
	settle time.Duration
	// exercised returns why the load did not meet the fault, or "".
	exercised func(as *faultAS) string
}

// freshLoad is the usual load: 3 workers, ≤ 60 requests each, for d.
func freshLoad(prefix string, d time.Duration) load {
	return load{workers: 3, perWorker: 60, pace: 10 * time.Millisecond, duration: d,
		fresh: func(w, i int) string { return fmt.Sprintf("%s-fresh-%d-%d", prefix, w, i) }}
}

// hugeLoad is a lighter load for 10 MiB answers: each one costs the AS
// and the gateway real CPU under -race, which is not what is measured.
func hugeLoad(format string) load {
	l := freshLoad("huge-"+format, time.Second)
	l.workers = 2
	return l
}

// wantStatus accepts exactly the given statuses for fresh tokens.
func wantStatus(codes ...int) func(*faultAS, outcome) string {
	return func(_ *faultAS, o outcome) string {
		for _, c := range codes {
			if o.status == c {
				return ""
			}
		}
		return fmt.Sprintf("status %d, want one of %v", o.status, codes)
	}
}

// within adds a latency bound to a check: a failing AS must not hold a
// request longer than the gateway's timeout.
func within(d time.Duration, check func(*faultAS, outcome) string) func(*faultAS, outcome) string {
	return func(as *faultAS, o outcome) string {
		if msg := check(as, o); msg != "" {
			return msg
		}
		if took := o.end.Sub(o.start); took > d {
			return fmt.Sprintf("status %d after %v, want within %v", o.status, took.Round(time.Millisecond), d)
		}
		return ""
	}
}

func faultCases() []faultCase {
	var cases []faultCase
	cases = append(cases, faultCase{
		name: "AS flapping every second", format: "jwt", flap: true,
		load: freshLoad("flap", 3500*time.Millisecond),
		// 5xx only for requests that overlapped a down period, or the
		// circuit breaker's cool-off right after one (it fails fast for
		// faultCoolOff once the AS has failed faultFailures times).
		check: func(as *faultAS, o outcome) string {
			switch {
			case o.status == http.StatusOK:
				return ""
			case o.status == http.StatusServiceUnavailable && as.downDuring(o.start.Add(-faultCoolOff), o.end, 100*time.Millisecond):
				return ""
			}
			return fmt.Sprintf("status %d while the AS was up", o.status)
		},
	}, faultCase{
		name: "AS slower than timeout", format: "jwt",
		inject: func(as *faultAS) {
			as.mu.Lock()
			as.slowBy = 2*gatewayTimeout + 500*time.Millisecond
			as.mu.Unlock()
			as.set(modeSlow)
		},
		load:  freshLoad("slow", 2500*time.Millisecond),
		check: within(gatewayTimeout+latencyMargin, wantStatus(http.StatusServiceUnavailable)),
	}, faultCase{
		name: "AS resets connections", format: "jwt",
		inject: func(as *faultAS) { as.set(modeReset) },
		load:   freshLoad("reset", time.Second),
		check:  within(gatewayTimeout+latencyMargin, wantStatus(http.StatusServiceUnavailable)),
	})
	for _, format := range []string{"jwt", "json"} {
		cases = append(cases, faultCase{
			name: "AS answers 10 MiB/" + format, format: format,
			inject: func(as *faultAS) { as.set(modeHuge) },
			load:   hugeLoad(format),
			// Refused once past the size cap (502), or, on a slow
			// machine, cut off by the timeout while it streams in (503).
			check: within(gatewayTimeout+latencyMargin, wantStatus(http.StatusBadGateway, http.StatusServiceUnavailable)),
		}, faultCase{
			name: "AS answers garbage/" + format, format: format,
			inject: func(as *faultAS) { as.set(modeGarbage) },
			load:   freshLoad("garbage-"+format, time.Second),
			check:  wantStatus(http.StatusBadGateway),
		}, faultCase{
			name: "AS answers a wrong content type/" + format, format: format,
			inject: func(as *faultAS) { as.set(modeWrongType) },
			load:   freshLoad("ctype-"+format, time.Second),
			check:  wantStatus(http.StatusBadGateway),
		}, faultCase{
			name: "AS truncates its body/" + format, format: format,
			inject: func(as *faultAS) { as.set(modeTruncated) },
			load:   freshLoad("trunc-"+format, time.Second),
			// A body cut short is a transport failure (503) or an
			// unparseable reply (502): either way, no decision.
			check: within(gatewayTimeout+latencyMargin, wantStatus(http.StatusServiceUnavailable, http.StatusBadGateway)),
		}, faultCase{
			name: "AS answers for another audience/" + format, format: format,
			inject: func(as *faultAS) { as.set(modeOtherAudience) },
			load:   freshLoad("aud-"+format, time.Second),
			// A decision, not a failure: the token is not for this
			// resource.
			check:     wantStatus(http.StatusUnauthorized),
			noFailure: true,
		})
	}
	cases = append(cases, faultCase{
		name: "AS answers with another token's JWT", format: "jwt",
		inject:    func(as *faultAS) { as.set(modeOtherToken) },
		load:      freshLoad("other", time.Second),
		check:     wantStatus(http.StatusOK),
		noFailure: true,
	}, faultCase{
		name: "AS TLS certificate untrusted", format: "jwt", tls: true,
		load:  freshLoad("tls", time.Second),
		check: within(gatewayTimeout+latencyMargin, wantStatus(http.StatusServiceUnavailable, http.StatusBadGateway)),
	}, faultCase{
		// Keys already fetched keep verifying while the JWKS hangs; a JWT
		// with a new kid waits for a refresh only within the timeout
		// (defect 2).
		name: "JWKS slow", format: "jwt",
		// A new kid makes the gateway fetch the JWKS at most once per
		// rate-limit interval (10 s), counted from the warm-up's fetch:
		// only after it does the slow JWKS get asked.
		settle:    10500 * time.Millisecond,
		inject:    func(as *faultAS) { as.rotate(); as.setJWKS(4*time.Second, false) },
		heal:      func(as *faultAS) { as.setJWKS(0, false) },
		load:      jwksLoad("jwks-slow"),
		check:     jwksCheck,
		exercised: jwksAsked,
		// Recovery waits for the slow fetch in flight, then for the
		// forced-refresh rate limit.
		recoverWithin: 15 * time.Second,
	}, faultCase{
		name: "JWKS down", format: "json",
		settle:    10500 * time.Millisecond, // as for the slow JWKS
		inject:    func(as *faultAS) { as.rotate(); as.setJWKS(0, true) },
		heal:      func(as *faultAS) { as.setJWKS(0, false) },
		load:      jwksLoad("jwks-down"),
		check:     jwksCheck,
		exercised: jwksAsked,
		// The failed fetch starts a new rate-limit interval (10 s): a new
		// kid is refused without asking the JWKS until it ends.
		recoverWithin: 12 * time.Second,
	})
	return cases
}

// jwksLoad mixes fresh tokens signed with the known key and, one in three,
// with the rotated key the JWKS has not served yet.
func jwksLoad(prefix string) load {
	l := freshLoad(prefix, 2*time.Second)
	l.fresh = func(w, i int) string {
		if i%3 == 1 {
			return fmt.Sprintf("%s%s-%d-%d", rotatedPrefix, prefix, w, i)
		}
		return fmt.Sprintf("%s-known-%d-%d", prefix, w, i)
	}
	return l
}

// jwksAsked checks that the gateway did fetch the faulty JWKS.
func jwksAsked(as *faultAS) string {
	as.mu.Lock()
	defer as.mu.Unlock()
	if as.jwksFaulty == 0 {
		return "the gateway never asked the JWKS while it was failing"
	}
	return ""
}

func jwksCheck(as *faultAS, o outcome) string {
	if strings.HasPrefix(o.token, rotatedPrefix) {
		// 503 when the request waited for the JWKS, 502 when the rate
		// limit refused a new fetch and no known key matches.
		return within(gatewayTimeout+latencyMargin, wantStatus(http.StatusServiceUnavailable, http.StatusBadGateway))(as, o)
	}
	return within(gatewayTimeout+latencyMargin, wantStatus(http.StatusOK))(as, o)
}

// TestFaultInjection runs each AS fault against a live gateway under a
// bounded load and checks what issue 9 asks of every one of them.
func TestFaultInjection(t *testing.T) {
	// The first gateway of the process starts Caddy's process-wide
	// goroutines; run one without faults before counting.
	t.Run("no fault", func(t *testing.T) {
		runFault(t, faultCase{format: "jwt", load: freshLoad("none", 500*time.Millisecond),
			check: wantStatus(http.StatusOK), noFailure: true}, false)
	})
	for _, fc := range faultCases() {
		t.Run(fc.name, func(t *testing.T) { runFault(t, fc, true) })
	}
}

// faultSite is the gateway config of the fault suite for an AS format.
func faultSite(format string) string {
	source := ""
	if format == "json" {
		source = "\t\tintrospection_format json\n\t\tjwt_claim phantom_token\n"
	}
	return `
	phantom_token {
		introspection_endpoint {AS}/introspect
		client_id gateway
		client_secret s3cret
		as_jwks_uri {AS}/jwks
` + source + `		resource ` + resource + `
		authorization_server {AS}
		required_scopes mcp:tools
		cache {
			max_ttl 1m
			negative_ttl 30s
		}
		timeout ` + gatewayTimeout.String() + `
		circuit_breaker {
			failures ` + strconv.Itoa(faultFailures) + `
			cool_off ` + faultCoolOff.String() + `
		}
	}
	reverse_proxy {UPSTREAM}
`
}

// The fault suite's circuit breaker: on, as in production, with a short
// cool-off so that recovery is checked within seconds.
const (
	faultFailures = 5
	faultCoolOff  = time.Second
)

func runFault(t *testing.T, fc faultCase, checkLeaks bool) {
	before := runtime.NumGoroutine()
	as := newFaultAS(t, fc.format)
	gd := newGuard(t, as)
	asURL := as.url
	var stopTLS func()
	if fc.tls {
		srv := tlsAS(t, as)
		asURL, stopTLS = srv.URL, srv.Close
	}
	g := &gateway{addr: freePort(t)}
	g.url = "http://" + g.addr
	loadSite(t, g, asURL, gd.srv.URL, faultSite(fc.format))
	t.Cleanup(func() { _ = caddy.Stop() })
	client := newLoadClient()

	// A token cached before the fault: it must keep answering 200.
	if !fc.tls {
		warm := "warm-" + strings.ReplaceAll(fc.load.fresh(0, 0), "fresh", "token")
		if o := send(client, gd, g.url, warm); o.status != http.StatusOK {
			t.Fatalf("warming the cache: status %d, err %v", o.status, o.err)
		}
		fc.load.warm = warm
		as.mu.Lock()
		for jwt := range as.issued[warm] {
			as.warmJWT = jwt
		}
		as.mu.Unlock()
	}

	time.Sleep(fc.settle)
	stopFlap, flapped := make(chan struct{}), make(chan struct{})
	if fc.flap {
		go flap(t, as, stopFlap, flapped)
	} else {
		close(flapped)
	}
	if fc.inject != nil {
		fc.inject(as)
	}
	outcomes := fc.load.run(client, gd, g.url)
	close(stopFlap)
	<-flapped // the AS is up again
	as.set(modeNormal)
	if fc.heal != nil {
		fc.heal(as)
	}

	var failed []string
	ok200, fresh := 0, 0
	var slowestWarm, slowestFresh time.Duration
	for _, o := range outcomes {
		if o.status == http.StatusOK {
			ok200++
		}
		if took := o.end.Sub(o.start); o.warm {
			slowestWarm = max(slowestWarm, took)
		} else {
			slowestFresh = max(slowestFresh, took)
		}
		switch {
		case o.err != nil:
			t.Errorf("%s: request failed: %v", o.token, o.err)
		case o.warm && o.status != http.StatusOK:
			t.Errorf("cached token answered %d during the fault, want 200", o.status)
		case !o.warm:
			fresh++
			if msg := fc.check(as, o); msg != "" {
				t.Errorf("%s: %s", o.token, msg)
			}
			if o.status >= 500 {
				failed = append(failed, o.token)
			}
		}
	}
	t.Logf("%d requests (%d fresh, %d answered 200, %d fresh failed); slowest: cached %v, fresh %v",
		len(outcomes), fresh, ok200, len(failed), slowestWarm.Round(time.Millisecond), slowestFresh.Round(time.Millisecond))
	if fresh == 0 {
		t.Fatal("the load sent no fresh token")
	}
	if !fc.noFailure && len(failed) == 0 {
		t.Error("no fresh token failed: the fault was not exercised")
	}
	if fc.exercised != nil {
		if msg := fc.exercised(as); msg != "" {
			t.Error(msg)
		}
	}
	gd.assertClean(t)
	// Every 200 was forwarded once, and nothing else was (the warm-up is
	// the one more).
	wantForwarded := int64(ok200)
	if !fc.tls {
		wantForwarded++
	}
	if n := gd.forwarded.Load(); n != wantForwarded {
		t.Errorf("upstream received %d requests, want %d (one per 200)", n, wantForwarded)
	}
	if fc.tls {
		as.mu.Lock()
		n := len(as.calls)
		as.mu.Unlock()
		if n != 0 {
			t.Errorf("the AS behind an untrusted certificate saw %d tokens, want 0", n)
		}
	}

	// No error was cached: after the AS heals, a token that failed is
	// asked about again and succeeds.
	if fc.tls {
		// The gateway cannot heal an untrusted certificate; its failure
		// must not have cached anything either, checked by a second
		// request that fails again rather than answering from a cache.
		if len(failed) > 0 {
			if o := send(client, gd, g.url, failed[0]); o.status < 500 {
				t.Errorf("%s: status %d after the TLS failure, want 5xx again", failed[0], o.status)
			}
		}
	} else {
		for _, token := range failed[:min(3, len(failed))] {
			recovered(t, client, gd, g.url, as, token, fc.recoverWithin)
		}
	}
	gd.assertClean(t)

	_ = caddy.Stop()
	client.CloseIdleConnections()
	as.close()
	gd.srv.Close()
	if stopTLS != nil {
		stopTLS()
	}
	if checkLeaks {
		assertGoroutinesSettle(t, before, 3)
	}
}

// recovered checks that a token which failed during the fault is asked
// about again and answers 200: at once, or within the given time.
//
// An open circuit breaker may refuse it (503 + Retry-After, no AS call)
// for at most its cool-off after the AS healed; anything longer without an
// AS call means an error was cached.
func recovered(t *testing.T, client *http.Client, gd *guard, url string, as *faultAS, token string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	breakerDeadline := time.Now().Add(faultCoolOff + 500*time.Millisecond)
	for {
		calls := as.callsFor(token)
		o := send(client, gd, url, token)
		if as.callsFor(token) == calls {
			if o.status == http.StatusServiceUnavailable && time.Now().Before(breakerDeadline) {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			t.Errorf("%s: the AS was not asked again after it healed: an error was cached (status %d)", token, o.status)
			return
		}
		if o.status == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: status %d after the AS healed, want 200", token, o.status)
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// flap takes the AS down and up every second until stop closes, then
// leaves it up and closes done.
func flap(t *testing.T, as *faultAS, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	as.goDown()
	for {
		select {
		case <-stop:
			if as.isDown() {
				if err := as.up(); err != nil {
					t.Error(err)
				}
			}
			return
		case <-tick.C:
			if !as.isDown() {
				as.goDown()
			} else if err := as.up(); err != nil {
				t.Error(err)
			}
		}
	}
}
