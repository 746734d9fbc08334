package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"tokend/internal/limits"
)

// limitsOpTimeout bounds each Redis call of the login limits: Redis answers
// in well under a millisecond, and a login must not wait on a Redis in
// trouble; past it, the local budgets decide.
const limitsOpTimeout = 200 * time.Millisecond

// limitsProbeEvery is how often, while Redis is down, a request tries it
// again; the others go straight to the local budgets.
const limitsProbeEvery = time.Second

// limitsStore is the state the three shared budgets share: whether Redis
// answers, so that its going down and coming back are one log line each.
type limitsStore struct {
	log       *slog.Logger
	setUp     func(up bool) // the gauge tokend_limits_store_up
	up        atomic.Bool
	nextProbe atomic.Int64 // unix nanoseconds; while down, Redis is tried after this
}

// sharedBudgets is a budget kept in Redis (REDIS_URL), shared by every
// replica, with this process's memory budget as the fallback while Redis
// does not answer: a guesser then gets at most one replica's own budget per
// replica, and right passwords still log in.
type sharedBudgets struct {
	remote *limits.Redis
	local  *budgets
	store  *limitsStore
}

var _ budgetTable = (*sharedBudgets)(nil)

// useRedis makes the three budgets shared through rdb (the one client of
// serve), keyed under prefix. secret keys the digests that name keys in
// Redis, so that neither a username nor an address appears there; every
// replica has the same one (derived from API_KEY_SECRET). now is nil in
// production: Redis's clock decides.
func (l *loginLimits) useRedis(rdb redis.Scripter, prefix string, secret []byte, lim Limits, now func() time.Time, log *slog.Logger, setUp func(bool)) {
	st := &limitsStore{log: log, setUp: setUp}
	st.up.Store(true)
	setUp(true)
	l.store = st
	wrap := func(name string, t budgetTable, burst int, perSecond float64) budgetTable {
		local, ok := t.(*budgets)
		if !ok || local == nil {
			return t // no limit stays no limit
		}
		return &sharedBudgets{remote: limits.NewRedis(rdb, prefix, name, secret, burst, perSecond, now), local: local, store: st}
	}
	l.requests = wrap("requests", l.requests, lim.AddrRequests, lim.AddrRequestsPerSecond)
	l.addrFails = wrap("addr_failures", l.addrFails, lim.AddrFailures, lim.AddrFailuresPerHour/3600)
	l.userFails = wrap("user_failures", l.userFails, lim.UserFailures, lim.UserFailuresPerHour/3600)
}

// limitsSecret derives the key of the Redis key digests from the API key
// secret, which every replica shares and which never leaves the process.
func limitsSecret(apiKeySecret string) []byte {
	mac := hmac.New(sha256.New, []byte(apiKeySecret))
	mac.Write([]byte("tokend login limits keys"))
	return mac.Sum(nil)
}

// remote reports whether to ask Redis: always while it answers, once a
// second while it does not.
func (s *limitsStore) remote() bool {
	if s.up.Load() {
		return true
	}
	next := s.nextProbe.Load()
	now := time.Now().UnixNano()
	return now >= next && s.nextProbe.CompareAndSwap(next, now+int64(limitsProbeEvery))
}

// result notes the outcome of a Redis call and reports whether it failed.
func (s *limitsStore) result(err error) (failed bool) {
	if err == nil {
		if s.up.CompareAndSwap(false, true) {
			s.log.Info("login limits store is answering again: the login budgets are shared by every replica")
			s.setUp(true)
		}
		return false
	}
	if s.up.CompareAndSwap(true, false) {
		s.nextProbe.Store(time.Now().Add(limitsProbeEvery).UnixNano())
		s.log.Error("login limits store is not answering: each replica enforces its own login budgets until it does", "err", err)
		s.setUp(false)
	}
	return true
}

func opContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), limitsOpTimeout)
}

func (b *sharedBudgets) take(key string) (time.Duration, bool) {
	if b.store.remote() {
		ctx, cancel := opContext()
		wait, ok, err := b.remote.Take(ctx, key)
		cancel()
		if !b.store.result(err) {
			return wait, ok
		}
	}
	return b.local.take(key)
}

func (b *sharedBudgets) locked(key string) (time.Duration, bool) {
	if b.store.remote() {
		ctx, cancel := opContext()
		wait, locked, err := b.remote.Locked(ctx, key)
		cancel()
		if !b.store.result(err) {
			return wait, locked
		}
	}
	return b.local.locked(key)
}

// begin waits, as budgets.begin does, while the events left are held by
// attempts in flight, here on any replica: it asks again every few
// milliseconds, since no replica can wake another's waiters.
func (b *sharedBudgets) begin(ctx context.Context, key string, maxWait time.Duration) (time.Duration, bool, error) {
	deadline := time.Now().Add(maxWait)
	pause := 5 * time.Millisecond
	for {
		if err := ctx.Err(); err != nil {
			return 0, false, err
		}
		if !b.store.remote() {
			return b.local.begin(ctx, key, time.Until(deadline))
		}
		opCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), limitsOpTimeout)
		wait, locked, err := b.remote.Begin(opCtx, key)
		cancel()
		if !errors.Is(err, limits.ErrBusy) {
			if b.store.result(err) {
				return b.local.begin(ctx, key, time.Until(deadline))
			}
			return wait, locked, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return 0, false, errAttemptsInFlight
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

// end charges where it can: an attempt begun in Redis that cannot end there
// is charged locally, so a failure is never free.
func (b *sharedBudgets) end(key string, failed bool) {
	if b.store.remote() {
		ctx, cancel := opContext()
		err := b.remote.End(ctx, key, failed)
		cancel()
		if !b.store.result(err) {
			return
		}
	}
	b.local.end(key, failed)
}

// reset unlocks in Redis (for every replica) and in this replica's memory.
func (b *sharedBudgets) reset(key string) bool {
	wasLocked := b.local.reset(key)
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

// idle is false: Redis cannot say cheaply that no key anywhere is locked.
func (b *sharedBudgets) idle() bool { return false }
