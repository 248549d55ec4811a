package redisstore

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phantomgate/caddy-phantom-token/cache/redisstore/redistest"
)

// TestFirstSeenOncePerFleet: of two nodes racing on the same id, exactly
// one sees it first; the record expires after its ttl; Redis holds no id;
// with Redis down the answer is an error (the caller fails closed).
func TestFirstSeenOncePerFleet(t *testing.T) {
	topologies(t, func(t *testing.T, addrs []string) {
		ctx := context.Background()
		a := newStore(t, Config{Addresses: addrs, KeyPrefix: "pt:"})
		b := newStore(t, Config{Addresses: addrs, KeyPrefix: "pt:"})
		var firsts atomic.Int32
		var wg sync.WaitGroup
		for i := range 20 {
			s := a
			if i%2 == 1 {
				s = b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				first, err := s.FirstSeen(ctx, "thumb\x00jti-raced", time.Minute)
				if err != nil {
					t.Error(err)
				}
				if first {
					firsts.Add(1)
				}
			}()
		}
		wg.Wait()
		if firsts.Load() != 1 {
			t.Fatalf("%d nodes saw the id first, want 1", firsts.Load())
		}
		if first, err := a.FirstSeen(ctx, "thumb\x00jti-short", 150*time.Millisecond); !first || err != nil {
			t.Fatalf("a new id: %v %v", first, err)
		}
		time.Sleep(300 * time.Millisecond)
		if first, err := b.FirstSeen(ctx, "thumb\x00jti-short", time.Minute); !first || err != nil {
			t.Errorf("after its ttl the id is new again: %v %v", first, err)
		}
		if _, err := a.FirstSeen(ctx, "x", 0); err == nil {
			t.Error("a zero ttl was accepted")
		}
	})
}

func TestFirstSeenStoresNoID(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, Config{Addresses: []string{srv.Addr}, KeyPrefix: "pt:"})
	if _, err := s.FirstSeen(context.Background(), "jti-visible-in-dump", time.Minute); err != nil {
		t.Fatal(err)
	}
	keys, err := srv.Do("KEYS", "*")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(keys, "pt:r:") || strings.Contains(keys, "jti-visible") {
		t.Errorf("Redis keys %q: want one pt:r: key without the id", keys)
	}
	srv.Kill()
	if _, err := s.FirstSeen(context.Background(), "jti-2", time.Minute); err == nil {
		t.Error("with Redis down FirstSeen answered; it must return an error")
	}
}
