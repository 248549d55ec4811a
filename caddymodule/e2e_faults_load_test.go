package caddymodule_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// requestIDHeader ties a request the upstream receives to the client
// request it came from, so the guard knows which opaque token it carried
// without the opaque token ever travelling upstream.
const requestIDHeader = "X-Fault-Request"

// guard is an upstream that checks every request it receives: it must
// carry, as its only Authorization, a JWT the AS gave as a valid answer
// for the opaque token of the client request. Anything else was forwarded
// without a valid decision and is a violation.
type guard struct {
	srv        *httptest.Server
	conns      connCounter
	as         *faultAS
	tokens     sync.Map // request id -> opaque token
	forwarded  atomic.Int64
	mu         sync.Mutex
	violations []string
}

func newGuard(t *testing.T, as *faultAS) *guard {
	t.Helper()
	gd := &guard{as: as}
	gd.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gd.forwarded.Add(1)
		if v := gd.check(r); v != "" {
			gd.mu.Lock()
			gd.violations = append(gd.violations, v)
			gd.mu.Unlock()
		}
		_, _ = io.WriteString(w, "upstream")
	}))
	gd.srv.Config.ConnState = gd.conns.track
	gd.srv.Start()
	t.Cleanup(gd.srv.Close)
	return gd
}

func (gd *guard) check(r *http.Request) string {
	id := r.Header.Get(requestIDHeader)
	v, ok := gd.tokens.Load(id)
	if !ok {
		return fmt.Sprintf("request %q: not sent by the load driver", id)
	}
	token := v.(string)
	auth := r.Header.Values("Authorization")
	if len(auth) != 1 || !strings.HasPrefix(auth[0], "Bearer ") {
		return fmt.Sprintf("request %s (%s): Authorization %d values, not one Bearer", id, token, len(auth))
	}
	jwt := strings.TrimPrefix(auth[0], "Bearer ")
	switch {
	case jwt == token:
		return fmt.Sprintf("request %s (%s): the opaque token reached the upstream", id, token)
	case !gd.as.validFor(token, jwt):
		return fmt.Sprintf("request %s (%s): forwarded a JWT the AS never gave as a valid answer for this token", id, token)
	}
	return ""
}

func (gd *guard) assertClean(t *testing.T) {
	t.Helper()
	gd.mu.Lock()
	defer gd.mu.Unlock()
	for i, v := range gd.violations {
		if i == 10 {
			t.Errorf("… and %d more violations", len(gd.violations)-i)
			break
		}
		t.Errorf("upstream violation: %s", v)
	}
}

// connCounter counts a server's open connections, to tell whose
// connections are left behind.
type connCounter struct{ open atomic.Int64 }

func (c *connCounter) track(_ net.Conn, state http.ConnState) {
	switch state {
	case http.StateNew:
		c.open.Add(1)
	case http.StateClosed, http.StateHijacked:
		c.open.Add(-1)
	}
}

// outcome is one request of the load.
type outcome struct {
	token      string
	warm       bool
	status     int // 0 when the request itself failed
	err        error
	start, end time.Time
}

// load is a bounded load: workers goroutines each send at most perWorker
// requests, one every pace, alternating the warm (already cached) token
// and a fresh token never sent before, until duration has passed.
type load struct {
	workers   int
	perWorker int
	pace      time.Duration
	duration  time.Duration
	warm      string // "" for no warm token
	fresh     func(worker, i int) string
}

var requestSeq atomic.Int64

// newLoadClient is the load's own HTTP client, so its idle connections
// can be closed before goroutines are counted.
func newLoadClient() *http.Client {
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true},
	}
}

// send makes one request through the gateway with token.
func send(client *http.Client, gd *guard, url, token string) outcome {
	id := strconv.FormatInt(requestSeq.Add(1), 10)
	gd.tokens.Store(id, token)
	noteSecret(token)
	o := outcome{token: token, start: time.Now()}
	req, _ := http.NewRequest(http.MethodGet, url+"/mcp", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set(requestIDHeader, id)
	resp, err := client.Do(req)
	if err != nil {
		o.err, o.end = err, time.Now()
		return o
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	o.status, o.end = resp.StatusCode, time.Now()
	return o
}

// run drives the load and returns every outcome.
func (l load) run(client *http.Client, gd *guard, url string) []outcome {
	deadline := time.Now().Add(l.duration)
	var mu sync.Mutex
	var all []outcome
	var wg sync.WaitGroup
	for w := range l.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []outcome
			for i := 0; i < l.perWorker && time.Now().Before(deadline); i++ {
				token := l.fresh(w, i)
				warm := l.warm != "" && i%2 == 0
				if warm {
					token = l.warm
				}
				o := send(client, gd, url, token)
				o.warm = warm
				mine = append(mine, o)
				time.Sleep(l.pace)
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return all
}

// assertGoroutinesSettle waits for the goroutine count to come back to
// within slack of before, and fails with the live stacks if it does not.
// Runtime and test-framework goroutines come and go, hence the slack and
// the settle loop.
func assertGoroutinesSettle(t *testing.T, before, slack int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	n := runtime.NumGoroutine()
	for n > before+slack && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	if n > before+slack {
		var b strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
		t.Errorf("goroutines: %d before, %d after (slack %d): leaked goroutines\n%s", before, n, slack, b.String())
	}
}
