package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Limits bound password guessing and request floods. Each pair is a token
// bucket: the first number is how many may happen in a row, the second how
// fast the allowance comes back. A zero bucket is off; loadConfig always
// sets every one, so only tests of other concerns run without limits.
type Limits struct {
	// Failed logins per username: 10 in a row, then 90 an hour, so at
	// most 100 in any hour (OWASP ASVS 2.2.1).
	UserFailures        int
	UserFailuresPerHour float64
	// Failed logins per client address, over all usernames: bounds one
	// address trying one password on many accounts.
	AddrFailures        int
	AddrFailuresPerHour float64
	// Every POST /token per client address, right passwords included:
	// bounds a flood that the failure budgets do not see.
	AddrRequests          int
	AddrRequestsPerSecond float64
	// MaxKeys caps the entries of each of the three tables.
	MaxKeys int
}

// budgets is a table of token buckets, one per key (a username or a client
// address), bounded in size. A bucket that is full again and has no attempt
// in flight behaves exactly like a key never seen, so it can be dropped at
// any time: that is how entries expire, with no timer and no goroutine.
type budgets struct {
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

// newBudgets returns a table of buckets of burst events refilled at perSecond,
// or nil (no limit) when burst is 0.
func newBudgets(burst int, perSecond float64, max int, now func() time.Time) *budgets {
	if burst <= 0 || perSecond <= 0 {
		return nil
	}
	if max <= 0 {
		max = 1
	}
	return &budgets{limit: rate.Limit(perSecond), burst: burst, max: max, now: now,
		entries: map[string]*budget{}, ended: make(chan struct{})}
}

// take spends one event of key's budget now, or reports how long until one
// is available. It is the request budget's: every request is charged.
func (b *budgets) take(key string) (wait time.Duration, ok bool) {
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

// locked reports whether key's budget is spent by failures already charged,
// and how long until it earns an event back. Attempts in flight do not
// count: they may yet succeed, and they end in one bcrypt check, so the
// wait a refill-based answer would give is not theirs to report.
func (b *budgets) locked(key string) (wait time.Duration, locked bool) {
	if b.idle() {
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

// idle reports that the table holds no bucket: one atomic load, no lock.
func (b *budgets) idle() bool { return b == nil || b.size.Load() == 0 }

// errAttemptsInFlight is begin's answer when key's budget stayed held by
// attempts in flight for the whole wait: the server is slow, not the client
// at fault.
var errAttemptsInFlight = errors.New("the budget stayed held by attempts in flight")

// begin starts an attempt that may fail, provisionally charging it: it holds
// one event of key's budget until end. When the budget is spent by failures
// it returns locked with the wait until a refill. When the events left are
// all held by attempts in flight, it waits for one of them to end (a failure
// keeps its event, a success gives it back) for at most maxWait, then gives
// up with errAttemptsInFlight. Every begin that returns neither must be
// followed by end.
func (b *budgets) begin(ctx context.Context, key string, maxWait time.Duration) (wait time.Duration, locked bool, err error) {
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
			return 0, false, errAttemptsInFlight
		case <-ctx.Done():
			return 0, false, ctx.Err()
		}
	}
}

// end finishes an attempt begun with begin: a failure keeps the event it
// held, a success gives it back.
func (b *budgets) end(key string, failed bool) {
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

// reset forgives key's failures: its bucket is full again, as if never
// seen. Attempts in flight still end as usual. It reports whether the key
// was locked.
func (b *budgets) reset(key string) (wasLocked bool) {
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
func (b *budgets) waitFor(tokens float64) time.Duration {
	return time.Duration(tokens / float64(b.limit) * float64(time.Second))
}

// entry returns key's bucket, making room for it when the table is full.
// b.mu must be held.
func (b *budgets) entry(key string, now time.Time) *budget {
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
func (b *budgets) sweep(now time.Time) {
	b.lastSweep = now
	maps.DeleteFunc(b.entries, func(_ string, e *budget) bool {
		return e.pending == 0 && e.lim.TokensAt(now) >= float64(b.burst)
	})
}

// evict drops one bucket to make room: of a few taken at random, the one
// with the most tokens left, which forgets the least. A locked key is kept
// unless every key sampled is locked as well.
func (b *budgets) evict(now time.Time) {
	evictSampled(b.entries, func(e *budget) float64 { return e.lim.TokensAt(now) - float64(e.pending) })
}

// evictSampled deletes, of evictSample entries of m taken at random (Go's
// map order), the one whose score is highest: a bounded table makes room
// in constant time, and what it forgets is chosen, not arbitrary. The
// verification cache and the login limits both use it.
func evictSampled[K comparable, V any](m map[K]V, score func(V) float64) {
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

// budgetTable is one budget of the login limits: a token bucket per key (a
// username digest or a client address). budgets keeps them in this process's
// memory; a backend shared by several tokend processes (Redis) would
// implement the same methods, with the same meaning (see budgets' methods).
type budgetTable interface {
	take(key string) (wait time.Duration, ok bool)
	locked(key string) (wait time.Duration, locked bool)
	begin(ctx context.Context, key string, maxWait time.Duration) (wait time.Duration, locked bool, err error)
	end(key string, failed bool)
	reset(key string) (wasLocked bool)
	// idle reports that no key has spent any of its budget, so that no
	// key is locked and a check can be skipped; a backend that cannot tell
	// cheaply says false.
	idle() bool
}

var _ budgetTable = (*budgets)(nil)

// loginLimits are the three budgets of the login limits.
type loginLimits struct {
	requests  budgetTable // every POST /token, per client address
	addrFails budgetTable // failed logins, per client address
	userFails budgetTable // failed logins, per username
	// failuresOff: neither failure budget limits anything (only in tests
	// of other concerns: loadConfig always sets them).
	failuresOff bool
}

func newLoginLimits(l Limits, now func() time.Time) *loginLimits {
	addrFails := newBudgets(l.AddrFailures, l.AddrFailuresPerHour/3600, l.MaxKeys, now)
	userFails := newBudgets(l.UserFailures, l.UserFailuresPerHour/3600, l.MaxKeys, now)
	return &loginLimits{
		// A nil *budgets is a budget without limit.
		requests:    newBudgets(l.AddrRequests, l.AddrRequestsPerSecond, l.MaxKeys, now),
		addrFails:   addrFails,
		userFails:   userFails,
		failuresOff: addrFails == nil && userFails == nil,
	}
}

// limitRequests answers 429 to a client address past its request budget,
// before the body is read.
func (l *loginLimits) limitRequests(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if wait, ok := l.requests.take(clientKeyFrom(r.Context())); !ok {
				writeError(w, r, log, tooMany(wait, "too many requests from your address"))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// guard returns auth behind the failed-login budgets of the client address
// (from the request's context) and of the username. A locked address or
// username is refused before anything else. When auth charges the budgets
// itself, at the bcrypt check (an authStack built with these limits), that is
// all the guard does; any other auth is charged around the whole call.
func (l *loginLimits) guard(auth Authenticator, maxWait time.Duration) Authenticator {
	if l.failuresOff {
		return auth
	}
	if c, ok := auth.(interface{ chargesLimits() *loginLimits }); !ok || c.chargesLimits() != l {
		auth = &chargedAuth{next: auth, limits: l, maxWait: maxWait}
	}
	return &guardedAuth{next: auth, limits: l}
}

// guardedAuth refuses a login whose client address or username is locked:
// its budget of failed logins is spent by failures already charged. A locked
// address or username gets 429 whatever the password: answering a right
// password while locked would tell the guesser which one is right and make
// the lock useless. It charges nothing itself: see chargedAuth.
type guardedAuth struct {
	next   Authenticator
	limits *loginLimits
}

func (g *guardedAuth) Authenticate(ctx context.Context, username, password string) error {
	if err := g.limits.refuseLocked(clientKeyFrom(ctx), username); err != nil {
		return err
	}
	return g.next.Authenticate(ctx, username, password)
}

// refuseLocked is the 429 for a locked address or username, or nil.
func (l *loginLimits) refuseLocked(addr, username string) error {
	if wait, locked := l.addrFails.locked(addr); locked {
		return &addrLockedError{addr: addr, err: tooMany(wait, msgAddrLocked)}
	}
	if l.userFails.idle() {
		return nil // no username has failed: no digest to take
	}
	if wait, locked := l.userFails.locked(userKey(username)); locked {
		return tooMany(wait, msgUserLocked)
	}
	return nil
}

const (
	msgAddrLocked = "too many failed logins from your address"
	msgUserLocked = "too many failed logins for this username"
)

// addrLockedError is the 429 of a locked client address. It names the
// address, so that a login sharing another's check (sharedAuth) can tell a
// refusal of the other's address from one of its own.
type addrLockedError struct {
	addr string
	err  error
}

func (e *addrLockedError) Error() string { return e.err.Error() }
func (e *addrLockedError) Unwrap() error { return e.err }

// chargedAuth charges a password check against the failed-login budgets of
// the client address and the username while it runs, and keeps the charge
// only if the check fails. In the auth stack it sits inside the bcrypt slots,
// so only a check that costs a bcrypt is charged (never a cached login), and
// at most BCRYPT_SLOTS checks are in flight at once. An attempt that finds
// the budget's last events held by checks in flight waits for them to end
// (at most maxWait), so a right password is refused only for failures
// already counted, never for attempts that may yet succeed.
type chargedAuth struct {
	next    Authenticator
	limits  *loginLimits
	maxWait time.Duration
}

func (c *chargedAuth) Authenticate(ctx context.Context, username, password string) (err error) {
	addr, user := clientKeyFrom(ctx), userKey(username)
	if locked, err := c.begin(ctx, c.limits.addrFails, addr, msgAddrLocked); err != nil {
		if locked {
			return &addrLockedError{addr: addr, err: err}
		}
		return err
	}
	if _, err := c.begin(ctx, c.limits.userFails, user, msgUserLocked); err != nil {
		c.limits.addrFails.end(addr, false)
		return err
	}
	defer func() {
		// Only a wrong password or unknown user is a failure; a busy
		// server (503) or an internal fault is not the client's guess.
		failed := errors.Is(err, errBadCredentials)
		c.limits.userFails.end(user, failed)
		c.limits.addrFails.end(addr, failed)
	}()
	return c.next.Authenticate(ctx, username, password)
}

// begin begins an attempt on key's budget in b, or returns the refusal:
// locked (429) for a budget spent by failures, or 503 when checks in flight
// held it for the whole wait.
func (c *chargedAuth) begin(ctx context.Context, b budgetTable, key, what string) (locked bool, err error) {
	wait, locked, err := b.begin(ctx, key, c.maxWait)
	switch {
	case locked:
		return true, tooMany(wait, what)
	case errors.Is(err, errAttemptsInFlight):
		return false, retryLater(EUNAVAILABLE, c.maxWait, "the server is busy checking other logins for this account or address")
	case err != nil:
		return false, Errorf(ECANCELED, "the client closed the request while it waited for other logins to be checked")
	}
	return false, nil
}

// userKey is the limiter key of a username: a digest, so that a flood of
// 60 KiB usernames costs the table no more than short ones.
func userKey(username string) string {
	sum := sha256.Sum256([]byte(username))
	return string(sum[:])
}

// clientKeyFrom returns the limiter key of the request's client address
// (the one observe found), made once per request however many limits ask.
func clientKeyFrom(ctx context.Context) string {
	rl := requestLogFrom(ctx)
	if rl == nil {
		return addrKey(netip.Addr{})
	}
	if rl.clientKey == "" {
		rl.clientKey = addrKey(rl.client)
	}
	return rl.clientKey
}

// addrKey is the limiter key of a client address. An IPv6 client is keyed
// by its /64, the least a site is given, so that one host cannot pick a new
// address for every request.
func addrKey(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return "unknown"
	case a.Is6():
		p, _ := a.Prefix(64)
		return p.String()
	default:
		return a.String()
	}
}

// retrySeconds is a wait as Retry-After wants it: whole seconds, at least 1.
func retrySeconds(d time.Duration) int {
	s := int(math.Ceil(d.Seconds()))
	if s < 1 {
		return 1
	}
	return s
}

// retryLater is an error of code whose detail and Retry-After say how long
// to wait.
func retryLater(code string, wait time.Duration, what string) error {
	s := retrySeconds(wait)
	unit := "seconds"
	if s == 1 {
		unit = "second"
	}
	e := Errorf(code, "%s; try again in %d %s", what, s, unit)
	e.RetryAfter = time.Duration(s) * time.Second
	return e
}

// tooMany is a 429 whose detail says how long to wait.
func tooMany(wait time.Duration, what string) error {
	return retryLater(ETOOMANY, wait, what)
}
