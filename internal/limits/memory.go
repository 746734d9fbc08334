package limits

import (
	"context"
	"errors"
	"maps"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Table is one budget of the login limits: a token bucket per key (a
// username digest or a client address). Memory keeps them in this process's
// memory; Shared keeps them in Redis for every replica, with a Memory as
// its fallback. Both mean exactly what Memory's methods say, and both run
// the one conformance suite, limitstest.Run.
type Table interface {
	Take(key string) (wait time.Duration, ok bool)
	Locked(key string) (wait time.Duration, locked bool)
	Begin(ctx context.Context, key string, maxWait time.Duration) (wait time.Duration, locked bool, err error)
	End(key string, failed bool)
	Reset(key string) (wasLocked bool)
	// Idle reports that no key has spent any of its budget, so that no
	// key is locked and a check can be skipped; a backend that cannot tell
	// cheaply says false.
	Idle() bool
}

var _ Table = (*Memory)(nil)

// Memory is a table of token buckets, one per key (a username or a client
// address), bounded in size. A bucket that is full again and has no attempt
// in flight behaves exactly like a key never seen, so it can be dropped at
// any time: that is how entries expire, with no timer and no goroutine.
type Memory struct {
	limit rate.Limit
	burst int
	max   int
	now   func() time.Time

	// size is len(entries), readable without mu: a login checks whether
	// its username is locked on every request, and with no failure
	// anywhere (the usual case) that costs one atomic load.
	size atomic.Int64

	mu        sync.Mutex
	entries   map[string]*budget
	lastSweep time.Time
	// ended is closed, and replaced, whenever an attempt in flight ends:
	// attempts waiting for its place in the budget wake up and look again.
	ended chan struct{}
}

type budget struct {
	lim *rate.Limiter
	// pending counts attempts in flight: begun (they hold a bcrypt slot)
	// and not yet ended. Each holds one event of the budget until it ends,
	// so that the checks running at once can never spend more than the
	// budget has left.
	pending int
}

// Sweeping is O(entries), so it runs at most every sweepEvery in normal
// operation, and at most every sweepFullEvery when the table is full (a
// flood of new keys then evicts instead of sweeping on every request).
const (
	sweepEvery     = time.Minute
	sweepFullEvery = time.Second
	evictSample    = 8
)

// NewMemory returns a table of buckets of burst events refilled at perSecond,
// or nil (no limit) when burst is 0.
func NewMemory(burst int, perSecond float64, max int, now func() time.Time) *Memory {
	if burst <= 0 || perSecond <= 0 {
		return nil
	}
	if max <= 0 {
		max = 1
	}
	return &Memory{limit: rate.Limit(perSecond), burst: burst, max: max, now: now,
		entries: map[string]*budget{}, ended: make(chan struct{})}
}

// Take spends one event of key's budget now, or reports how long until one
// is available. It is the request budget's: every request is charged.
func (b *Memory) Take(key string) (wait time.Duration, ok bool) {
	if b == nil {
		return 0, true
	}
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.entry(key, now)
	if tokens := e.lim.TokensAt(now); tokens < 1 {
		return b.waitFor(1 - tokens), false
	}
	e.lim.ReserveN(now, 1)
	return 0, true
}

// Locked reports whether key's budget is spent by failures already charged,
// and how long until it earns an event back. Attempts in flight do not
// count: they may yet succeed, and they end in one bcrypt check, so the
// wait a refill-based answer would give is not theirs to report.
func (b *Memory) Locked(key string) (wait time.Duration, locked bool) {
	if b.Idle() {
		return 0, false
	}
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.entries[key]
	if !ok {
		return 0, false
	}
	if tokens := e.lim.TokensAt(now); tokens < 1 {
		return b.waitFor(1 - tokens), true
	}
	return 0, false
}

// Idle reports that the table holds no bucket: one atomic load, no lock.
func (b *Memory) Idle() bool { return b == nil || b.size.Load() == 0 }

// ErrAttemptsInFlight is begin's answer when key's budget stayed held by
// attempts in flight for the whole wait: the server is slow, not the client
// at fault.
var ErrAttemptsInFlight = errors.New("the budget stayed held by attempts in flight")

// Begin starts an attempt that may fail, provisionally charging it: it holds
// one event of key's budget until end. When the budget is spent by failures
// it returns locked with the wait until a refill. When the events left are
// all held by attempts in flight, it waits for one of them to end (a failure
// keeps its event, a success gives it back) for at most maxWait, then gives
// up with ErrAttemptsInFlight. Every begin that returns neither must be
// followed by end.
func (b *Memory) Begin(ctx context.Context, key string, maxWait time.Duration) (wait time.Duration, locked bool, err error) {
	if b == nil {
		return 0, false, nil
	}
	var timeout <-chan time.Time
	for {
		now := b.now()
		b.mu.Lock()
		e := b.entry(key, now)
		tokens := e.lim.TokensAt(now)
		if tokens < 1 {
			b.mu.Unlock()
			return b.waitFor(1 - tokens), true, nil
		}
		if tokens-float64(e.pending) >= 1 {
			e.pending++
			b.mu.Unlock()
			return 0, false, nil
		}
		ended := b.ended
		b.mu.Unlock()
		if timeout == nil {
			t := time.NewTimer(maxWait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-ended:
		case <-timeout:
			return 0, false, ErrAttemptsInFlight
		case <-ctx.Done():
			return 0, false, ctx.Err()
		}
	}
}

// End finishes an attempt begun with Begin: a failure keeps the event it
// held, a success gives it back.
func (b *Memory) End(key string, failed bool) {
	if b == nil {
		return
	}
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.entries[key]
	switch {
	case ok && e.pending > 0:
		e.pending--
		close(b.ended)
		b.ended = make(chan struct{})
	case !ok && !failed:
		return
	case !ok:
		// Evicted or unlocked while in flight: still charge it.
		e = b.entry(key, now)
	}
	if failed {
		// Reserving never fails here: a failure already let through is
		// charged even if it puts the bucket in debt.
		e.lim.ReserveN(now, 1)
		return
	}
	if e.pending == 0 && e.lim.TokensAt(now) >= float64(b.burst) {
		// A full bucket with nothing in flight is a key never seen: a
		// success leaves no entry, so the table stays idle.
		delete(b.entries, key)
		b.size.Store(int64(len(b.entries)))
	}
}

// Reset forgives key's failures: its bucket is full again, as if never
// seen. Attempts in flight still end as usual. It reports whether the key
// was locked.
func (b *Memory) Reset(key string) (wasLocked bool) {
	if b == nil {
		return false
	}
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.entries[key]
	if !ok {
		return false
	}
	wasLocked = e.lim.TokensAt(now) < 1
	if e.pending == 0 {
		delete(b.entries, key)
		b.size.Store(int64(len(b.entries)))
	} else {
		e.lim = rate.NewLimiter(b.limit, b.burst)
	}
	return wasLocked
}

// waitFor is how long the bucket takes to earn tokens.
func (b *Memory) waitFor(tokens float64) time.Duration {
	return time.Duration(tokens / float64(b.limit) * float64(time.Second))
}

// entry returns key's bucket, making room for it when the table is full.
// b.mu must be held.
func (b *Memory) entry(key string, now time.Time) *budget {
	if e, ok := b.entries[key]; ok {
		return e
	}
	if now.Sub(b.lastSweep) >= sweepEvery || (len(b.entries) >= b.max && now.Sub(b.lastSweep) >= sweepFullEvery) {
		b.sweep(now)
	}
	if len(b.entries) >= b.max {
		b.evict(now)
	}
	e := &budget{lim: rate.NewLimiter(b.limit, b.burst)}
	b.entries[key] = e
	b.size.Store(int64(len(b.entries))) // after the sweep, the eviction and this
	return e
}

// sweep drops every bucket that is full and idle.
func (b *Memory) sweep(now time.Time) {
	b.lastSweep = now
	maps.DeleteFunc(b.entries, func(_ string, e *budget) bool {
		return e.pending == 0 && e.lim.TokensAt(now) >= float64(b.burst)
	})
}

// evict drops one bucket to make room: of a few taken at random, the one
// with the most tokens left, which forgets the least. A locked key is kept
// unless every key sampled is locked as well.
func (b *Memory) evict(now time.Time) {
	EvictSampled(b.entries, func(e *budget) float64 { return e.lim.TokensAt(now) - float64(e.pending) })
}

// EvictSampled deletes, of evictSample entries of m taken at random (Go's
// map order), the one whose score is highest: a bounded table makes room
// in constant time, and what it forgets is chosen, not arbitrary. The
// verification cache and the login limits both use it.
func EvictSampled[K comparable, V any](m map[K]V, score func(V) float64) {
	var (
		victim K
		best   = math.Inf(-1)
		n      int
	)
	for k, v := range m {
		if s := score(v); n == 0 || s > best {
			victim, best = k, s
		}
		if n++; n == evictSample {
			break
		}
	}
	delete(m, victim)
}

// Len is the number of keys held: the memory bound, for tests.
func (b *Memory) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.entries)
}
