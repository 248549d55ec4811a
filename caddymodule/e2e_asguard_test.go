package caddymodule_test

import (
	"fmt"
	"net/http"
	"net/http/httptrace"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phantomgate/caddy-phantom-token/caddymodule"
)

// guardSite is defaultSite with the given settings added to phantom_token,
// the AS timeout at its default (the stub AS may be slow without failing),
// and /metrics served beside the protected route.
func guardSite(settings string) string {
	site := strings.Replace(defaultSite, "\t\ttimeout 1s\n", "\t\ttimeout 5s\n"+settings, 1)
	site = strings.Replace(site, "reverse_proxy {UPSTREAM}", "route /mcp* {\n\t\treverse_proxy {UPSTREAM}\n\t}", 1)
	site = strings.Replace(site, "\tphantom_token {", "\tphantom_token /mcp* {", 1)
	return site + "\n\thandle /metrics {\n\t\tmetrics\n\t}\n"
}

// The scenario: 300 concurrent requests with distinct unknown
// tokens against an AS that takes 1.5 s do not slow 20 sequential
// requests with a cached valid token (each under 0.5 s, the one timed
// assertion, as the issue asks). The AS never sees more calls at once
// than the limit (default 64); every other flood request gets 503 with
// Retry-After while the AS still holds all of its calls, and is never
// sent to the AS.
func TestFloodOfUnknownTokensLeavesCacheHitsFast(t *testing.T) {
	const (
		flood    = 300
		limit    = 64 // the default max_concurrent_introspections
		asDelay  = 1500 * time.Millisecond
		hitBound = 500 * time.Millisecond
	)
	as, up := newStubAS(t), newRecorder(t)
	g := startCaddy(t, as, up, guardSite(""))
	as.active(t, "cached-token", nil)
	if resp, _ := g.do(t, http.MethodGet, "/mcp", "Authorization", "Bearer cached-token"); resp.StatusCode != 200 {
		t.Fatalf("warming the cache: status %d", resp.StatusCode)
	}

	// Each flood token is unknown to the AS (204, inactive). The AS takes
	// 1.5 s, and longer if need be: it holds every call until the test
	// releases it, so that "refused while the AS was busy" is a fact the
	// test checks, not a race against a machine's load.
	var inFlight, peak atomic.Int64
	release := make(chan struct{})
	slow := func(w http.ResponseWriter) {
		n := inFlight.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(asDelay)
		<-release
		inFlight.Add(-1)
		w.WriteHeader(http.StatusNoContent)
	}
	for i := range flood {
		as.on(fmt.Sprintf("unknown-%d", i), slow)
	}
	callsBefore := as.calls.Load()
	overloadedBefore := requestsMetric(t, g, "overloaded") // the counters are process-wide

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: flood}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	type answer struct {
		status     int
		retryAfter string
		took       time.Duration
	}
	answers := make([]answer, flood)
	var refusals atomic.Int64
	allRefused := make(chan struct{})
	var wg sync.WaitGroup
	for i := range flood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, g.url+"/mcp", nil)
			req.Header.Set("Authorization", fmt.Sprintf("Bearer unknown-%d", i))
			// Timed from the request being written, not from the dial:
			// 300 simultaneous connects say nothing about the gateway.
			var wrote time.Time
			req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
				WroteRequest: func(httptrace.WroteRequestInfo) { wrote = time.Now() },
			}))
			resp, err := client.Do(req)
			if err != nil {
				t.Errorf("flood request %d: %v", i, err)
				return
			}
			resp.Body.Close()
			answers[i] = answer{resp.StatusCode, resp.Header.Get("Retry-After"), time.Since(wrote)}
			if resp.StatusCode == http.StatusServiceUnavailable && refusals.Add(1) == flood-limit {
				close(allRefused)
			}
		}()
	}

	// Measure the hits while the AS holds a full set of slow calls.
	deadline := time.Now().Add(20 * time.Second)
	for inFlight.Load() < limit && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := inFlight.Load(); n < limit {
		close(release)
		t.Fatalf("the AS holds %d calls, want the flood to fill all %d slots", n, limit)
	}
	for i := range 20 {
		start := time.Now()
		resp, _ := g.do(t, http.MethodGet, "/mcp", "Authorization", "Bearer cached-token")
		if took := time.Since(start); resp.StatusCode != 200 || took >= hitBound {
			t.Errorf("cached request %d: status %d in %v, want 200 in under %v", i, resp.StatusCode, took, hitBound)
		}
	}
	if n := inFlight.Load(); n != limit {
		t.Errorf("the AS holds %d calls after the cached requests, want all %d: they were measured under load", n, limit)
	}
	// Everything beyond the limit is refused while the AS still holds
	// every slot: refusals never wait for an AS call to finish.
	select {
	case <-allRefused:
	case <-time.After(20 * time.Second):
		t.Errorf("only %d of %d requests beyond the limit were refused while the AS was busy", refusals.Load(), flood-limit)
	}
	close(release)
	wg.Wait()

	var admitted, refused int
	var refusedIn []time.Duration
	for i, a := range answers {
		switch a.status {
		case http.StatusUnauthorized: // reached the AS: inactive
			admitted++
		case http.StatusServiceUnavailable:
			refused++
			refusedIn = append(refusedIn, a.took)
			if a.retryAfter != "1" {
				t.Errorf("flood request %d: 503 with Retry-After %q, want 1", i, a.retryAfter)
			}
		default:
			t.Errorf("flood request %d: status %d, want 401 or 503", i, a.status)
		}
	}
	calls := as.calls.Load() - callsBefore
	slices.Sort(refusedIn)
	if len(refusedIn) > 0 {
		t.Logf("flood: %d reached the AS (peak %d at once); %d refused, median %v, slowest %v", admitted,
			peak.Load(), refused, refusedIn[len(refusedIn)/2], refusedIn[len(refusedIn)-1])
	}
	if p := peak.Load(); p > limit {
		t.Errorf("the AS saw %d calls at once, want at most %d", p, limit)
	}
	if admitted != limit || refused != flood-limit {
		t.Errorf("%d admitted and %d refused, want %d and %d", admitted, refused, limit, flood-limit)
	}
	if calls != int64(admitted) {
		t.Errorf("the AS got %d calls for %d admitted requests: refused requests must not reach it", calls, admitted)
	}
	if got := requestsMetric(t, g, "overloaded") - overloadedBefore; got != float64(refused) {
		t.Errorf("requests_total{result=overloaded} grew by %v, want %d", got, refused)
	}
	if n := up.count(); n != 21 {
		t.Errorf("upstream got %d requests, want 21 (the cached token's only): no flood request may pass", n)
	}
}

var breakersLine = regexp.MustCompile(`^caddy_phantom_token_circuit_breakers\{state="([a-z_]+)"\} ([0-9.e+]+)$`)

// breakers reads caddy_phantom_token_circuit_breakers{state} from the
// config's /metrics endpoint.
func breakers(t *testing.T, g *gateway, state string) float64 {
	t.Helper()
	v, ok := readMetric(t, g, breakersLine, state)
	if !ok {
		t.Fatalf("no circuit_breakers series for state %s", state)
	}
	return v
}

// The breaker: after 3 consecutive AS failures, misses get 503 with
// Retry-After without an AS call, while a cached token keeps answering
// 200; after the cool-off one probe reaches the AS (its failure reopens
// the breaker, its success closes it). The handlers' clock is stepped, so
// nothing sleeps and a slow machine cannot reach the end of a cool-off
// early.
func TestCircuitBreakerFailsFastAndProbes(t *testing.T) {
	advance := caddymodule.UseTestClock(t)
	as, up := newStubAS(t), newRecorder(t)
	g := startCaddy(t, as, up, guardSite("\t\tcircuit_breaker {\n\t\t\tfailures 3\n\t\t\tcool_off 5s\n\t\t}\n"))
	as.active(t, "cached-token", nil)
	cached := func(when string) {
		t.Helper()
		if resp, _ := g.do(t, http.MethodGet, "/mcp", "Authorization", "Bearer cached-token"); resp.StatusCode != 200 {
			t.Fatalf("%s: cached token answered %d, want 200", when, resp.StatusCode)
		}
	}
	cached("warm-up")

	// The AS is down: it answers 503 (without Retry-After) to every token
	// the test sends below unless scripted otherwise.
	n := 0
	miss := func(wantStatus int, wantRetryAfter string, wantASCall bool) {
		t.Helper()
		n++
		token := fmt.Sprintf("token-%d", n)
		if _, ok := asScripted(as, token); !ok {
			as.status(token, http.StatusServiceUnavailable)
		}
		before := as.calls.Load()
		resp, _ := g.do(t, http.MethodGet, "/mcp", "Authorization", "Bearer "+token)
		called := as.calls.Load() != before
		if resp.StatusCode != wantStatus || resp.Header.Get("Retry-After") != wantRetryAfter || called != wantASCall {
			t.Fatalf("%s: status %d, Retry-After %q, AS called %v; want %d, %q, %v", token,
				resp.StatusCode, resp.Header.Get("Retry-After"), called, wantStatus, wantRetryAfter, wantASCall)
		}
	}
	state := func(want string) {
		t.Helper()
		for _, s := range []string{"closed", "open", "half_open"} {
			wantN := 0.0
			if s == want {
				wantN = 1
			}
			if got := breakers(t, g, s); got != wantN {
				t.Errorf("circuit_breakers{state=%q} = %v, want %v", s, got, wantN)
			}
		}
	}
	state("closed")
	openBefore := requestsMetric(t, g, "circuit_open") // the counters are process-wide
	for range 3 {
		miss(503, "5", true) // the AS's own 503: the default Retry-After
	}
	state("open")
	miss(503, "5", false) // fail fast, with the rest of the cool-off
	advance(2 * time.Second)
	miss(503, "3", false) // under 3s left (real time passes too), rounded up
	cached("breaker open")
	if got := requestsMetric(t, g, "circuit_open") - openBefore; got != 2 {
		t.Errorf("requests_total{result=circuit_open} grew by %v, want 2", got)
	}

	// After the cool-off one probe reaches the AS; it fails and reopens.
	advance(3 * time.Second)
	miss(503, "5", true)
	state("open")
	miss(503, "5", false)
	cached("breaker reopened")

	// The AS is back: the next probe succeeds and closes the breaker.
	advance(5 * time.Second)
	as.active(t, fmt.Sprintf("token-%d", n+1), nil)
	miss(200, "", true)
	state("closed")
	as.active(t, fmt.Sprintf("token-%d", n+1), nil)
	miss(200, "", true) // closed: misses reach the AS again
	cached("breaker closed")
}

// asScripted reports whether the test already scripted an answer for token.
func asScripted(as *stubAS, token string) (func(http.ResponseWriter), bool) {
	as.mu.Lock()
	defer as.mu.Unlock()
	a, ok := as.answers[token]
	return a, ok
}
