package asguard

import (
	"fmt"
	"sync"
	"time"
)

// State is a circuit breaker's state.
type State uint8

const (
	// Closed lets every call through and counts consecutive failures.
	Closed State = iota
	// Open refuses every call until the cool-off has passed.
	Open
	// HalfOpen lets exactly one probe through and refuses the rest until
	// the probe's outcome is known.
	HalfOpen
	// NumStates is the number of states, for tables indexed by State.
	NumStates
)

// String returns the state's name as used in metrics labels.
func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half_open"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Outcome is what the caller reports about a call the breaker let through.
type Outcome uint8

const (
	// Ignore reports a call that says nothing about the AS's health, for
	// example one abandoned by its callers before the AS answered. A probe
	// reported as Ignore frees the probe slot: the next call probes.
	Ignore Outcome = iota
	// Success reports that the AS answered (whatever the answer meant).
	Success
	// Failure reports that the AS was unreachable, timed out or failed.
	Failure
)

// OpenError is returned by [Breaker.Allow] while the breaker refuses calls.
type OpenError struct {
	// RetryAfter is when a new call may be let through: the rest of the
	// cool-off rounded up to whole seconds, at least one second.
	RetryAfter time.Duration
}

// Error implements error.
func (e *OpenError) Error() string {
	return "authorization server circuit breaker is open"
}

// Ticket is handed out by [Breaker.Allow] and given back to
// [Breaker.Record], so that the outcome of a call is attributed to the
// breaker state in which it started.
type Ticket struct {
	gen   uint64
	probe bool
}

// BreakerConfig configures a [Breaker].
type BreakerConfig struct {
	// Failures is how many consecutive failures open the breaker. At least 1.
	Failures int
	// CoolOff is how long the breaker stays open before it probes. Positive.
	CoolOff time.Duration
	// Now is the clock. Default: time.Now.
	Now func() time.Time
}

// Breaker is a circuit breaker for calls to one AS: closed → open after
// Failures consecutive failures → half-open once CoolOff has passed, where
// exactly one probe goes through; the probe's success closes it, its
// failure reopens it for another CoolOff.
//
// Outcomes are attributed to the state a call started in: calls that
// started before a state change (say, the slow calls still out when the
// breaker opened) are ignored when they finish, so they can neither close
// a breaker they did not probe nor push a fresh one open.
//
// A Breaker is safe for concurrent use. It holds a mutex: it belongs on
// the path that is about to make a network call, not on a cache hit.
type Breaker struct {
	failures int
	coolOff  time.Duration
	now      func() time.Time

	mu          sync.Mutex
	state       State
	gen         uint64    // bumped on every state change; stale tickets are ignored
	consecutive int       // failures in a row while closed
	openUntil   time.Time // while open: when the next call may probe
	probing     bool      // while half-open: a probe is out
}

// NewBreaker returns a closed Breaker.
func NewBreaker(cfg BreakerConfig) (*Breaker, error) {
	if cfg.Failures < 1 {
		return nil, fmt.Errorf("failures: must be at least 1, got %d", cfg.Failures)
	}
	if cfg.CoolOff <= 0 {
		return nil, fmt.Errorf("cool_off: must be positive, got %v", cfg.CoolOff)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	// gen starts at 1 so that a zero Ticket (from a refused Allow) never
	// counts.
	return &Breaker{failures: cfg.Failures, coolOff: cfg.CoolOff, now: cfg.Now, gen: 1}, nil
}

// Allow asks whether a call may go to the AS now. When it may, the caller
// makes the call and reports its outcome with [Breaker.Record] and the
// returned Ticket (exactly once, Ignore included). When it may not, the
// error is an *[OpenError] and the caller must not call the AS.
func (b *Breaker) Allow() (Ticket, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case Open:
		t := b.now()
		if t.Before(b.openUntil) {
			return Ticket{}, &OpenError{RetryAfter: retryAfter(b.openUntil.Sub(t))}
		}
		b.setState(HalfOpen)
		fallthrough
	case HalfOpen:
		if b.probing {
			// The probe will tell soon; until then nothing else goes
			// through.
			return Ticket{}, &OpenError{RetryAfter: time.Second}
		}
		b.probing = true
		return Ticket{gen: b.gen, probe: true}, nil
	}
	return Ticket{gen: b.gen}, nil
}

// Record reports the outcome of a call that [Breaker.Allow] let through.
func (b *Breaker) Record(t Ticket, o Outcome) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t.gen != b.gen {
		return // the call started in an earlier state: it proves nothing now
	}
	if t.probe {
		switch o {
		case Success:
			b.setState(Closed)
		case Failure:
			b.open()
		default:
			b.probing = false // no verdict: let the next call probe
		}
		return
	}
	switch o {
	case Success:
		b.consecutive = 0
	case Failure:
		b.consecutive++
		if b.consecutive >= b.failures {
			b.open()
		}
	}
}

// State returns the current state. An open breaker whose cool-off has
// passed reports Open until the next call makes it half-open.
func (b *Breaker) State() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

// open starts a cool-off. b.mu is held.
func (b *Breaker) open() {
	b.setState(Open)
	b.openUntil = b.now().Add(b.coolOff)
}

// setState enters s and resets what belongs to the previous state. b.mu is
// held.
func (b *Breaker) setState(s State) {
	b.state = s
	b.gen++
	b.consecutive = 0
	b.probing = false
}

// retryAfter rounds a remaining wait up to whole seconds, at least one:
// Retry-After carries whole seconds, and rounding down would invite
// clients back while the breaker still refuses them.
func retryAfter(d time.Duration) time.Duration {
	return max(time.Second, (d + time.Second - 1).Truncate(time.Second))
}
