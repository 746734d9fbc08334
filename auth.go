package main

import (
	"context"
	"crypto/rand"
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

// bcryptAuth checks passwords against the users' stored hashes, in every
// format passhash knows (bcrypt was the first). An unknown user is checked
// against a dummy hash of the same format and cost as the users' most
// common one, so that a miss takes as long as a wrong password. A store
// that cannot answer gets 503, never 401: the password may be right.
type bcryptAuth struct {
	users  userstore.Store
	limits passhash.Limits
	health *storeHealth
	dummy  atomic.Pointer[[]byte]
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
	return newStoreAuth(fileStore(store), hashesOf(store.Load()), passhash.DefaultLimits, nil)
}

// newStoreAuth returns a bcryptAuth over store, whose dummy hash follows
// sample (some of the stored hashes).
func newStoreAuth(store userstore.Store, sample []string, lim passhash.Limits, health *storeHealth) (*bcryptAuth, error) {
	if health == nil {
		health = newStoreHealth(slog.New(slog.DiscardHandler), 0)
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

// matchCost makes the dummy follow u's hashes after a reload, so that a
// reload that rehashes users keeps unknown users as slow as wrong passwords.
func (a *bcryptAuth) matchCost(u *Users) error { return a.matchHashes(hashesOf(u)) }

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

// Authenticate notes in ctx why a login failed, for the metrics and the log;
// the error is errBadCredentials either way.
func (a *bcryptAuth) Authenticate(ctx context.Context, username, password string) error {
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

// authStack is the password check tokend serves with, outermost first: the
// verification cache, the bcrypt slots, bcrypt itself. The login limits go
// around it in NewServer, where the client address is known.
type authStack struct {
	Authenticator
	store  *userStore // the users file's; empty in database mode
	bcrypt *bcryptAuth
	cache  *cachedAuth // nil when AUTH_CACHE_TTL is 0
	ready  readiness   // what /readyz asks
}

// newAuthStack builds the stack for users with the given number of bcrypt
// slots (by default one fewer than the CPUs: see bcryptSlots).
func newAuthStack(cfg *Config, users *Users, slots int, now func() time.Time) (*authStack, error) {
	s := &authStack{store: newUserStore(users)}
	s.ready = s.store
	return s.build(cfg, fileStore(s.store), hashesOf(users), nil, slots, now)
}

// newDBAuthStack builds the stack over the users in a database; sample is
// some of its hashes (for the dummy), health reports its outages.
func newDBAuthStack(cfg *Config, store userstore.Store, sample []string, health *storeHealth, slots int, now func() time.Time) (*authStack, error) {
	s := &authStack{store: newUserStore(&Users{hashes: map[string][]byte{}})}
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
	s.Authenticator = newSlotAuth(s.bcrypt, slots, cfg.BcryptMaxWait)
	if cfg.AuthCacheTTL > 0 {
		s.cache = newCachedAuth(s.Authenticator, store, cfg.AuthCacheTTL, cfg.AuthCacheSize, now)
		s.cache.unavailable = s.bcrypt.health.down
		s.Authenticator = s.cache
	}
	return s, nil
}

// swapUsers puts u in place of the current users. changed names the users
// whose hash changed or who are gone: the cache forgets their logins.
func (s *authStack) swapUsers(u *Users, changed []string) error {
	// The dummy hash follows first, so unknown users never answer
	// faster than the new hashes.
	if err := s.bcrypt.matchCost(u); err != nil {
		return err
	}
	s.store.Store(u)
	if s.cache != nil {
		s.cache.forget(changed)
	}
	return nil
}
