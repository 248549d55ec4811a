package dpop

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestMemoryReplayCache(t *testing.T) {
	now := testNow
	c := newMemoryReplayCache(3, func() time.Time { return now })
	ctx := context.Background()
	seen := func(key string, until time.Time) bool {
		t.Helper()
		s, err := c.Seen(ctx, key, until)
		if err != nil {
			t.Fatalf("Seen(%s): %v", key, err)
		}
		return s
	}
	if seen("a", now.Add(10*time.Second)) {
		t.Error("a new key was reported seen")
	}
	if !seen("a", now.Add(10*time.Second)) {
		t.Error("a recorded key was not reported seen")
	}
	seen("b", now.Add(20*time.Second))
	seen("c", now.Add(30*time.Second))

	// Full of live entries: fail closed, and forget nothing.
	if _, err := c.Seen(ctx, "d", now.Add(time.Minute)); !errors.Is(err, errReplayCacheFull) {
		t.Fatalf("full cache: err = %v, want errReplayCacheFull", err)
	}
	if !seen("a", now.Add(10*time.Second)) {
		t.Error("a live key was forgotten when the cache was full")
	}

	// At its until, an entry has expired: its key is new again, and its
	// room is free.
	now = now.Add(10 * time.Second)
	if seen("a", now.Add(15*time.Second)) {
		t.Error("an expired key was reported seen")
	}
	if _, err := c.Seen(ctx, "d", now.Add(time.Minute)); !errors.Is(err, errReplayCacheFull) {
		t.Errorf("after re-recording a: err = %v, want full", err)
	}
	now = now.Add(10 * time.Second) // b expires
	if seen("d", now.Add(time.Minute)) {
		t.Error("d was reported seen")
	}
	if len(c.until) != 3 || len(c.expiry) != 3 {
		t.Errorf("entries: map %d, heap %d, want 3 and 3", len(c.until), len(c.expiry))
	}
	// Everything expires.
	now = now.Add(time.Hour)
	seen("e", now.Add(time.Second))
	if len(c.until) != 1 || len(c.expiry) != 1 {
		t.Errorf("after expiry: map %d, heap %d, want 1 and 1", len(c.until), len(c.expiry))
	}
}

func TestMemoryReplayCacheDefaultSize(t *testing.T) {
	if c := NewMemoryReplayCache(-1).(*memoryReplayCache); c.max != defaultReplayEntries {
		t.Errorf("max = %d, want %d", c.max, defaultReplayEntries)
	}
}

// TestMemoryReplayCacheConcurrent: of many concurrent Seen calls for one
// key, exactly one reports it new (run with -race).
func TestMemoryReplayCacheConcurrent(t *testing.T) {
	c := NewMemoryReplayCache(1000)
	until := time.Now().Add(time.Minute)
	for k := 0; k < 20; k++ {
		key := strconv.Itoa(k)
		var fresh atomic.Int32
		var wg sync.WaitGroup
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := c.Seen(context.Background(), key, until)
				if err != nil {
					t.Error(err)
				}
				if !s {
					fresh.Add(1)
				}
			}()
		}
		wg.Wait()
		if fresh.Load() != 1 {
			t.Fatalf("key %s: %d callers saw it new, want 1", key, fresh.Load())
		}
	}
}

func TestReplayKey(t *testing.T) {
	a := replayKey("thumb", "jti")
	if len(a) != 64 {
		t.Errorf("key %q: want 64 hex characters", a)
	}
	// The separator keeps (thumbprint, jti) pairs apart.
	if a == replayKey("thum", "bjti") || a == replayKey("other", "jti") || a != replayKey("thumb", "jti") {
		t.Error("replay keys collide or are not deterministic")
	}
}
