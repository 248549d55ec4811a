package caddymodule_test

import (
	"net/http"
	"testing"
	"time"
)

// Defect 8: a reload must never turn a valid token into an error. A load
// started under the old config is still waiting for the AS when the same
// config is loaded again; a request under the new config joins that load
// (the cache and its single flight survive the reload), and the load then
// verifies the AS's JWT after the old handler was cleaned up. Both
// requests must get 200.
func TestReloadDuringLoadKeepsValidToken(t *testing.T) {
	as, up := newStubAS(t), newRecorder(t)
	g := startCaddy(t, as, up, defaultSite)
	as.active(t, "reload-token", nil)
	as.mu.Lock()
	as.delay = 500 * time.Millisecond
	as.mu.Unlock()

	first := make(chan int, 1)
	go func() { first <- statusOf(g, "reload-token") }()
	for waited := 0; as.calls.Load() == 0; waited++ {
		if waited > 500 {
			t.Fatal("the first request never reached the AS")
		}
		time.Sleep(10 * time.Millisecond)
	}

	loadCaddy(t, g, as, up, defaultSite) // cleans up the old handler
	second := statusOf(g, "reload-token")
	if got := <-first; got != http.StatusOK {
		t.Errorf("request under the old config: status %d, want 200", got)
	}
	if second != http.StatusOK {
		t.Errorf("request under the new config: status %d, want 200", second)
	}
	if n := as.calls.Load(); n != 1 {
		t.Errorf("AS calls = %d, want 1: the new-config request should have joined the old load", n)
	}
}

// statusOf sends a GET with the bearer token and returns the status, 0 if
// no answer came. A connection that the old server accepted from the
// shared listener just as it stopped is closed unanswered (Caddy's
// listener hand-over, not the gateway's answer), so that is retried.
func statusOf(g *gateway, token string) int {
	for range 3 {
		req, _ := http.NewRequest(http.MethodGet, g.url+"/", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			continue
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	return 0
}
