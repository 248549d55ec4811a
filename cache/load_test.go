package cache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// failAfter guards channel receives so a broken implementation fails the
// test instead of hanging it. It is never on the success path's clock.
const failAfter = 10 * time.Second

type loadResult struct {
	v   string
	hit bool
	err error
}

func TestGetOrLoadSingleFlight(t *testing.T) {
	const n = 100
	c := newTestCache(t, Config[string]{})
	k := testKey(1)

	// Barrier: every caller has joined the flight (DoChan returned and it
	// is about to wait) before the load is allowed to finish, so all n
	// are concurrent misses of one cold key.
	var waiting sync.WaitGroup
	waiting.Add(n)
	c.onWait = waiting.Done
	release := make(chan struct{})
	var loads atomic.Int32
	load := func(ctx context.Context) (string, time.Duration, error) {
		loads.Add(1)
		<-release
		return "Bearer jwt", time.Minute, nil
	}

	results := make(chan loadResult, n)
	for range n {
		go func() {
			v, hit, err := c.GetOrLoad(context.Background(), k, load)
			results <- loadResult{v, hit, err}
		}()
	}
	waiting.Wait()
	close(release)
	for range n {
		r := <-results
		if r.err != nil || r.v != "Bearer jwt" || r.hit {
			t.Fatalf("GetOrLoad = %q, hit=%v, err=%v; want the loaded value, miss, no error", r.v, r.hit, r.err)
		}
	}
	if got := loads.Load(); got != 1 {
		t.Fatalf("load called %d times for %d concurrent misses, want 1", got, n)
	}

	c.onWait = nil
	v, hit, err := c.GetOrLoad(context.Background(), k, func(context.Context) (string, time.Duration, error) {
		t.Fatal("load called on a warm key")
		return "", 0, nil
	})
	if err != nil || !hit || v != "Bearer jwt" {
		t.Fatalf("follow-up GetOrLoad = %q, hit=%v, err=%v; want cached hit", v, hit, err)
	}
}

// One client going away must not fail the others nor the load: the waiter
// returns its own ctx.Err() at once, the load (run by the starting caller,
// detached from its cancellation but keeping its values) completes and is
// stored, and the starter, gone too, returns its ctx.Err() when it has.
func TestGetOrLoadWaiterCancellation(t *testing.T) {
	type ctxKey struct{}
	c := newTestCache(t, Config[string]{})
	k := testKey(1)

	var waiting sync.WaitGroup
	waiting.Add(3)
	c.onWait = waiting.Done
	started, release := make(chan struct{}), make(chan struct{})
	var loads atomic.Int32
	var loadCtxErr error
	var loadCtxVal any
	load := func(ctx context.Context) (string, time.Duration, error) {
		loads.Add(1)
		close(started)
		<-release
		loadCtxErr, loadCtxVal = ctx.Err(), ctx.Value(ctxKey{})
		return "Bearer jwt", time.Minute, nil
	}

	leaderCtx, cancelLeader := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "request-scoped"))
	defer cancelLeader()
	waiterCtx, cancelWaiter := context.WithCancel(context.Background())
	defer cancelWaiter()

	call := func(ctx context.Context) <-chan loadResult {
		ch := make(chan loadResult, 1)
		go func() {
			v, hit, err := c.GetOrLoad(ctx, k, load)
			ch <- loadResult{v, hit, err}
		}()
		return ch
	}
	leader := call(leaderCtx)
	<-started // the leader's ctx is the one the load derives from
	waiter := call(waiterCtx)
	patient := call(context.Background())
	waiting.Wait()

	cancelWaiter()
	select {
	case r := <-waiter:
		if !errors.Is(r.err, context.Canceled) {
			t.Fatalf("cancelled waiter got %q, %v; want context.Canceled", r.v, r.err)
		}
	case <-time.After(failAfter):
		t.Fatal("cancelled waiter did not return while the load was blocked")
	}
	cancelLeader() // even the caller that started the load leaves

	close(release)
	if r := <-leader; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("cancelled leader got %q, %v; want context.Canceled once the load ended", r.v, r.err)
	}
	if r := <-patient; r.err != nil || r.v != "Bearer jwt" || r.hit {
		t.Fatalf("remaining waiter got %q, hit=%v, err=%v; want the loaded value", r.v, r.hit, r.err)
	}
	if loadCtxErr != nil {
		t.Errorf("load's ctx was cancelled with its caller: %v", loadCtxErr)
	}
	if loadCtxVal != "request-scoped" {
		t.Errorf("load's ctx lost the caller's values: got %v", loadCtxVal)
	}
	if v, ok := c.Get(k); !ok || v != "Bearer jwt" {
		t.Fatalf("load result not stored after its callers left: %q, %v", v, ok)
	}
	if got := loads.Load(); got != 1 {
		t.Fatalf("load called %d times, want 1", got)
	}
}

func TestGetOrLoadDoesNotCacheErrorsOrZeroTTL(t *testing.T) {
	errAS := errors.New("authorization server unavailable")
	tests := []struct {
		name    string
		ttl     time.Duration
		err     error
		wantErr error
	}{
		{"AS error", time.Minute, errAS, errAS},
		{"ttl 0", 0, nil, nil},
		{"negative ttl", -time.Second, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCache(t, Config[string]{})
			k := testKey(1)
			var loads int
			load := func(context.Context) (string, time.Duration, error) {
				loads++
				return "v", tt.ttl, tt.err
			}
			for i := 1; i <= 3; i++ {
				v, hit, err := c.GetOrLoad(context.Background(), k, load)
				if !errors.Is(err, tt.wantErr) || hit {
					t.Fatalf("call %d: v=%q hit=%v err=%v; want miss with err %v", i, v, hit, err, tt.wantErr)
				}
				if tt.wantErr == nil && v != "v" {
					t.Fatalf("call %d: v=%q, want the loaded value even though it is not cached", i, v)
				}
				if loads != i {
					t.Fatalf("after %d calls load ran %d times: a result was cached", i, loads)
				}
			}
			if n := c.Len(); n != 0 {
				t.Fatalf("Len = %d, want 0", n)
			}
		})
	}
}

func TestGetOrLoadErrorThenSuccess(t *testing.T) {
	c := newTestCache(t, Config[string]{})
	k := testKey(1)
	fail := true
	var loads int
	load := func(context.Context) (string, time.Duration, error) {
		loads++
		if fail {
			return "", 0, errors.New("timeout")
		}
		return "Bearer jwt", time.Minute, nil
	}
	if _, _, err := c.GetOrLoad(context.Background(), k, load); err == nil {
		t.Fatal("want the load error")
	}
	fail = false
	if v, hit, err := c.GetOrLoad(context.Background(), k, load); err != nil || hit || v != "Bearer jwt" {
		t.Fatalf("second call = %q, %v, %v", v, hit, err)
	}
	if v, hit, err := c.GetOrLoad(context.Background(), k, load); err != nil || !hit || v != "Bearer jwt" {
		t.Fatalf("third call = %q, %v, %v; want hit", v, hit, err)
	}
	if loads != 2 {
		t.Fatalf("load ran %d times, want 2", loads)
	}
}

func TestGetOrLoadReloadsAfterExpiry(t *testing.T) {
	clock := newFakeClock()
	c := newTestCache(t, Config[string]{Now: clock.Now})
	k := testKey(1)
	var loads int
	load := func(context.Context) (string, time.Duration, error) {
		loads++
		return "v" + itoa(loads), 10 * time.Second, nil
	}
	steps := []struct {
		advance time.Duration
		want    string
		hit     bool
	}{
		{0, "v1", false},
		{9 * time.Second, "v1", true},
		{time.Second, "v2", false}, // at expiry: reload
		{5 * time.Second, "v2", true},
		{6 * time.Second, "v3", false},
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		v, hit, err := c.GetOrLoad(context.Background(), k, load)
		if err != nil || v != s.want || hit != s.hit {
			t.Fatalf("step %d: %q, hit=%v, err=%v; want %q, hit=%v", i, v, hit, err, s.want, s.hit)
		}
	}
}

func TestGetOrLoadPanicBecomesError(t *testing.T) {
	c := newTestCache(t, Config[string]{})
	k := testKey(1)
	var loads int
	_, _, err := c.GetOrLoad(context.Background(), k, func(context.Context) (string, time.Duration, error) {
		loads++
		panic("parser bug")
	})
	var pe *PanicError
	if !errors.As(err, &pe) || pe.Value != "parser bug" || len(pe.Stack) == 0 {
		t.Fatalf("err = %v; want *PanicError carrying the panic value and a stack", err)
	}
	v, _, err := c.GetOrLoad(context.Background(), k, func(context.Context) (string, time.Duration, error) {
		loads++
		return "ok", time.Minute, nil
	})
	if err != nil || v != "ok" || loads != 2 {
		t.Fatalf("after a panic: %q, %v, loads=%d; want a fresh load", v, err, loads)
	}
}

func TestGetOrLoadCancelledBeforeMissDoesNotLoad(t *testing.T) {
	c := newTestCache(t, Config[string]{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := c.GetOrLoad(ctx, testKey(1), func(context.Context) (string, time.Duration, error) {
		t.Fatal("load started for a caller that is already gone")
		return "", 0, nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestGetOrLoadAfterCloseStillLoads(t *testing.T) {
	c, err := New(Config[string]{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	for i := range 2 {
		v, hit, err := c.GetOrLoad(context.Background(), testKey(1), func(context.Context) (string, time.Duration, error) {
			return "v", time.Minute, nil
		})
		if err != nil || hit || v != "v" {
			t.Fatalf("call %d after Close: %q, %v, %v; want a load, not stored", i, v, hit, err)
		}
	}
}

// Many rounds of concurrent callers over a few keys, with expiry in
// between: every caller gets a value, and there is exactly one load per
// key per round (the in-flight re-check prevents a second load by a caller
// that missed just before the previous flight finished).
func TestGetOrLoadStress(t *testing.T) {
	clock := newFakeClock()
	c := newTestCache(t, Config[int]{Now: clock.Now})
	const keys, callers, rounds = 4, 32, 20
	var loads atomic.Int32
	for round := range rounds {
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() {
				v, _, err := c.GetOrLoad(context.Background(), testKey(i%keys), func(context.Context) (int, time.Duration, error) {
					loads.Add(1)
					return round, 10 * time.Second, nil
				})
				if err != nil || v != round {
					t.Errorf("round %d: got %d, %v", round, v, err)
				}
			})
		}
		wg.Wait()
		clock.Advance(10 * time.Second) // everything expires between rounds
	}
	if got, want := loads.Load(), int32(keys*rounds); got != want {
		t.Fatalf("%d loads, want exactly %d (one per key per round)", got, want)
	}
}
