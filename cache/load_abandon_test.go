package cache

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// When every caller waiting for a load has gone, the load's context is
// cancelled (it must not keep retrying for nobody), and the next caller
// starts a new load instead of joining the abandoned one.
func TestGetOrLoadAbandonedLoadIsCancelled(t *testing.T) {
	c := newTestCache(t, Config[string]{})
	k := testKey(1)
	started := make(chan struct{})
	loadCtxDone := make(chan error, 1)
	var loads atomic.Int32
	abandoned := func(ctx context.Context) (string, time.Duration, error) {
		loads.Add(1)
		close(started)
		select {
		case <-ctx.Done():
			loadCtxDone <- ctx.Err()
			return "", 0, ctx.Err()
		case <-time.After(failAfter):
			loadCtxDone <- nil
			return "late", time.Minute, nil
		}
	}

	ctx1, cancel1 := context.WithCancel(context.Background())
	ctx2, cancel2 := context.WithCancel(context.Background())
	errs := make(chan error, 2)
	go func() { _, _, err := c.GetOrLoad(ctx1, k, abandoned); errs <- err }()
	<-started
	go func() { _, _, err := c.GetOrLoad(ctx2, k, abandoned); errs <- err }()
	// Wait until the second caller has joined the flight.
	for deadline := time.Now().Add(failAfter); ; {
		c.flights.mu.Lock()
		f := c.flights.m[k]
		n := 0
		if f != nil {
			n = f.waiters
		}
		c.flights.mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("second caller never joined the flight")
		}
		time.Sleep(time.Millisecond)
	}

	cancel1() // the caller running the load goes; the other still waits
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-loadCtxDone:
		t.Fatalf("load stopped (%v) while a caller still waited", err)
	default:
	}
	cancel2()
	for range 2 {
		if err := <-errs; !errors.Is(err, context.Canceled) {
			t.Fatalf("caller: %v, want context.Canceled", err)
		}
	}
	select {
	case err := <-loadCtxDone:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("abandoned load ended with %v, want its context cancelled", err)
		}
	case <-time.After(failAfter):
		t.Fatal("the load went on after every caller had left")
	}

	v, hit, err := c.GetOrLoad(context.Background(), k, func(context.Context) (string, time.Duration, error) {
		loads.Add(1)
		return "fresh", time.Minute, nil
	})
	if err != nil || hit || v != "fresh" {
		t.Fatalf("after the abandoned load: %q, hit=%v, err=%v; want a new load", v, hit, err)
	}
	if n := loads.Load(); n != 2 {
		t.Fatalf("%d loads, want 2", n)
	}
}

// A load that completed is stored even when its callers have gone.
func TestGetOrLoadCompletedLoadIsStoredAfterCallersLeft(t *testing.T) {
	c := newTestCache(t, Config[string]{})
	k := testKey(1)
	release := make(chan struct{})
	stored := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 1)
	go func() {
		_, _, err := c.GetOrLoad(ctx, k, func(context.Context) (string, time.Duration, error) {
			<-release
			defer close(stored)
			return "done", time.Minute, nil
		})
		errs <- err
	}()
	// Let the caller join, then leave; the load's answer is already on its
	// way (release) and finishes regardless of the cancelled context.
	close(release)
	<-stored
	cancel()
	<-errs
	for deadline := time.Now().Add(failAfter); ; time.Sleep(time.Millisecond) {
		if v, ok := c.Get(k); ok && v == "done" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the completed load was not stored")
		}
	}
}

// accept lets a caller refuse a cached value; its load replaces it, and a
// load whose value may not be stored (ttl 0) removes the entry it
// supersedes.
func TestGetOrLoadIfRefusedEntryIsReplaced(t *testing.T) {
	c := newTestCache(t, Config[string]{})
	k := testKey(1)
	if !c.Set(k, "old", time.Minute) {
		t.Fatal("Set refused")
	}
	refuseOld := func(_ Key, v string) bool { return v != "old" }
	v, hit, err := c.GetOrLoadIf(context.Background(), k, refuseOld, func(context.Context) (string, time.Duration, error) {
		return "new", time.Minute, nil
	})
	if err != nil || hit || v != "new" {
		t.Fatalf("refused entry: %q, hit=%v, err=%v; want a load", v, hit, err)
	}
	if got, ok := c.Get(k); !ok || got != "new" {
		t.Fatalf("cache holds %q, %v; want the new value", got, ok)
	}
	v, hit, err = c.GetOrLoadIf(context.Background(), k, func(Key, string) bool { return false }, func(context.Context) (string, time.Duration, error) {
		return "uncacheable", 0, nil
	})
	if err != nil || hit || v != "uncacheable" {
		t.Fatalf("ttl 0 load: %q, hit=%v, err=%v", v, hit, err)
	}
	if got, ok := c.Get(k); ok {
		t.Fatalf("the superseded entry %q is still cached after a newer answer that may not be", got)
	}
}
