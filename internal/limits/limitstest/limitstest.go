// Package limitstest is the one conformance suite every limits.Table
// backend runs: the same keys, clock steps and exact answers for each.
package limitstest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"tokend/internal/limits"
)

// New returns an empty table of burst events refilled at perSecond, on the
// clock now; t is the test the table is for (a backend cleans up through it).
type New func(t *testing.T, burst int, perSecond float64, now func() time.Time) limits.Table

// Run runs every test of the suite on the tables newTable makes.
func Run(t *testing.T, newTable New) {
	t.Run("take", func(t *testing.T) { testTake(t, newTable) })
	t.Run("in flight", func(t *testing.T) { testInFlight(t, newTable) })
	t.Run("reset", func(t *testing.T) { testReset(t, newTable) })
}

// Clock is a clock the test moves.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts at a fixed instant.
func NewClock() *Clock { return &Clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testTake: the request budget spends an event per request and
// says how long until the next.
func testTake(t *testing.T, newTable New) {
	clock := NewClock()
	b := newTable(t, 2, 0.5, clock.Now)
	for i := range 2 {
		if wait, ok := b.Take("198.51.100.7"); !ok {
			t.Fatalf("request %d refused (wait %s)", i, wait)
		}
	}
	if wait, ok := b.Take("198.51.100.7"); ok || wait != 2*time.Second {
		t.Errorf("third request: ok=%v wait=%s, want refused for 2s", ok, wait)
	}
	if _, ok := b.Take("203.0.113.9"); !ok {
		t.Error("another key refused")
	}
	clock.Advance(2 * time.Second)
	if _, ok := b.Take("198.51.100.7"); !ok {
		t.Error("refused after the refill")
	}
}

// testInFlight: attempts in flight hold the budget's last events, so
// the checks running at once can never spend more than is left; an attempt
// that finds them held waits for one to end instead of being refused, and a
// lock is only what failures charged.
func testInFlight(t *testing.T, newTable New) {
	ctx := context.Background()
	b := newTable(t, 2, 1, NewClock().Now)
	for i := range 2 {
		if _, locked, err := b.Begin(ctx, "alice", time.Minute); locked || err != nil {
			t.Fatalf("attempt %d refused: locked=%v %v", i, locked, err)
		}
	}
	if wait, locked := b.Locked("alice"); locked {
		t.Fatalf("two attempts in flight reported as a lock (wait %s)", wait)
	}
	// A third waits: both events are held. It is not refused.
	if _, locked, err := b.Begin(ctx, "alice", 0); locked || err != limits.ErrAttemptsInFlight {
		t.Fatalf("third attempt, no wait: locked=%v %v", locked, err)
	}
	third := make(chan error, 1)
	go func() {
		_, locked, err := b.Begin(ctx, "alice", time.Minute)
		if locked {
			err = errors.New("locked")
		}
		third <- err
	}()
	b.End("alice", false) // a success gives its event back: the third goes on
	if err := <-third; err != nil {
		t.Fatalf("third attempt after a success: %v", err)
	}
	b.End("alice", true)
	// The last attempt in flight is waited for, and its failure locks.
	fourth := make(chan time.Duration, 1)
	go func() {
		wait, locked, err := b.Begin(ctx, "alice", time.Minute)
		if !locked || err != nil {
			t.Errorf("fourth attempt: locked=%v %v", locked, err)
		}
		fourth <- wait
	}()
	b.End("alice", true)
	if wait := <-fourth; wait != time.Second {
		t.Errorf("after two failures: wait %s, want 1s", wait)
	}
	if wait, locked := b.Locked("alice"); !locked || wait != time.Second {
		t.Errorf("locked(alice) = %s %v, want 1s true", wait, locked)
	}
	// A waiting attempt stops when its client goes.
	c := newTable(t, 1, 1, NewClock().Now)
	c.Begin(ctx, "bob", time.Minute)
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if _, locked, err := c.Begin(gone, "bob", time.Minute); locked || err != context.Canceled {
		t.Errorf("canceled wait: locked=%v %v", locked, err)
	}
}

// testReset: reset lifts a lock at once, and an attempt in flight
// during the reset is still charged when it fails. A table with a lock is
// never idle.
func testReset(t *testing.T, newTable New) {
	ctx := context.Background()
	b := newTable(t, 1, 1.0/40, NewClock().Now)
	if b.Reset("alice") {
		t.Error("reset of a key never seen reported a lock")
	}
	b.Begin(ctx, "alice", 0)
	b.End("alice", true)
	if _, locked := b.Locked("alice"); !locked {
		t.Fatal("one failure did not lock a budget of one")
	}
	if b.Idle() {
		t.Error("a table with a lock is idle")
	}
	if !b.Reset("alice") {
		t.Error("reset of a locked key reported none")
	}
	if _, locked := b.Locked("alice"); locked {
		t.Fatal("still locked after reset")
	}
	b.Begin(ctx, "alice", 0)
	b.Reset("alice")
	b.End("alice", true)
	if wait, locked := b.Locked("alice"); !locked || wait != 40*time.Second {
		t.Errorf("failure in flight across a reset: %s %v", wait, locked)
	}
}
