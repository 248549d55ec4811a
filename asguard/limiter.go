package asguard

import (
	"context"
	"errors"
	"time"
)

// ErrOverloaded is returned by [Limiter.Acquire] when every slot is busy
// and the wait queue is full, or a waiter's bounded wait ran out.
var ErrOverloaded = errors.New("too many concurrent authorization server calls")

// Limiter is a counting semaphore with a bounded wait queue: up to n
// holders at once; when all slots are taken, up to queue callers wait for
// one, each at most maxWait and never past its context; anyone else is
// refused at once. Refusing rather than queueing without bound keeps a
// flood from piling up goroutines, memory and latency behind a slow AS.
//
// A Limiter is safe for concurrent use. The zero value is not usable; use
// [NewLimiter].
type Limiter struct {
	slots   chan struct{} // a send takes a slot, a receive frees one
	queue   chan struct{} // a send takes a place in the wait queue
	maxWait time.Duration
}

// NewLimiter returns a Limiter with n slots and room for queue waiters who
// wait at most maxWait each. n must be positive; queue may be 0 (refuse as
// soon as all slots are busy).
func NewLimiter(n, queue int, maxWait time.Duration) *Limiter {
	if n < 1 {
		panic("asguard: NewLimiter needs at least one slot")
	}
	return &Limiter{
		slots:   make(chan struct{}, n),
		queue:   make(chan struct{}, max(queue, 0)),
		maxWait: maxWait,
	}
}

// Acquire takes a slot, waiting briefly if the queue has room. It returns
// nil when the caller holds a slot (and must call [Limiter.Release] once),
// [ErrOverloaded] when refused, or ctx.Err() when ctx ended while waiting.
func (l *Limiter) Acquire(ctx context.Context) error {
	select {
	case l.slots <- struct{}{}:
		return nil
	default:
	}
	select {
	case l.queue <- struct{}{}:
	default:
		return ErrOverloaded // the queue is full: refuse at once
	}
	defer func() { <-l.queue }()
	if l.maxWait <= 0 {
		return ErrOverloaded
	}
	timer := time.NewTimer(l.maxWait)
	defer timer.Stop()
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-timer.C:
		return ErrOverloaded
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Release frees a slot taken by a successful [Limiter.Acquire].
func (l *Limiter) Release() {
	select {
	case <-l.slots:
	default:
		panic("asguard: Limiter.Release without a matching Acquire")
	}
}

// InUse returns how many slots are held now.
func (l *Limiter) InUse() int { return len(l.slots) }

// Waiting returns how many callers wait for a slot now.
func (l *Limiter) Waiting() int { return len(l.queue) }
