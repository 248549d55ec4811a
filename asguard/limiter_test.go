package asguard

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitFor polls cond: the tests wait for a goroutine to park in Acquire.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLimiterRefusesAtOnceWithoutQueue(t *testing.T) {
	l := NewLimiter(2, 0, time.Minute)
	ctx := context.Background()
	for i := range 2 {
		if err := l.Acquire(ctx); err != nil {
			t.Fatalf("Acquire %d: %v", i, err)
		}
	}
	start := time.Now()
	if err := l.Acquire(ctx); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("third Acquire = %v, want ErrOverloaded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("refusal took %v, want at once", d)
	}
	l.Release()
	if err := l.Acquire(ctx); err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	if n := l.InUse(); n != 2 {
		t.Errorf("InUse = %d, want 2", n)
	}
}

func TestLimiterWaiterGetsFreedSlot(t *testing.T) {
	l := NewLimiter(1, 1, time.Minute)
	ctx := context.Background()
	if err := l.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() { got <- l.Acquire(ctx) }()
	waitFor(t, "the waiter to queue", func() bool { return l.Waiting() == 1 })

	// The queue is full: a third caller is refused at once.
	if err := l.Acquire(ctx); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("Acquire with a full queue = %v, want ErrOverloaded", err)
	}
	l.Release()
	if err := <-got; err != nil {
		t.Fatalf("waiter: %v, want the freed slot", err)
	}
	if l.InUse() != 1 || l.Waiting() != 0 {
		t.Errorf("InUse %d, Waiting %d; want 1, 0", l.InUse(), l.Waiting())
	}
}

func TestLimiterWaitIsBounded(t *testing.T) {
	l := NewLimiter(1, 4, 20*time.Millisecond)
	ctx := context.Background()
	if err := l.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Acquire(ctx); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("Acquire = %v, want ErrOverloaded after the wait", err)
	}
	if n := l.Waiting(); n != 0 {
		t.Errorf("Waiting = %d after the wait ran out, want 0", n)
	}
}

func TestLimiterWaitEndsWithContext(t *testing.T) {
	l := NewLimiter(1, 1, time.Minute)
	if err := l.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() { got <- l.Acquire(ctx) }()
	waitFor(t, "the waiter to queue", func() bool { return l.Waiting() == 1 })
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire = %v, want context.Canceled", err)
	}
	if n := l.InUse(); n != 1 {
		t.Errorf("InUse = %d, want 1: the cancelled waiter must not hold a slot", n)
	}
}

func TestLimiterReleaseWithoutAcquirePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Release without Acquire did not panic")
		}
	}()
	NewLimiter(1, 0, 0).Release()
}

// Under concurrent use (run with -race) no more than n callers ever hold
// a slot at once.
func TestLimiterConcurrent(t *testing.T) {
	const n = 3
	l := NewLimiter(n, 2, time.Millisecond)
	var holders, maxHolders, admitted, refused atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 500 {
				if err := l.Acquire(context.Background()); err != nil {
					refused.Add(1)
					continue
				}
				admitted.Add(1)
				h := holders.Add(1)
				for {
					m := maxHolders.Load()
					if h <= m || maxHolders.CompareAndSwap(m, h) {
						break
					}
				}
				holders.Add(-1)
				l.Release()
			}
		}()
	}
	wg.Wait()
	if m := maxHolders.Load(); m > n {
		t.Errorf("%d holders at once, want at most %d", m, n)
	}
	if admitted.Load() == 0 {
		t.Error("nobody was admitted")
	}
	if l.InUse() != 0 || l.Waiting() != 0 {
		t.Errorf("InUse %d, Waiting %d after all left; want 0, 0", l.InUse(), l.Waiting())
	}
	t.Logf("admitted %d, refused %d", admitted.Load(), refused.Load())
}
