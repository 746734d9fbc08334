package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	"tokend/internal/passhash"
	userstore "tokend/internal/users"
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

func (s *userStore) Load() *Users   { return s.users.Load() }
func (s *userStore) Store(u *Users) { s.users.Store(u) }

// Lookup returns name's hash in the current users, for sessions' renewals.
func (s *userStore) Lookup(name string) ([]byte, bool) { return s.users.Load().Hash(name) }

// bcryptAuth checks passwords against the users' stored hashes, in every
// format passhash knows (bcrypt was the first). A store that cannot answer
// gets 503, never 401: the password may be right.
//
// Over the users file (file non-nil) every login costs one check at one
// cost: the highest in the file (its target cost). An unknown user is
// checked against a dummy hash of that cost. A user whose hash is cheaper
// is checked against it, then against dummy hashes of costs cost, cost+1,
// …, target-1: bcrypt's work doubles with each step, so those add up to
// exactly the difference, 2^target - 2^cost. An unknown user, a wrong
// password and a right one then take the same time whatever mix of costs
// the file holds (htpasswd -B writes cost 5 by default, `tokend user add`
// 12), and the answer's timing tells nothing about which users exist or
// how their hashes were made.
//
// Over a database, an unknown user is checked against a dummy hash of the
// same format and cost as the users' most common one, so that a miss takes
// as long as a wrong password.
type bcryptAuth struct {
	users  userstore.Store
	limits passhash.Limits
	health *storeHealth
	dummy  atomic.Pointer[[]byte]
	// file is the users file's users in file mode; nil over a database.
	file *userStore
	// dummies[c] is a dummy hash of cost c, for every cost a users file
	// may hold; made once, in no time (see dummyHash). File mode only.
	dummies [maxBcryptCost + 1][]byte
	// compare verifies a password; tests count the calls through it.
	compare func(hash []byte, password string) bool
	// shapes, in database mode, counts the shapes of the sample and of
	// the hashes of users who log in, so the dummy follows them even
	// without a sample; nil for the users file, whose reloads bring every
	// hash.
	shapes *shapeTally
}

// shapeTally counts hash shapes (passhash.Shape) seen, at most maxShapes
// of them, so a table of odd hashes cannot grow it.
type shapeTally struct {
	mu      sync.Mutex
	counts  map[string]int
	current string // the dummy's shape
}

const maxShapes = 32

// learn counts hash's shape and returns it when it has just become the most
// common and is not the dummy's, so the caller makes a new dummy; else "".
func (t *shapeTally) learn(shape string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.counts[shape]; !ok && len(t.counts) >= maxShapes {
		return ""
	}
	t.counts[shape]++
	if shape == t.current || t.counts[shape] <= t.counts[t.current] {
		return ""
	}
	t.current = shape
	return shape
}

// newBcryptAuth returns a bcryptAuth over the users file's users.
func newBcryptAuth(store *userStore) (*bcryptAuth, error) {
	a, err := newStoreAuth(fileStore(store), hashesOf(store.Load()), passhash.DefaultLimits, nil)
	if err != nil {
		return nil, err
	}
	a.useFile(store)
	return a, nil
}

// newStoreAuth returns a bcryptAuth over store, whose dummy hash follows
// sample (some of the stored hashes).
func newStoreAuth(store userstore.Store, sample []string, lim passhash.Limits, health *storeHealth) (*bcryptAuth, error) {
	if health == nil {
		health = newStoreHealth(slog.New(slog.DiscardHandler))
	}
	a := &bcryptAuth{users: store, limits: lim, health: health}
	a.compare = func(hash []byte, password string) bool {
		ok, _ := passhash.Verify(string(hash), []byte(password), a.limits)
		return ok
	}
	if err := a.matchHashes(sample); err != nil {
		return nil, err
	}
	if _, file := store.(*userstore.File); !file {
		a.shapes = &shapeTally{counts: map[string]int{}, current: passhash.Shape(string(*a.dummy.Load()))}
		for _, h := range sample {
			if passhash.Check(h, lim) == nil {
				a.shapes.counts[passhash.Shape(h)]++
			}
		}
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

// fileStore is the users file as a users.Store.
func fileStore(s *userStore) userstore.Store {
	return userstore.NewFile(func() userstore.Table { return s.Load() })
}

// hashesOf returns every hash of u.
func hashesOf(u *Users) []string {
	var out []string
	for _, name := range u.Names() {
		h, _ := u.Hash(name)
		out = append(out, string(h))
	}
	return out
}

// matchHashes makes a new dummy hash when the most common shape (format and
// cost) among sample is not the dummy's. With no sample, the dummy is bcrypt
// at the cost `tokend user add` uses.
func (a *bcryptAuth) matchHashes(sample []string) error {
	count := map[string]int{}
	example := map[string]string{}
	for _, h := range sample {
		if passhash.Check(h, a.limits) != nil {
			continue
		}
		shape := passhash.Shape(h)
		count[shape]++
		example[shape] = h
	}
	best := ""
	for shape, n := range count {
		if n > count[best] || n == count[best] && shape > best {
			best = shape
		}
	}
	if d := a.dummy.Load(); d != nil && (best == "" || passhash.Shape(string(*d)) == best) {
		return nil
	}
	var dummy []byte
	var err error
	if best == "" {
		dummy, err = bcrypt.GenerateFromPassword([]byte(rand.Text()), userCost)
	} else {
		var d string
		d, err = passhash.DummyLike(example[best], a.limits)
		dummy = []byte(d)
	}
	if err != nil {
		return fmt.Errorf("dummy hash: %w", err)
	}
	a.dummy.Store(&dummy)
	return nil
}

// useFile puts a in users-file mode over store: see bcryptAuth.
func (a *bcryptAuth) useFile(store *userStore) {
	a.file = store
	for c := bcrypt.MinCost; c <= maxBcryptCost; c++ {
		a.dummies[c] = dummyHash(c)
	}
}

// Authenticate notes in ctx why a login failed, for the metrics and the log;
// the error is errBadCredentials either way.
func (a *bcryptAuth) Authenticate(ctx context.Context, username, password string) error {
	if a.file != nil {
		return a.authenticateFile(ctx, username, password)
	}
	hash, err := a.users.Lookup(ctx, username)
	switch {
	case errors.Is(err, userstore.ErrNotFound):
		a.health.up()
		a.compare(*a.dummy.Load(), password)
		noteAuthFailure(ctx, authUnknownUser)
		return errBadCredentials
	case err != nil && ctx.Err() != nil:
		return Errorf(ECANCELED, "the client closed the request while its user was looked up")
	case err != nil:
		return a.health.down(err)
	}
	a.health.up()
	if err := passhash.Check(hash, a.limits); err != nil {
		// As slow as any other refusal, and the same answer: the user
		// exists but cannot log in until the hash is one tokend knows.
		a.compare(*a.dummy.Load(), password)
		a.health.unusable(username, hash, err)
		noteAuthFailure(ctx, authWrongPassword)
		return errBadCredentials
	}
	if !a.compare([]byte(hash), password) {
		noteAuthFailure(ctx, authWrongPassword)
		return errBadCredentials
	}
	// Only right passwords count: a guesser cannot steer the dummy by
	// hammering one account's wrong passwords.
	if a.shapes != nil && a.shapes.learn(passhash.Shape(hash)) != "" {
		// Once per change of the most common shape: one hash's work.
		if d, err := passhash.DummyLike(hash, a.limits); err == nil {
			dummy := []byte(d)
			a.dummy.Store(&dummy)
		}
	}
	return nil
}

// authenticateFile is Authenticate over the users file: one check at the
// file's target cost for every login (see bcryptAuth).
func (a *bcryptAuth) authenticateFile(ctx context.Context, username, password string) error {
	users := a.file.Load()
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
	store  *userStore // the users file's; empty in database mode
	bcrypt *bcryptAuth
	cache  *cachedAuth // nil when AUTH_CACHE_TTL is 0
	limits *loginLimits
	ready  readiness // what /readyz asks
}

// newAuthStack builds the stack for users with the given number of bcrypt
// slots (by default one fewer than the CPUs: see bcryptSlots).
func newAuthStack(cfg *Config, users *Users, slots int, now func() time.Time) (*authStack, error) {
	s := &authStack{store: newUserStore(users), limits: newLoginLimits(cfg.Limits, now)}
	s.ready = s.store
	return s.build(cfg, fileStore(s.store), hashesOf(users), nil, slots, now)
}

// newDBAuthStack builds the stack over the users in a database; sample is
// some of its hashes (for the dummy), health reports its outages.
func newDBAuthStack(cfg *Config, store userstore.Store, sample []string, health *storeHealth, slots int, now func() time.Time) (*authStack, error) {
	s := &authStack{store: newUserStore(&Users{hashes: map[string][]byte{}}), limits: newLoginLimits(cfg.Limits, now)}
	s.ready = &storeReadiness{store: store, health: health, timeout: cfg.UsersDB.QueryTimeout}
	return s.build(cfg, store, sample, health, slots, now)
}

func (s *authStack) build(cfg *Config, store userstore.Store, sample []string, health *storeHealth, slots int, now func() time.Time) (*authStack, error) {
	lim := cfg.HashLimits
	if lim == (passhash.Limits{}) {
		lim = passhash.DefaultLimits
	}
	var err error
	if s.bcrypt, err = newStoreAuth(store, sample, lim, health); err != nil {
		return nil, err
	}
	_, fileMode := store.(*userstore.File)
	if fileMode {
		s.bcrypt.useFile(s.store)
	}
	// Charged only while it holds a slot: only a check that runs bcrypt
	// costs the budgets anything, and at most `slots` are charged at once.
	s.Authenticator = &chargedAuth{next: s.bcrypt, limits: s.limits, maxWait: cfg.BcryptMaxWait}
	s.Authenticator = newSlotAuth(s.Authenticator, slots, cfg.BcryptMaxWait)
	if cfg.AuthCacheTTL > 0 {
		s.cache = newCachedAuth(s.Authenticator, store, cfg.AuthCacheTTL, cfg.AuthCacheSize, now)
		s.cache.unavailable = s.bcrypt.health.down
		if fileMode {
			s.cache.file = s.store
		}
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
