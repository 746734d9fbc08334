package main

import (
	"context"
	"runtime"
	"time"
)

// bcryptSlots is how many bcrypt checks tokend runs at once: BCRYPT_SLOTS,
// or by default one fewer than the CPUs Go may use (at least one). The CPU
// left over keeps cached logins fast under a flood of wrong passwords: Go
// preempts a running goroutine only every 10 ms, so with a bcrypt on every
// CPU each step of a cached login waits that long for a turn
// (BenchmarkLoginUnderFlood: p99 119 ms with 2 slots on 2 CPUs, 0.4 ms with 1).
func bcryptSlots(cfg *Config) int {
	if cfg.BcryptSlots > 0 {
		return cfg.BcryptSlots
	}
	return max(1, runtime.GOMAXPROCS(0)-1)
}

// slotAuth lets at most as many password checks run at once as it has
// slots. bcrypt is pure CPU: more checks at once than CPUs would not finish
// sooner, they would only take the CPU from every other request. A check
// that cannot get a slot within maxWait is refused with 503, so a flood
// sheds load instead of building a queue whose every entry is already too
// late.
type slotAuth struct {
	next    Authenticator
	slots   chan struct{}
	maxWait time.Duration
}

func newSlotAuth(next Authenticator, slots int, maxWait time.Duration) *slotAuth {
	if slots < 1 {
		slots = 1
	}
	return &slotAuth{next: next, slots: make(chan struct{}, slots), maxWait: maxWait}
}

func (a *slotAuth) Authenticate(ctx context.Context, username, password string) error {
	select {
	case a.slots <- struct{}{}:
	default:
		t := time.NewTimer(a.maxWait)
		defer t.Stop()
		select {
		case a.slots <- struct{}{}:
		case <-t.C:
			return a.busy()
		case <-ctx.Done():
			// The client has gone: not a sign of overload, so not a 503
			// (which alerts would count); nobody reads this answer.
			return Errorf(ECANCELED, "the client closed the request while it waited for a bcrypt slot")
		}
	}
	defer func() { <-a.slots }()
	return a.next.Authenticate(ctx, username, password)
}

// busy is the 503: the queue drains in about maxWait, so that is the wait
// suggested.
func (a *slotAuth) busy() error {
	return retryLater(EUNAVAILABLE, a.maxWait, "the server is busy checking other logins")
}
