package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"time"

	"tokend/internal/limits"
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

// loginLimits are the three budgets of the login limits, each a
// limits.Memory, or a limits.Shared once useRedis shares them.
type loginLimits struct {
	requests  limits.Table // every POST /token, per client address
	addrFails limits.Table // failed logins, per client address
	userFails limits.Table // failed logins, per username
	// failuresOff: neither failure budget limits anything (only in tests
	// of other concerns: loadConfig always sets them).
	failuresOff bool
	// store is set when the budgets are shared through Redis (useRedis).
	store     *limits.Store
	pingStore func(context.Context) error
}

func newLoginLimits(l Limits, now func() time.Time) *loginLimits {
	addrFails := limits.NewMemory(l.AddrFailures, l.AddrFailuresPerHour/3600, l.MaxKeys, now)
	userFails := limits.NewMemory(l.UserFailures, l.UserFailuresPerHour/3600, l.MaxKeys, now)
	return &loginLimits{
		// A nil *limits.Memory is a budget without limit.
		requests:    limits.NewMemory(l.AddrRequests, l.AddrRequestsPerSecond, l.MaxKeys, now),
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
			if wait, ok := l.requests.Take(clientKeyFrom(r.Context())); !ok {
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
	if wait, locked := l.addrFails.Locked(addr); locked {
		return &addrLockedError{addr: addr, err: tooMany(wait, msgAddrLocked)}
	}
	if l.userFails.Idle() {
		return nil // no username has failed: no digest to take
	}
	if wait, locked := l.userFails.Locked(userKey(username)); locked {
		return tooMany(wait, msgUserLocked)
	}
	return nil
}

const (
	msgAddrLocked = "too many failed logins from your address"
	msgUserLocked = "too many failed logins for this username"
)

// addrLockedError is the 429 of a locked client address. It names the
// address, so that a login sharing another's check (cachedAuth.shared) can
// tell a refusal of the other's address from one of its own.
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
		c.limits.addrFails.End(addr, false)
		return err
	}
	defer func() {
		// Only a wrong password or unknown user is a failure; a busy
		// server (503) or an internal fault is not the client's guess.
		failed := errors.Is(err, errBadCredentials)
		c.limits.userFails.End(user, failed)
		c.limits.addrFails.End(addr, failed)
	}()
	return c.next.Authenticate(ctx, username, password)
}

// begin begins an attempt on key's budget in b, or returns the refusal:
// locked (429) for a budget spent by failures, or 503 when checks in flight
// held it for the whole wait.
func (c *chargedAuth) begin(ctx context.Context, b limits.Table, key, what string) (locked bool, err error) {
	wait, locked, err := b.Begin(ctx, key, c.maxWait)
	switch {
	case locked:
		return true, tooMany(wait, what)
	case errors.Is(err, limits.ErrAttemptsInFlight):
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
