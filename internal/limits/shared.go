package limits

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"tokend/internal/backend"
)

// OpTimeout bounds each Redis call of the login limits: Redis answers in
// well under a millisecond, and a login must not wait on a Redis in
// trouble; past it, the local budgets decide.
const OpTimeout = 200 * time.Millisecond

// probeEvery is how often, while Redis is down, a call tries it again; the
// others go straight to the local budgets.
const probeEvery = time.Second

// Store is the state the three shared budgets share: whether Redis
// answers, so that its going down and coming back are one log line each.
type Store struct {
	health    *backend.Health
	nextProbe atomic.Int64 // unix nanoseconds; while down, Redis is tried after this
}

// Shared is a budget kept in Redis (REDIS_URL), shared by every
// replica, with this process's memory budget as the fallback while Redis
// does not answer: a guesser then gets at most one replica's own budget per
// replica, and right passwords still log in.
type Shared struct {
	remote *Redis
	local  *Memory
	store  *Store
}

var _ Table = (*Shared)(nil)

// NewStore returns the state of a Redis shared by the budgets of a process:
// up, until a call fails. setUp follows it (a gauge).
func NewStore(log *slog.Logger, setUp func(up bool)) *Store {
	return &Store{health: backend.NewHealth(log, setUp,
		"login limits store is not answering: each replica enforces its own login budgets until it does",
		"login limits store is answering again: the login budgets are shared by every replica")}
}

// NewShared returns the budget remote, with local answering while Redis does not.
func NewShared(remote *Redis, local *Memory, store *Store) *Shared {
	return &Shared{remote: remote, local: local, store: store}
}

// Check asks Redis, with ping, whether it answers again when it is noted
// down (for /readyz, which so notices a recovery even when no login comes),
// and reports whether it is up.
func (s *Store) Check(ctx context.Context, ping func(context.Context) error) bool {
	if s.health.Up() {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	return !s.result(ping(ctx))
}

// remote reports whether to ask Redis: always while it answers, once a
// second while it does not.
func (s *Store) remote() bool {
	if s.health.Up() {
		return true
	}
	next := s.nextProbe.Load()
	now := time.Now().UnixNano()
	return now >= next && s.nextProbe.CompareAndSwap(next, now+int64(probeEvery))
}

// result notes the outcome of a Redis call and reports whether it failed.
func (s *Store) result(err error) (failed bool) {
	if err == nil {
		s.health.Answered()
		return false
	}
	if s.health.Failed(err) {
		s.nextProbe.Store(time.Now().Add(probeEvery).UnixNano())
	}
	return true
}

func opContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), OpTimeout)
}

func (b *Shared) Take(key string) (time.Duration, bool) {
	if b.store.remote() {
		ctx, cancel := opContext()
		wait, ok, err := b.remote.Take(ctx, key)
		cancel()
		if !b.store.result(err) {
			return wait, ok
		}
	}
	return b.local.Take(key)
}

func (b *Shared) Locked(key string) (time.Duration, bool) {
	if b.store.remote() {
		ctx, cancel := opContext()
		wait, locked, err := b.remote.Locked(ctx, key)
		cancel()
		if !b.store.result(err) {
			return wait, locked
		}
	}
	return b.local.Locked(key)
}

// Begin waits, as Memory.Begin does, while the events left are held by
// attempts in flight, here on any replica: it asks again every few
// milliseconds, since no replica can wake another's waiters.
func (b *Shared) Begin(ctx context.Context, key string, maxWait time.Duration) (time.Duration, bool, error) {
	deadline := time.Now().Add(maxWait)
	pause := 5 * time.Millisecond
	for {
		if err := ctx.Err(); err != nil {
			return 0, false, err
		}
		if !b.store.remote() {
			return b.local.Begin(ctx, key, time.Until(deadline))
		}
		opCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), OpTimeout)
		wait, locked, err := b.remote.Begin(opCtx, key)
		cancel()
		if !errors.Is(err, ErrBusy) {
			if b.store.result(err) {
				return b.local.Begin(ctx, key, time.Until(deadline))
			}
			return wait, locked, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return 0, false, ErrAttemptsInFlight
		}
		t := time.NewTimer(min(pause, left))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return 0, false, ctx.Err()
		}
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// End charges where it can: an attempt begun in Redis that cannot end there
// is charged locally, so a failure is never free.
func (b *Shared) End(key string, failed bool) {
	if b.store.remote() {
		ctx, cancel := opContext()
		err := b.remote.End(ctx, key, failed)
		cancel()
		if !b.store.result(err) {
			return
		}
	}
	b.local.End(key, failed)
}

// Reset unlocks in Redis (for every replica) and in this replica's memory.
func (b *Shared) Reset(key string) bool {
	wasLocked := b.local.Reset(key)
	if b.store.remote() {
		ctx, cancel := opContext()
		remote, err := b.remote.Reset(ctx, key)
		cancel()
		if !b.store.result(err) {
			wasLocked = wasLocked || remote
		}
	}
	return wasLocked
}

// Idle is false: Redis cannot say cheaply that no key anywhere is locked.
func (b *Shared) Idle() bool { return false }
