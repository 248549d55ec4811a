package cache

import (
	"testing"
	"time"
)

// Expired entries are deleted by a sweep, live ones are kept, and the
// counters follow.
func TestSweepDeletesExpiredOnly(t *testing.T) {
	clock := newFakeClock()
	c := newTestCache(t, Config[string]{Now: clock.Now, SweepInterval: -1})
	for i := range 10 {
		ttl := time.Hour
		if i%2 == 0 {
			ttl = time.Minute
		}
		if !c.Set(testKey(i), "v", ttl) {
			t.Fatalf("Set %d refused", i)
		}
	}
	if n := c.sweep(); n != 0 {
		t.Fatalf("sweep before any expiry deleted %d", n)
	}
	clock.Advance(2 * time.Minute)
	if n := c.sweep(); n != 5 {
		t.Fatalf("sweep deleted %d entries, want the 5 expired", n)
	}
	c.rc.Wait()
	if n := c.Len(); n != 5 {
		t.Fatalf("Len = %d after the sweep, want 5", n)
	}
	for i := range 10 {
		_, ok := c.Get(testKey(i))
		if want := i%2 == 1; ok != want {
			t.Errorf("Get(%d) hit = %v, want %v", i, ok, want)
		}
	}
}

// An entry set again with a fresh expiry after the sweep listed it as
// expired (a reload of the same token) must survive the sweep.
func TestSweepSparesAReplacedEntry(t *testing.T) {
	clock := newFakeClock()
	c := newTestCache(t, Config[string]{Now: clock.Now, SweepInterval: -1})
	k := testKey(1)
	c.Set(k, "old", time.Minute)
	clock.Advance(2 * time.Minute)
	c.onSweepListed = func() { c.Set(k, "new", time.Minute) }
	if n := c.sweep(); n != 0 {
		t.Fatalf("sweep deleted %d, want 0", n)
	}
	if v, ok := c.Get(k); !ok || v != "new" {
		t.Fatalf("Get = %q, %v; want new", v, ok)
	}
}

// The sweeper goroutine runs on its own and stops with Close.
func TestSweeperRunsAndStops(t *testing.T) {
	c := newTestCache(t, Config[string]{SweepInterval: 5 * time.Millisecond})
	c.Set(testKey(1), "v", 10*time.Millisecond)
	deadline := time.Now().Add(10 * time.Second)
	for c.Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the expired entry was never swept")
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.Close()
	select {
	case <-c.swept:
	case <-time.After(10 * time.Second):
		t.Fatal("the sweeper did not stop after Close")
	}
}
