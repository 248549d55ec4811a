package redisstore

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phantomgate/caddy-phantom-token/cache"
	"github.com/phantomgate/caddy-phantom-token/cache/redisstore/redistest"
)

// topologies runs f against a standalone server and a three-master
// cluster, both real.
func topologies(t *testing.T, f func(t *testing.T, addrs []string)) {
	t.Run("standalone", func(t *testing.T) {
		f(t, []string{redistest.Start(t).Addr})
	})
	t.Run("cluster", func(t *testing.T) {
		f(t, redistest.StartCluster(t).Addrs())
	})
}

func newStore(t *testing.T, cfg Config) *Store {
	t.Helper()
	if cfg.Secret == "" {
		cfg.Secret = "fleet secret"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = time.Second // loopback under -race: generous, never hit
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStoreSharesEntriesBetweenNodes(t *testing.T) {
	topologies(t, func(t *testing.T, addrs []string) {
		ctx := context.Background()
		a := newStore(t, Config{Addresses: addrs})
		b := newStore(t, Config{Addresses: addrs})
		key := cache.NewKeyer("route").Key("tok-1")
		if _, res := b.Get(ctx, key, "tok-1"); res != Miss {
			t.Fatalf("cold Get = %v, want miss", res)
		}
		if err := a.Set(ctx, key, "tok-1", []byte("entry one"), time.Minute, nil); err != nil {
			t.Fatal(err)
		}
		got, res := b.Get(ctx, key, "tok-1")
		if res != Hit || string(got) != "entry one" {
			t.Fatalf("Get on the other node = %q, %v", got, res)
		}
		// Another token that happened to be given this key (it cannot:
		// keys hash the token) would not open the value.
		if _, res := b.Get(ctx, key, "tok-2"); res != Rejected {
			t.Errorf("Get with another token = %v, want rejected", res)
		}
		// A node with another secret neither sees nor overwrites it.
		other := newStore(t, Config{Addresses: addrs, Secret: "another fleet"})
		if _, res := other.Get(ctx, key, "tok-1"); res != Miss {
			t.Errorf("Get under another secret = %v, want miss (other key names)", res)
		}
	})
}

func TestStoreTTLAndNoStore(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, Config{Addresses: []string{srv.Addr}})
	ctx := context.Background()
	key := cache.NewKeyer("route").Key("tok")
	if err := s.Set(ctx, key, "tok", []byte("x"), 1500*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	pttl, err := srv.Do("PTTL", s.entryKey(s.name(key)))
	if err != nil || pttl == "-1" || pttl == "-2" || len(pttl) > 4 {
		t.Fatalf("PTTL = %q, %v; want at most 1500 ms", pttl, err)
	}
	key2 := cache.NewKeyer("route").Key("tok2")
	if err := s.Set(ctx, key2, "tok2", []byte("x"), 0, nil); err != nil {
		t.Fatal(err)
	}
	if _, res := s.Get(ctx, key2, "tok2"); res != Miss {
		t.Errorf("a ttl of 0 stored the entry: %v", res)
	}
}

func TestStoreTamperedValueIsRejected(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, Config{Addresses: []string{srv.Addr}})
	ctx := context.Background()
	key := cache.NewKeyer("route").Key("tok")
	name := s.entryKey(s.name(key))
	// Written by a process with Redis access and no secret.
	if _, err := srv.Do("SET", name, "\x01forged-without-the-secret-forged-without-the-secret"); err != nil {
		t.Fatal(err)
	}
	if _, res := s.Get(ctx, key, "tok"); res != Rejected {
		t.Fatalf("forged value: %v, want rejected", res)
	}
	// A genuine value moved under another key does not open there.
	other := cache.NewKeyer("route").Key("tok-b")
	if err := s.Set(ctx, other, "tok", []byte("entry"), time.Minute, nil); err != nil {
		t.Fatal(err)
	}
	v, _ := srv.Do("GET", s.entryKey(s.name(other)))
	if _, err := srv.Do("SET", name, v); err != nil {
		t.Fatal(err)
	}
	if _, res := s.Get(ctx, key, "tok"); res != Rejected {
		t.Fatalf("value replayed under another key: %v, want rejected", res)
	}
}

func TestStoreLockAndWait(t *testing.T) {
	topologies(t, func(t *testing.T, addrs []string) {
		ctx := context.Background()
		a := newStore(t, Config{Addresses: addrs})
		b := newStore(t, Config{Addresses: addrs})
		key := cache.NewKeyer("route").Key("tok")
		lock, _, res, err := a.TryLock(ctx, key, "tok", 5*time.Second)
		if err != nil || lock == nil || res != Miss {
			t.Fatalf("TryLock = %v, %v, %v", lock, res, err)
		}
		if l2, _, res, err := b.TryLock(ctx, key, "tok", 5*time.Second); l2 != nil || err != nil || res != Miss {
			t.Fatalf("second TryLock = %v, %v, %v; want not taken", l2, res, err)
		}
		done := make(chan []byte)
		start := time.Now()
		go func() {
			v, res := b.Wait(ctx, key, "tok")
			if res != Hit {
				t.Errorf("Wait = %v", res)
			}
			done <- v
		}()
		time.Sleep(100 * time.Millisecond)
		if err := a.Set(ctx, key, "tok", []byte("loaded"), time.Minute, lock); err != nil {
			t.Fatal(err)
		}
		if v := <-done; string(v) != "loaded" {
			t.Fatalf("Wait got %q", v)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Wait took %v", d)
		}
		// The lock was released with the entry, and taking it again
		// returns the entry instead.
		if l3, v, res, err := b.TryLock(ctx, key, "tok", time.Second); l3 != nil || res != Hit || string(v) != "loaded" || err != nil {
			t.Errorf("TryLock after Set = %v, %q, %v, %v; want the entry and no lock", l3, v, res, err)
		}
		if l4, _, _, _ := b.TryLock(ctx, cache.NewKeyer("route").Key("tok-free"), "tok-free", time.Second); l4 == nil {
			t.Error("a free lock was not taken")
		}
	})
}

func TestStoreWaitEndsWhenTheLockGoesWithoutAnEntry(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	a := newStore(t, Config{Addresses: []string{srv.Addr}})
	b := newStore(t, Config{Addresses: []string{srv.Addr}})
	key := cache.NewKeyer("route").Key("tok")
	lock, _, _, _ := a.TryLock(ctx, key, "tok", 5*time.Second)
	if lock == nil {
		t.Fatal("no lock")
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		a.Unlock(ctx, key, lock) // the introspection failed
	}()
	start := time.Now()
	if _, res := b.Wait(ctx, key, "tok"); res != Miss {
		t.Fatalf("Wait = %v, want miss", res)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Wait took %v after the unlock", d)
	}
	// And a waiter gives up at its deadline while the lock is held.
	lock, _, _, _ = a.TryLock(ctx, key, "tok", 5*time.Second)
	wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, res := b.Wait(wctx, key, "tok"); res != Miss {
		t.Fatalf("Wait past its deadline = %v", res)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Wait ignored its deadline: %v", d)
	}
	a.Unlock(ctx, key, lock)
}

func TestStorePurgeReachesOtherNodes(t *testing.T) {
	topologies(t, func(t *testing.T, addrs []string) {
		ctx := context.Background()
		var mu sync.Mutex
		var got []Mark
		b := newStore(t, Config{Addresses: addrs, OnMarks: func(ms []Mark) {
			mu.Lock()
			got = append(got, ms...)
			mu.Unlock()
		}})
		a := newStore(t, Config{Addresses: addrs})
		time.Sleep(200 * time.Millisecond) // b's subscription is up
		key := cache.NewKeyer("route").Key("tok")
		if err := a.Set(ctx, key, "tok", []byte("v"), time.Minute, nil); err != nil {
			t.Fatal(err)
		}
		at := time.Now()
		sub := a.Hash(MarkSubject, "alice")
		if sub != b.Hash(MarkSubject, "alice") || strings.Contains(sub, "alice") {
			t.Fatalf("subject hash %q differs between nodes or shows the subject", sub)
		}
		if err := a.Purge(ctx, []cache.Key{key}, []Mark{KeyMark(key, at), {Kind: MarkSubject, Hash: sub, At: at}}); err != nil {
			t.Fatal(err)
		}
		if _, res := b.Get(ctx, key, "tok"); res != Miss {
			t.Errorf("purged entry still in Redis: %v", res)
		}
		deadline := time.Now().Add(time.Second)
		for {
			mu.Lock()
			n := len(got)
			mu.Unlock()
			if n >= 2 || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		kinds := map[MarkKind]bool{}
		for _, m := range got {
			kinds[m.Kind] = true
			if m.At.UnixMilli() != at.UnixMilli() {
				t.Errorf("mark time %v, want %v", m.At, at)
			}
		}
		if !kinds[MarkKey] || !kinds[MarkSubject] {
			t.Fatalf("within a second the other node got %v", got)
		}
		// A node that starts later learns the recorded marks.
		var late atomic.Int32
		newStore(t, Config{Addresses: addrs, OnMarks: func(ms []Mark) { late.Add(int32(len(ms))) }})
		for deadline := time.Now().Add(2 * time.Second); late.Load() < 2 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		if late.Load() < 2 {
			t.Errorf("a node started after the purge learned %d marks, want 2", late.Load())
		}
	})
}

func TestStoreSurvivesRedisDownAndBack(t *testing.T) {
	srv := redistest.Start(t)
	var mu sync.Mutex
	var health []bool
	s := newStore(t, Config{Addresses: []string{srv.Addr}, Timeout: 100 * time.Millisecond, OnHealth: func(ok bool, _ error) {
		mu.Lock()
		health = append(health, ok)
		mu.Unlock()
	}})
	ctx := context.Background()
	key := cache.NewKeyer("route").Key("tok")
	srv.Kill()
	for range 20 {
		start := time.Now()
		if _, res := s.Get(ctx, key, "tok"); res != Error {
			t.Fatalf("Get with Redis down = %v", res)
		}
		if err := s.Set(ctx, key, "tok", []byte("x"), time.Minute, nil); err == nil {
			t.Fatal("Set with Redis down succeeded")
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("Get with Redis down took %v", d)
		}
	}
	if st := s.BreakerState().String(); st != "open" {
		t.Errorf("breaker %s after 20 failures, want open", st)
	}
	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := s.Set(ctx, key, "tok", []byte("back"), time.Minute, nil); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("store did not reconnect within 10 s of Redis coming back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Entries are read again once the purge marks have been (the next
	// periodic read, within a second).
	for {
		v, res := s.Get(ctx, key, "tok")
		if res == Hit && bytes.Equal(v, []byte("back")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after reconnect Get = %q, %v", v, res)
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(health) != 2 || health[0] || !health[1] {
		t.Errorf("health changes %v, want [false true] (once per change)", health)
	}
}

func TestNewStoreConfigErrors(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Secret: "s"}, "address"},
		{Config{Addresses: []string{"127.0.0.1:1"}}, "secret"},
		{Config{Addresses: []string{"127.0.0.1:1", "127.0.0.1:2"}, Secret: "s", DB: 2}, "db"},
	} {
		if _, err := New(c.cfg); err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v, want an error starting %q", c.cfg, err, c.want)
		}
	}
}
