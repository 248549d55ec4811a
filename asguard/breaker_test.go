package asguard

import (
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a clock tests move by hand, so no test sleeps.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// A breaker step: allow (a call goes through; its ticket is kept under
// name), refuse (Allow refuses with retryAfter), record (the named call's
// outcome), wait (the clock moves). After each step the state is checked.
type step struct {
	op         string
	name       string
	outcome    Outcome
	d          time.Duration // wait: how long; refuse: the expected RetryAfter
	wantState  State
	wantProbed bool // allow: the ticket is the half-open probe
}

func allow(name string, s State) step { return step{op: "allow", name: name, wantState: s} }
func probe(name string) step {
	return step{op: "allow", name: name, wantState: HalfOpen, wantProbed: true}
}
func refuse(retryAfter time.Duration, s State) step {
	return step{op: "refuse", d: retryAfter, wantState: s}
}
func record(name string, o Outcome, s State) step {
	return step{op: "record", name: name, outcome: o, wantState: s}
}
func wait(d time.Duration, s State) step { return step{op: "wait", d: d, wantState: s} }

func TestBreaker(t *testing.T) {
	const coolOff = 5 * time.Second
	tests := []struct {
		name  string
		steps []step
	}{
		{"opens after consecutive failures", []step{
			allow("a", Closed), allow("b", Closed), allow("c", Closed),
			record("a", Failure, Closed), record("b", Failure, Closed),
			record("c", Failure, Open),
			refuse(5*time.Second, Open),
		}},
		{"a success resets the count", []step{
			allow("a", Closed), record("a", Failure, Closed),
			allow("b", Closed), record("b", Failure, Closed),
			allow("c", Closed), record("c", Success, Closed),
			allow("d", Closed), record("d", Failure, Closed),
			allow("e", Closed), record("e", Failure, Closed),
			allow("f", Closed), record("f", Failure, Open),
		}},
		{"an ignored call neither counts nor resets", []step{
			allow("a", Closed), record("a", Failure, Closed),
			allow("b", Closed), record("b", Failure, Closed),
			allow("c", Closed), record("c", Ignore, Closed),
			allow("d", Closed), record("d", Failure, Open),
		}},
		{"retry-after is the rest of the cool-off rounded up", []step{
			allow("a", Closed), allow("b", Closed), allow("c", Closed),
			record("a", Failure, Closed), record("b", Failure, Closed), record("c", Failure, Open),
			wait(1500*time.Millisecond, Open), refuse(4*time.Second, Open),
			wait(2500*time.Millisecond, Open), refuse(1*time.Second, Open),
			wait(900*time.Millisecond, Open), refuse(1*time.Second, Open), // 100ms left: at least 1s
		}},
		{"after the cool-off one probe; its success closes", []step{
			allow("a", Closed), allow("b", Closed), allow("c", Closed),
			record("a", Failure, Closed), record("b", Failure, Closed), record("c", Failure, Open),
			wait(coolOff, Open),
			probe("p"),
			refuse(time.Second, HalfOpen), refuse(time.Second, HalfOpen),
			record("p", Success, Closed),
			allow("d", Closed), allow("e", Closed),
		}},
		{"a failed probe reopens for a whole cool-off", []step{
			allow("a", Closed), allow("b", Closed), allow("c", Closed),
			record("a", Failure, Closed), record("b", Failure, Closed), record("c", Failure, Open),
			wait(time.Hour, Open),
			probe("p"), record("p", Failure, Open),
			refuse(5*time.Second, Open),
			wait(coolOff-time.Millisecond, Open), refuse(time.Second, Open),
			wait(time.Millisecond, Open), probe("q"), record("q", Success, Closed),
		}},
		{"a probe without a verdict lets the next call probe", []step{
			allow("a", Closed), allow("b", Closed), allow("c", Closed),
			record("a", Failure, Closed), record("b", Failure, Closed), record("c", Failure, Open),
			wait(coolOff, Open),
			probe("p"), record("p", Ignore, HalfOpen),
			probe("q"), refuse(time.Second, HalfOpen),
			record("q", Success, Closed),
		}},
		{"calls from before a state change are ignored", []step{
			allow("slow", Closed),
			allow("a", Closed), allow("b", Closed), allow("c", Closed),
			record("a", Failure, Closed), record("b", Failure, Closed), record("c", Failure, Open),
			record("slow", Success, Open), // must not close what it did not probe
			wait(coolOff, Open),
			probe("p"),
			record("a", Success, HalfOpen), // a stale repeat changes nothing either
			record("p", Success, Closed),
			allow("d", Closed), allow("e", Closed),
			record("d", Failure, Closed), record("e", Failure, Closed),
			record("slow", Failure, Closed), // from two states ago: not a third failure
			allow("f", Closed), record("f", Failure, Open),
		}},
		{"a zero ticket is never counted", []step{
			allow("a", Closed), allow("b", Closed),
			record("a", Failure, Closed), record("b", Failure, Closed),
			record("never-allowed", Failure, Closed),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
			b, err := NewBreaker(BreakerConfig{Failures: 3, CoolOff: coolOff, Now: clock.now})
			if err != nil {
				t.Fatal(err)
			}
			tickets := map[string]Ticket{}
			for i, s := range tc.steps {
				switch s.op {
				case "allow":
					tk, err := b.Allow()
					if err != nil {
						t.Fatalf("step %d: Allow refused: %v", i, err)
					}
					if tk.probe != s.wantProbed {
						t.Fatalf("step %d: probe = %v, want %v", i, tk.probe, s.wantProbed)
					}
					tickets[s.name] = tk
				case "refuse":
					_, err := b.Allow()
					var oe *OpenError
					if !errors.As(err, &oe) {
						t.Fatalf("step %d: Allow = %v, want an *OpenError", i, err)
					}
					if oe.RetryAfter != s.d {
						t.Fatalf("step %d: RetryAfter = %v, want %v", i, oe.RetryAfter, s.d)
					}
				case "record":
					b.Record(tickets[s.name], s.outcome)
				case "wait":
					clock.advance(s.d)
				}
				if got := b.State(); got != s.wantState {
					t.Fatalf("step %d (%s %s): state %v, want %v", i, s.op, s.name, got, s.wantState)
				}
			}
		})
	}
}

func TestNewBreakerRejectsBadConfig(t *testing.T) {
	for _, cfg := range []BreakerConfig{
		{Failures: 0, CoolOff: time.Second},
		{Failures: -1, CoolOff: time.Second},
		{Failures: 1, CoolOff: 0},
		{Failures: 1, CoolOff: -time.Second},
	} {
		if _, err := NewBreaker(cfg); err == nil {
			t.Errorf("NewBreaker(%+v) accepted", cfg)
		}
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{Closed: "closed", Open: "open", HalfOpen: "half_open", 7: "state(7)"} {
		if got := s.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", s, got, want)
		}
	}
}

// Under concurrent use (run with -race) a half-open breaker never has two
// probes out, and every state change is consistent.
func TestBreakerConcurrent(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	b, err := NewBreaker(BreakerConfig{Failures: 2, CoolOff: time.Second, Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	var probes, maxProbes atomic.Int32
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for range 2000 {
				if rng.IntN(50) == 0 {
					clock.advance(300 * time.Millisecond)
				}
				tk, err := b.Allow()
				if err != nil {
					continue
				}
				if tk.probe {
					n := probes.Add(1)
					for {
						m := maxProbes.Load()
						if n <= m || maxProbes.CompareAndSwap(m, n) {
							break
						}
					}
				}
				outcome := Outcome(rng.IntN(3))
				if tk.probe {
					probes.Add(-1)
				}
				b.Record(tk, outcome)
			}
		}()
	}
	wg.Wait()
	if m := maxProbes.Load(); m > 1 {
		t.Errorf("%d probes were out at once, want at most 1", m)
	}
}
