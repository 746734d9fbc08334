package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Authenticator checks a username and password. It returns nil when they
// match, an *Error for the client otherwise (always the same 401 for a
// wrong password and an unknown user), or an internal error.
type Authenticator interface {
	Authenticate(ctx context.Context, username, password string) error
}

// errBadCredentials is the one answer to every failed login, whatever the
// reason, so the response never tells whether a user exists.
var errBadCredentials = &Error{
	Code:    EUNAUTHORIZED,
	Message: "the username or password is wrong, or none was sent; send them as JSON {\"username\", \"password\"}, a form, or HTTP Basic auth",
}

// userStore holds the current users; a reload swaps the whole set at once,
// so a request sees either the old set or the new one, never a mix.
type userStore struct {
	users atomic.Pointer[Users]
}

func newUserStore(u *Users) *userStore {
	s := &userStore{}
	s.users.Store(u)
	return s
}

func (s *userStore) Load() *Users                      { return s.users.Load() }
func (s *userStore) Store(u *Users)                    { s.users.Store(u) }
func (s *userStore) Lookup(name string) ([]byte, bool) { return s.users.Load().Hash(name) }

// bcryptAuth checks passwords against the users' bcrypt hashes, every
// login at one cost: the highest in the users file (its target cost). An
// unknown user is checked against a dummy hash of that cost. A user whose
// hash is cheaper is checked against it, then against dummy hashes of
// costs cost, cost+1, …, target-1: bcrypt's work doubles with each step,
// so those add up to exactly the difference, 2^target - 2^cost. An unknown
// user, a wrong password and a right one then take the same time whatever
// mix of costs the file holds (htpasswd -B writes cost 5 by default,
// `tokend user add` 12), and the answer's timing tells nothing about which
// users exist or how their hashes were made.
type bcryptAuth struct {
	users *userStore
	// dummies[c] is a dummy hash of cost c, for every cost a users file
	// may hold; made once, in no time (see dummyHash).
	dummies [maxBcryptCost + 1][]byte
	// compare is checkPassword; tests count the calls through it.
	compare func(hash []byte, password string) bool
}

// newBcryptAuth returns a bcryptAuth over the users in users.
func newBcryptAuth(users *userStore) (*bcryptAuth, error) {
	a := &bcryptAuth{users: users, compare: checkPassword}
	for c := bcrypt.MinCost; c <= maxBcryptCost; c++ {
		a.dummies[c] = dummyHash(c)
	}
	return a, nil
}

// bcryptEncoding is bcrypt's own base64 alphabet, without padding.
var bcryptEncoding = base64.NewEncoding(bcryptAlphabet).WithPadding(base64.NoPadding)

// dummyHash returns a well-formed bcrypt hash of the given cost with a
// random salt and a random digest. Checking a password against it costs a
// full bcrypt at that cost and never matches (the digest belongs to no
// password anyone knows), yet making it costs nothing: generating a real
// hash runs bcrypt, which at a high cost would stall start-up or a reload
// for as long as a login takes.
func dummyHash(cost int) []byte {
	var salt [16]byte
	var digest [23]byte
	rand.Read(salt[:])
	rand.Read(digest[:])
	return fmt.Appendf(nil, "$2a$%02d$%s%s", cost, bcryptEncoding.EncodeToString(salt[:]), bcryptEncoding.EncodeToString(digest[:]))
}

// Authenticate notes in ctx why a login failed, for the metrics and the log;
// the error is errBadCredentials either way.
func (a *bcryptAuth) Authenticate(ctx context.Context, username, password string) error {
	users := a.users.Load()
	target := users.TargetCost()
	hash, ok := users.Hash(username)
	if !ok {
		a.compare(a.dummies[target], password)
		noteAuthFailure(ctx, authUnknownUser)
		return errBadCredentials
	}
	match := a.compare(hash, password)
	a.pad(hash, target, password)
	if !match {
		noteAuthFailure(ctx, authWrongPassword)
		return errBadCredentials
	}
	return nil
}

// pad spends the time a check of hash took less than one at the target
// cost, right password or wrong.
func (a *bcryptAuth) pad(hash []byte, target int, password string) {
	cost, err := bcrypt.Cost(hash)
	if err != nil {
		return // parseUsers lets no such hash in
	}
	for c := max(cost, bcrypt.MinCost); c < target; c++ {
		a.compare(a.dummies[c], password)
	}
}

// authStack is the password check tokend serves with, outermost first: the
// verification cache (which also lets identical logins share one check), the
// bcrypt slots, the charge to the login limits, bcrypt itself. NewServer puts
// the refusal of locked addresses and usernames around it, where the client
// address is known, and the request budget before the body is read.
type authStack struct {
	Authenticator
	store  *userStore
	bcrypt *bcryptAuth
	cache  *cachedAuth // nil when AUTH_CACHE_TTL is 0
	limits *loginLimits
}

// newAuthStack builds the stack for users with the given number of bcrypt
// slots (by default one fewer than the CPUs: see bcryptSlots).
func newAuthStack(cfg *Config, users *Users, slots int, now func() time.Time) (*authStack, error) {
	s := &authStack{store: newUserStore(users), limits: newLoginLimits(cfg.Limits, now)}
	var err error
	if s.bcrypt, err = newBcryptAuth(s.store); err != nil {
		return nil, err
	}
	// Charged only while it holds a slot: only a check that runs bcrypt
	// costs the budgets anything, and at most `slots` are charged at once.
	s.Authenticator = &chargedAuth{next: s.bcrypt, limits: s.limits, maxWait: cfg.BcryptMaxWait}
	s.Authenticator = newSlotAuth(s.Authenticator, slots, cfg.BcryptMaxWait)
	if cfg.AuthCacheTTL > 0 {
		s.cache = newCachedAuth(s.Authenticator, s.store, cfg.AuthCacheTTL, cfg.AuthCacheSize, now)
		s.Authenticator = s.cache
	}
	return s, nil
}

// chargesLimits tells NewServer that the stack charges these limits itself.
func (s *authStack) chargesLimits() *loginLimits { return s.limits }

// swapUsers puts u in place of the current users. changed names the users
// whose hash changed or who are gone: the cache forgets their logins.
func (s *authStack) swapUsers(u *Users, changed []string) error {
	// The target cost travels with the users (Users.TargetCost), so the
	// swap changes both at once.
	s.store.Store(u)
	if s.cache != nil {
		s.cache.forget(changed)
	}
	return nil
}
