package fleet

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phantomgate/caddy-phantom-token/cache/redisstore/redistest"
)

// topologies runs f on a standalone Redis and on a three-master cluster.
func topologies(t *testing.T, f func(t *testing.T, addrs []string)) {
	t.Run("standalone", func(t *testing.T) { f(t, []string{redistest.Start(t).Addr}) })
	t.Run("cluster", func(t *testing.T) { f(t, redistest.StartCluster(t).Addrs()) })
}

func expect(t *testing.T, n *node, token string, want int) {
	t.Helper()
	if got := n.get(token); got != want {
		t.Fatalf("%s with %s: status %d, want %d", n.url, token, got, want)
	}
}

func TestFleetSharesIntrospection(t *testing.T) {
	topologies(t, func(t *testing.T, addrs []string) {
		as, up := newStubAS(t), newUpstream(t)
		n1 := startNode(t, as, up, nodeOptions{redisAddrs: addrs})
		n2 := startNode(t, as, up, nodeOptions{redisAddrs: addrs})

		// A token used on node 1, then on node 2: one AS call.
		expect(t, n1, "tok-shared", 200)
		expect(t, n2, "tok-shared", 200)
		expect(t, n2, "tok-shared", 200)
		if c := as.callsFor("tok-shared"); c != 1 {
			t.Fatalf("AS calls for a token used on both nodes = %d, want 1", c)
		}
		if hits := n2.metric(t, "caddy_phantom_token_shared_cache_total", `result="hit"`); hits < 1 {
			t.Errorf("node 2 counted %v shared hits, want at least 1", hits)
		}

		// 200 concurrent requests split across both nodes on one cold
		// token: one AS call (the AS is slow, so they all overlap it).
		as.latency.Store(int64(300 * time.Millisecond))
		var wg sync.WaitGroup
		var failed atomic.Int32
		for i := range 200 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n := n1
				if i%2 == 1 {
					n = n2
				}
				if n.get("tok-stampede") != 200 {
					failed.Add(1)
				}
			}()
		}
		wg.Wait()
		as.latency.Store(0)
		if f := failed.Load(); f != 0 {
			t.Fatalf("%d of 200 concurrent requests failed", f)
		}
		if c := as.callsFor("tok-stampede"); c != 1 {
			t.Fatalf("AS calls for 200 concurrent requests on two nodes = %d, want 1", c)
		}

		// Distinct tokens, each used once on each node at the same time:
		// one AS call per token.
		const tokens = 1000
		before := as.calls.Load()
		work := make(chan int)
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range work {
					tok := "tok-many-" + strconv.Itoa(i)
					var inner sync.WaitGroup
					for _, n := range []*node{n1, n2} {
						inner.Add(1)
						go func() {
							defer inner.Done()
							if n.get(tok) != 200 {
								failed.Add(1)
							}
						}()
					}
					inner.Wait()
				}
			}()
		}
		for i := range tokens {
			work <- i
		}
		close(work)
		wg.Wait()
		if f := failed.Load(); f != 0 {
			t.Fatalf("%d requests failed", f)
		}
		if c := as.calls.Load() - before; c != tokens {
			t.Fatalf("AS calls for %d tokens used on both nodes = %d, want %d", tokens, c, tokens)
		}
	})
}

// waitRefused polls node until the token is refused, and fails the test if
// that takes more than a second from start.
func waitRefused(t *testing.T, n *node, token string, start time.Time) {
	t.Helper()
	for {
		if n.get(token) == 401 {
			return
		}
		if time.Since(start) > time.Second {
			t.Fatalf("%s still accepted %s %v after the purge's answer", n.url, token, time.Since(start))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestFleetPurgeReachesEveryNode(t *testing.T) {
	topologies(t, func(t *testing.T, addrs []string) {
		as, up := newStubAS(t), newUpstream(t)
		n1 := startNode(t, as, up, nodeOptions{redisAddrs: addrs})
		n2 := startNode(t, as, up, nodeOptions{redisAddrs: addrs})
		as.subject["tok-alice-1"], as.subject["tok-alice-2"] = "alice", "alice"
		as.subject["tok-bob"] = "bob"
		as.subject["tok-agent"], as.client["tok-agent"] = "carol", "bad-agent"
		all := []string{"tok-alice-1", "tok-alice-2", "tok-bob", "tok-agent", "tok-single", "tok-other"}
		for _, tok := range all {
			expect(t, n1, tok, 200)
			expect(t, n2, tok, 200) // in node 2's own cache now
		}
		if c := as.calls.Load(); c != int64(len(all)) {
			t.Fatalf("AS calls = %d, want %d", c, len(all))
		}

		for _, c := range []struct {
			body   string
			tokens []string
		}{
			{`{"token":"tok-single"}`, []string{"tok-single"}},
			{`{"subject":"alice"}`, []string{"tok-alice-1", "tok-alice-2"}},
			{`{"client_id":"bad-agent"}`, []string{"tok-agent"}},
		} {
			as.revoke(c.tokens...) // revoked at the AS; node 2 has them cached for 10 minutes
			status, body := n1.purge(t, c.body)
			start := time.Now()
			if status != 200 || !strings.Contains(body, `"fleet":"reached"`) {
				t.Fatalf("purge %s on node 1: %d %s", c.body, status, body)
			}
			for _, tok := range c.tokens {
				expect(t, n1, tok, 401) // at once on the purging node
				waitRefused(t, n2, tok, start)
			}
		}
		// Others' tokens keep working from the caches.
		before := as.calls.Load()
		expect(t, n2, "tok-bob", 200)
		expect(t, n2, "tok-other", 200)
		expect(t, n1, "tok-bob", 200)
		if c := as.calls.Load() - before; c != 0 {
			t.Errorf("tokens nobody purged made %d AS calls", c)
		}

		// A node started after the purges applies them too: it reads
		// the recorded marks (alice's tokens would otherwise come from
		// Redis... they were never deleted there, being purged by subject).
		as.mu.Lock()
		as.revoked = map[string]bool{} // the AS would say active: only the purge refuses them
		as.mu.Unlock()
		n3 := startNode(t, as, up, nodeOptions{redisAddrs: addrs})
		before = as.calls.Load()
		expect(t, n3, "tok-alice-1", 200)
		if c := as.calls.Load() - before; c != 1 {
			t.Fatalf("a node started after the subject purge used the purged shared entry (%d AS calls, want 1)", c)
		}
		expect(t, n3, "tok-bob", 200)
		if c := as.calls.Load() - before; c != 1 {
			t.Fatalf("a node started after the purge did not use bob's shared entry (%d AS calls, want 1)", c)
		}
	})
}

// Redis killed in the middle of a load run, then restarted: no request
// fails, and sharing resumes.
func TestFleetSurvivesRedisRestart(t *testing.T) {
	t.Run("standalone", func(t *testing.T) {
		srv := redistest.Start(t)
		testSurvivesRestart(t, []string{srv.Addr}, srv.Kill, srv.Restart)
	})
	t.Run("cluster", func(t *testing.T) {
		c := redistest.StartCluster(t)
		testSurvivesRestart(t, c.Addrs(), c.Kill, func() { c.Restart(t) })
	})
}

func testSurvivesRestart(t *testing.T, addrs []string, kill, restart func()) {
	as, up := newStubAS(t), newUpstream(t)
	n1 := startNode(t, as, up, nodeOptions{redisAddrs: addrs})
	n2 := startNode(t, as, up, nodeOptions{redisAddrs: addrs})
	for i := range 50 {
		expect(t, n1, "tok-warm-"+strconv.Itoa(i), 200)
	}
	var failed, total atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var seq atomic.Int64
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := n1
				if w%2 == 1 {
					n = n2
				}
				tok := "tok-warm-" + strconv.Itoa(int(seq.Add(1)%50))
				if w%4 == 0 {
					tok = "tok-new-" + strconv.Itoa(int(seq.Add(1)))
				}
				total.Add(1)
				if code := n.get(tok); code != 200 {
					failed.Add(1)
					t.Errorf("%s: %d", tok, code)
				}
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	kill()
	time.Sleep(1500 * time.Millisecond)
	restart()
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	if f := failed.Load(); f != 0 || total.Load() < 100 {
		t.Fatalf("%d of %d requests failed across the Redis restart", f, total.Load())
	}
	// Sharing resumes: once the breaker has let a probe through, a new
	// token used on node 1 and then node 2 costs one AS call.
	deadline := time.Now().Add(15 * time.Second)
	for i := 0; ; i++ {
		tok := "tok-after-" + strconv.Itoa(i)
		expect(t, n1, tok, 200)
		expect(t, n2, tok, 200)
		if as.callsFor(tok) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("sharing did not resume within 15 s of Redis's restart")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Nothing in Redis gives away a token, a JWT, a subject, a client id or a
// scope; a value written without the secret, or tampered with, is never
// used; a node with another secret does not use the fleet's entries.
func TestFleetRedisHoldsNothingUsable(t *testing.T) {
	t.Run("standalone", func(t *testing.T) { testRedisHoldsNothingUsable(t, []*redistest.Server{redistest.Start(t)}) })
	t.Run("cluster", func(t *testing.T) { testRedisHoldsNothingUsable(t, redistest.StartCluster(t).Nodes) })
}

func testRedisHoldsNothingUsable(t *testing.T, servers []*redistest.Server) {
	var addrs []string
	for _, s := range servers {
		addrs = append(addrs, s.Addr)
	}
	as, up := newStubAS(t), newUpstream(t)
	n1 := startNode(t, as, up, nodeOptions{redisAddrs: addrs})
	n2 := startNode(t, as, up, nodeOptions{redisAddrs: addrs})
	as.subject["tok-dump-1"] = "subject-dump-alice"
	as.client["tok-dump-1"] = "client-dump-agent"
	tokens := []string{"tok-dump-1", "tok-dump-2", "tok-dump-3"}
	for _, tok := range tokens {
		expect(t, n1, tok, 200)
	}
	as.revoke("tok-dump-3")
	if status, _ := n1.purge(t, `{"subject":"subject-dump-alice"}`); status != 200 {
		t.Fatalf("purge: %d", status)
	}

	// Every key of every node, with the node that holds it.
	type held struct {
		srv *redistest.Server
		key string
	}
	var keys []held
	for _, srv := range servers {
		list, err := srv.Do("KEYS", "*")
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range strings.Split(list, "\n") {
			if k != "" {
				keys = append(keys, held{srv, k})
			}
		}
	}
	var dump strings.Builder
	entries := 0
	for _, h := range keys {
		srv, k := h.srv, h.key
		if !strings.HasPrefix(k, "phantom_token:") {
			t.Errorf("key %q does not start with the key prefix", k)
		}
		typ, _ := srv.Do("TYPE", k)
		var v string
		switch typ {
		case "string":
			v, _ = srv.Do("GET", k)
			if strings.HasPrefix(k, "phantom_token:e:") {
				entries++
			}
		case "zset":
			v, _ = srv.Do("ZRANGE", k, "0", "-1", "WITHSCORES")
		}
		fmt.Fprintf(&dump, "%s = %q\n", k, v)
	}
	if entries < len(tokens) {
		t.Fatalf("only %d entries in Redis:\n%s", entries, dump.String())
	}
	secrets := append([]string{"subject-dump-alice", "client-dump-agent", "fleet-scope-text", "mcp:tools", "eyJ", "fleet-secret", "user-tok"}, tokens...)
	as.mu.Lock()
	secrets = append(secrets, as.jwts...)
	as.mu.Unlock()
	for _, s := range secrets {
		if strings.Contains(dump.String(), s) {
			t.Errorf("the Redis dump contains %q:\n%s", s, dump.String())
		}
	}

	// Tamper with every entry, as a process with Redis access but
	// without the secret could: node 2 (whose cache is empty) must not
	// use them and asks the AS.
	for _, h := range keys {
		if srv, k := h.srv, h.key; strings.HasPrefix(k, "phantom_token:e:") {
			v, _ := srv.Do("GET", k)
			b := []byte(v)
			b[len(b)/2] ^= 0x55
			if _, err := srv.Do("SET", k, string(b), "KEEPTTL"); err != nil {
				t.Fatal(err)
			}
		}
	}
	before := as.calls.Load()
	expect(t, n2, "tok-dump-2", 200)
	if c := as.calls.Load() - before; c != 1 {
		t.Fatalf("node 2 used a tampered entry (%d AS calls, want 1)", c)
	}
	if r := n2.metric(t, "caddy_phantom_token_shared_cache_total", `result="rejected"`); r < 1 {
		t.Errorf("rejected shared entries counted %v, want at least 1", r)
	}

	// Another secret: its own entries, never the fleet's.
	other := startNode(t, as, up, nodeOptions{redisAddrs: addrs, secret: "another-fleet"})
	expect(t, n1, "tok-dump-4", 200)
	before = as.calls.Load()
	expect(t, other, "tok-dump-4", 200)
	if c := as.calls.Load() - before; c != 1 {
		t.Fatalf("a node with another secret used the fleet's entry (%d AS calls, want 1)", c)
	}
}
