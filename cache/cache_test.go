package cache

import (
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestNewRequiresMaxBytes(t *testing.T) {
	for _, mb := range []int64{0, -1} {
		if c, err := New(Config[string]{MaxBytes: mb}); err == nil {
			c.Close()
			t.Errorf("New(MaxBytes=%d) succeeded, want error", mb)
		}
	}
}

func TestSetGet(t *testing.T) {
	clock := newFakeClock()
	c := newTestCache(t, Config[string]{Now: clock.Now})
	k := testKey(1)

	if _, ok := c.Get(k); ok {
		t.Fatal("Get on empty cache hit")
	}
	if !c.Set(k, "Bearer eyJ.a.b", time.Minute) {
		t.Fatal("Set returned false on an empty cache")
	}
	// Set waited for admission: the very next Get must hit.
	if v, ok := c.Get(k); !ok || v != "Bearer eyJ.a.b" {
		t.Fatalf("Get = %q, %v; want the stored value", v, ok)
	}
	if _, ok := c.Get(testKey(2)); ok {
		t.Fatal("Get of another key hit")
	}
	if n := c.Len(); n != 1 {
		t.Fatalf("Len = %d, want 1", n)
	}
}

func TestSetVisibleFromOtherGoroutines(t *testing.T) {
	c := newTestCache(t, Config[int]{})
	for i := range 200 {
		k := testKey(i)
		if !c.Set(k, i, time.Minute) {
			t.Fatalf("Set %d refused", i)
		}
		got := make(chan bool)
		go func() { v, ok := c.Get(k); got <- ok && v == i }()
		if !<-got {
			t.Fatalf("Get from another goroutine right after Set(%d) missed", i)
		}
	}
}

func TestGetNeverReturnsExpired(t *testing.T) {
	tests := []struct {
		name    string
		ttl     time.Duration
		advance time.Duration
		wantHit bool
	}{
		{"fresh", 10 * time.Second, 0, true},
		{"just before expiry", 10 * time.Second, 10*time.Second - time.Nanosecond, true},
		{"at expiry", 10 * time.Second, 10 * time.Second, false},
		{"past expiry", 10 * time.Second, 11 * time.Second, false},
		{"long past", time.Second, time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			c := newTestCache(t, Config[string]{Now: clock.Now})
			k := testKey(1)
			if !c.Set(k, "v", tt.ttl) {
				t.Fatal("Set refused")
			}
			clock.Advance(tt.advance)
			if _, ok := c.Get(k); ok != tt.wantHit {
				t.Fatalf("after %v with ttl %v: hit = %v, want %v", tt.advance, tt.ttl, ok, tt.wantHit)
			}
		})
	}
}

func TestSetRefusesNonPositiveTTL(t *testing.T) {
	c := newTestCache(t, Config[string]{})
	for i, ttl := range []time.Duration{0, -time.Second} {
		k := testKey(i)
		if c.Set(k, "v", ttl) {
			t.Errorf("Set(ttl=%v) = true, want false", ttl)
		}
		if _, ok := c.Get(k); ok {
			t.Errorf("Get after Set(ttl=%v) hit", ttl)
		}
	}
	if n := c.Len(); n != 0 {
		t.Fatalf("Len = %d, want 0", n)
	}
}

// Inactive results are cached too (for negative_ttl), and expire by the
// same clock.
func TestNegativeEntries(t *testing.T) {
	type result struct{ Active bool }
	clock := newFakeClock()
	c := newTestCache(t, Config[result]{Now: clock.Now})
	neg, pos := testKey(1), testKey(2)

	if !c.Set(neg, result{Active: false}, 2*time.Second) {
		t.Fatal("Set negative refused")
	}
	if !c.Set(pos, result{Active: true}, time.Minute) {
		t.Fatal("Set positive refused")
	}
	clock.Advance(time.Second)
	if v, ok := c.Get(neg); !ok || v.Active {
		t.Fatalf("negative entry at +1s: %+v, %v; want inactive hit", v, ok)
	}
	clock.Advance(time.Second)
	if _, ok := c.Get(neg); ok {
		t.Fatal("negative entry served at its expiry")
	}
	if v, ok := c.Get(pos); !ok || !v.Active {
		t.Fatalf("positive entry at +2s: %+v, %v; want active hit", v, ok)
	}
}

func TestSetReplacesAndDel(t *testing.T) {
	clock := newFakeClock()
	c := newTestCache(t, Config[string]{Now: clock.Now, Cost: func(s string) int64 { return int64(len(s)) }})
	k := testKey(1)

	c.Set(k, "old", time.Second)
	clock.Advance(2 * time.Second) // old entry expired by our clock, still in ristretto
	if !c.Set(k, "newer", time.Minute) {
		t.Fatal("re-Set refused")
	}
	if v, ok := c.Get(k); !ok || v != "newer" {
		t.Fatalf("Get = %q, %v; want newer", v, ok)
	}
	if n, b := c.Len(), c.Bytes(); n != 1 || b != c.overhead+5 {
		t.Fatalf("Len, Bytes = %d, %d; want 1, %d", n, b, c.overhead+5)
	}

	c.Del(k)
	if _, ok := c.Get(k); ok {
		t.Fatal("Get hit right after Del")
	}
	c.Del(testKey(99)) // absent key: no-op
	c.rc.Wait()
	if n, b := c.Len(), c.Bytes(); n != 0 || b != 0 {
		t.Fatalf("after Del: Len, Bytes = %d, %d; want 0, 0", n, b)
	}
}

// Keys that share ristretto's 64-bit key hash must not share an entry:
// the item's check (the next 64 bits of the key) tells them apart.
func TestKeysSharingTheHashAreTold(t *testing.T) {
	c := newTestCache(t, Config[string]{})
	a := testKey(1)
	b := a
	b[9] ^= 0xff // same first 8 bytes (ristretto's key), different check
	if hash64(a) != hash64(b) {
		t.Fatal("test setup: hashes differ")
	}
	c.Set(a, "a", time.Minute)
	if _, ok := c.Get(b); ok {
		t.Fatal("Get of a colliding key returned another key's value")
	}
	if v, ok := c.Get(a); !ok || v != "a" {
		t.Fatalf("Get(a) = %q, %v", v, ok)
	}
}

func TestSetRefusesEntryLargerThanMaxBytes(t *testing.T) {
	c := newTestCache(t, Config[string]{MaxBytes: 4096, Cost: func(s string) int64 { return int64(len(s)) }})
	k := testKey(1)
	if c.Set(k, strings.Repeat("x", 4096), time.Minute) {
		t.Fatal("Set of an entry larger than MaxBytes returned true")
	}
	if _, ok := c.Get(k); ok {
		t.Fatal("oversized entry is resident")
	}
	if !c.Set(k, "small", time.Minute) {
		t.Fatal("small entry refused")
	}
}

// MaxBytes bounds what is really resident: check it by reading every key
// back, independently of the cache's own counters (which must agree).
func TestByteBoundRespected(t *testing.T) {
	const (
		maxBytes = 1 << 20
		n        = 10_000
		valSize  = 1024
	)
	cost := func(s string) int64 { return int64(len(s)) }
	c := newTestCache(t, Config[string]{MaxBytes: maxBytes, Cost: cost})

	val := strings.Repeat("j", valSize)
	stored := 0
	for i := range n {
		if c.Set(testKey(i), val, time.Hour) {
			stored++
		}
		if b := c.Bytes(); b > maxBytes {
			t.Fatalf("after %d sets Bytes = %d > MaxBytes %d", i+1, b, maxBytes)
		}
	}

	var resident, residentBytes int64
	for i := range n {
		if v, ok := c.Get(testKey(i)); ok {
			resident++
			residentBytes += cost(v) + c.overhead
		}
	}
	t.Logf("stored %d/%d, resident %d (%d bytes of %d), per-entry charge %d",
		stored, n, resident, residentBytes, maxBytes, int64(valSize)+c.overhead)
	if residentBytes > maxBytes {
		t.Fatalf("resident entries hold %d bytes > MaxBytes %d", residentBytes, maxBytes)
	}
	if maxEntries := int64(maxBytes / (valSize + c.overhead)); resident > maxEntries {
		t.Fatalf("%d entries resident, at most %d fit", resident, maxEntries)
	}
	if resident >= n/2 {
		t.Fatalf("%d of %d entries resident: nothing was evicted or rejected", resident, n)
	}
	if resident < 100 {
		t.Fatalf("only %d entries resident: the cache barely holds anything", resident)
	}
	if got := int64(c.Len()); got != resident {
		t.Errorf("Len = %d, but %d entries are resident", got, resident)
	}
	if got := c.Bytes(); got != residentBytes {
		t.Errorf("Bytes = %d, but resident entries are charged %d", got, residentBytes)
	}
}

func TestCloseIsIdempotentAndSafe(t *testing.T) {
	c, err := New(Config[int]{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	k := testKey(1)
	c.Set(k, 1, time.Minute)

	// Close concurrently with traffic: nothing may panic or race.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := testKey(g*1_000_000 + i)
				c.Set(k, i, time.Minute)
				c.Get(k)
				if i%3 == 0 {
					c.Del(k)
				}
				c.Len()
			}
		})
	}
	var closers sync.WaitGroup
	for range 3 {
		closers.Go(c.Close)
	}
	closers.Wait()
	close(stop)
	wg.Wait()
	c.Close()

	if _, ok := c.Get(k); ok {
		t.Error("Get hit after Close")
	}
	if c.Set(k, 2, time.Minute) {
		t.Error("Set returned true after Close")
	}
	c.Del(k)
	if n := c.Len(); n != 0 {
		t.Errorf("Len after Close = %d", n)
	}
}

func TestConcurrentUse(t *testing.T) {
	clock := newFakeClock()
	c := newTestCache(t, Config[int]{MaxBytes: 64 << 10, Now: clock.Now})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				k := testKey(i % 300)
				switch (g + i) % 5 {
				case 0:
					c.Set(k, i, time.Duration(1+i%7)*time.Second)
				case 1:
					c.Del(k)
				case 2:
					clock.Advance(time.Millisecond)
				default:
					if v, ok := c.Get(k); ok && v < 0 {
						t.Errorf("impossible value %d", v)
					}
				}
			}
		})
	}
	wg.Wait()
	c.rc.Wait()
	if b := c.Bytes(); b > 64<<10 {
		t.Fatalf("Bytes = %d > MaxBytes", b)
	}
}

func TestGetHitDoesNotAllocate(t *testing.T) {
	c := newTestCache(t, Config[string]{})
	k := testKey(1)
	c.Set(k, "Bearer eyJ.a.b", time.Minute)
	var sink string
	// Ristretto batches access records in 64-entry stripes and allocates
	// a fresh stripe when one is handed over, i.e. < 1 allocation per
	// Get amortised; AllocsPerRun rounds that down to 0.
	if n := testing.AllocsPerRun(1000, func() { sink, _ = c.Get(k) }); n != 0 {
		t.Fatalf("Get hit allocates %v times per call, want 0", n)
	}
	_ = sink
}

// EntryOverhead must not understate what an entry costs the process, or
// MaxBytes would not bound memory. Measure the heap per entry with empty
// values.
func TestEntryOverheadIsRealistic(t *testing.T) {
	if testing.Short() {
		t.Skip("heap measurement")
	}
	const n = 20_000
	c := newTestCache(t, Config[struct{}]{MaxBytes: 1 << 30})
	keys := make([]Key, n)
	for i := range keys {
		keys[i] = testKey(i)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, k := range keys {
		if !c.Set(k, struct{}{}, time.Hour) {
			t.Fatal("Set refused in an almost empty cache")
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perEntry := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	t.Logf("heap per entry: %d bytes; charged overhead: %d", perEntry, c.overhead)
	if perEntry > 2*c.overhead {
		t.Fatalf("an entry holds %d bytes of heap, far more than the %d charged", perEntry, c.overhead)
	}
	runtime.KeepAlive(keys)
}

var getSink string

func BenchmarkGetHit(b *testing.B) {
	c := newTestCache(b, Config[string]{})
	k := testKey(1)
	c.Set(k, "Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig", time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		getSink, _ = c.Get(k)
	}
}

func BenchmarkGetHitParallel(b *testing.B) {
	c := newTestCache(b, Config[string]{})
	const n = 1024
	for i := range n {
		c.Set(testKey(i), "Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig", time.Hour)
	}
	keys := make([]Key, n)
	for i := range keys {
		keys[i] = testKey(i)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, ok := c.Get(keys[i%n]); !ok {
				b.Error("miss")
			}
			i++
		}
	})
}
