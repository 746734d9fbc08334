package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash"
	"maps"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"tokend/internal/limits"
	userstore "tokend/internal/users"
)

// cachedAuth remembers logins that bcrypt has verified, in the manner of
// Apache's mod_authn_socache, so that a client refreshing its token does
// not pay for bcrypt every time. It keeps no password: an entry's key is
// HMAC-SHA256(per-process random key, username, password), useless without
// the key, which never leaves memory. Only the same username with the same
// password hits; anything else goes to bcrypt as before.
type cachedAuth struct {
	next  Authenticator
	users userstore.Store
	// file, in users-file mode, is read directly: a cached login then
	// costs no allocation (users.Lookup returns a copy of the hash).
	file *userStore
	// unavailable answers a login whose user could not be looked up
	// (the database is down); nil: such a login goes on to next.
	unavailable func(error) error
	ttl         time.Duration
	max         int
	now         func() time.Time
	macs        sync.Pool // of *keyedMAC
	// flights share one check among identical logins that miss at once.
	flights singleflight.Group

	mu        sync.Mutex
	entries   map[[sha256.Size]byte]cacheEntry
	lastSweep time.Time
}

type cacheEntry struct {
	user string
	// hash is the user's bcrypt hash the password was checked against. A
	// hit needs it to still be the user's hash, so an entry made by a check
	// that raced with a reload can never outlive the password it proved.
	hash    []byte
	expires time.Time
}

// newCachedAuth returns next behind a verification cache of at most max
// entries, each kept for ttl.
func newCachedAuth(next Authenticator, users userstore.Store, ttl time.Duration, max int, now func() time.Time) *cachedAuth {
	key := make([]byte, 32)
	rand.Read(key) // never returns an error; it crashes the program if it cannot read
	if max < 1 {
		max = 1
	}
	c := &cachedAuth{next: next, users: users, ttl: ttl, max: max, now: now, entries: map[[sha256.Size]byte]cacheEntry{}}
	c.macs.New = func() any { return &keyedMAC{mac: hmac.New(sha256.New, key), buf: make([]byte, 0, 256)} }
	return c
}

func (c *cachedAuth) Authenticate(ctx context.Context, username, password string) error {
	// Looked up before the check, every time: see cacheEntry.hash. In
	// database mode this one indexed query is what a cached login costs,
	// and what ends a changed or removed password at once.
	var hash []byte
	var known bool
	if c.file != nil {
		hash, known = c.file.Load().Hash(username)
	} else {
		stored, err := c.users.Lookup(ctx, username)
		if err != nil && !errors.Is(err, userstore.ErrNotFound) && c.unavailable != nil && ctx.Err() == nil {
			return c.unavailable(err)
		}
		known, hash = err == nil, []byte(stored)
	}
	key := c.digest(username, password)
	if known && c.hit(key, hash) {
		return nil
	}
	return c.shared(ctx, key, hash, known, username, password)
}

// shared runs the check of a login the cache missed, once for every login
// with the same username and password that misses while it runs: they wait
// for it and share its answer, so 48 identical logins cost one bcrypt. The
// flight is keyed by the entry key, never by the password.
//
// The check runs on behalf of every login sharing it, so no one client's
// going away cancels it (it is bounded by BCRYPT_MAX_WAIT and one bcrypt);
// each login still stops waiting when its own client goes. The check is
// charged to the login limits once, against the address of the login that
// started it: identical guesses are one guess.
func (c *cachedAuth) shared(ctx context.Context, key [sha256.Size]byte, hash []byte, known bool, username, password string) error {
	// Read here, in the request's goroutine: the check runs in another.
	// The key is all the limits read of the client address.
	clientKey := clientKeyFrom(ctx)
	for try := 0; ; try++ {
		ch := c.flights.DoChan(string(key[:]), func() (any, error) {
			// A login that missed the cache just as the check before it
			// ended finds its entry here instead of checking again.
			if known && c.hit(key, hash) {
				return "", nil
			}
			// The check notes why it failed in a record of its own, which
			// every login sharing it copies into its own.
			rl := &requestLog{clientKey: clientKey}
			checkCtx := context.WithValue(context.WithoutCancel(ctx), requestLogKey{}, rl)
			err := c.next.Authenticate(checkCtx, username, password)
			if err == nil && known {
				c.put(key, username, hash)
			}
			return rl.authFailure, err
		})
		var res singleflight.Result
		select {
		case res = <-ch:
		case <-ctx.Done():
			return Errorf(ECANCELED, "the client closed the request while its login was checked")
		}
		// A check started from another address that is locked says
		// nothing about this login's own address: check again, once
		// more than the checks that could be in the way.
		var al *addrLockedError
		if res.Shared && errors.As(res.Err, &al) && al.addr != clientKey && try < 2 {
			continue
		}
		if reason, _ := res.Val.(string); reason != "" {
			noteAuthFailure(ctx, reason)
		}
		return res.Err
	}
}

// digest is the entry key: the username's length comes first, so that no
// other split of the same bytes into username and password collides.
func (c *cachedAuth) digest(username, password string) [sha256.Size]byte {
	m := c.macs.Get().(*keyedMAC)
	defer c.macs.Put(m)
	m.mac.Reset()
	// One Write of a reused buffer: converting the strings to []byte for
	// the hash.Hash interface would allocate twice a login.
	m.buf = binary.BigEndian.AppendUint32(m.buf[:0], uint32(len(username)))
	m.buf = append(m.buf, username...)
	m.buf = append(m.buf, password...)
	m.mac.Write(m.buf)
	clear(m.buf) // the password does not stay in the pool
	var out [sha256.Size]byte
	copy(out[:], m.mac.Sum(m.sum[:0])) // into m.sum: out would escape to the heap
	return out
}

// keyedMAC is a pooled HMAC keyed with the process's key, and its input
// buffer.
type keyedMAC struct {
	mac hash.Hash
	buf []byte
	sum [sha256.Size]byte
}

func (c *cachedAuth) hit(key [sha256.Size]byte, hash []byte) bool {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return false
	}
	if !now.Before(e.expires) || !bytes.Equal(e.hash, hash) {
		delete(c.entries, key)
		return false
	}
	return true
}

// put remembers that username's password under key was checked against
// hash, for ttl from now: the one reading of the clock dates the entry and
// decides which entries have expired.
func (c *cachedAuth) put(key [sha256.Size]byte, username string, hash []byte) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.max {
		c.makeRoom(now)
	}
	c.entries[key] = cacheEntry{user: username, hash: hash, expires: now.Add(c.ttl)}
}

// sweepCacheEvery is how often, at most, makeRoom reads every entry of a
// full cache: between sweeps a new login evicts one entry instead.
const sweepCacheEvery = time.Second

// makeRoom drops the expired entries (at most once a second, since it reads
// them all) and, if the cache is still full, the entry that expires first
// of a few taken at random. c.mu must be held.
func (c *cachedAuth) makeRoom(now time.Time) {
	if now.Sub(c.lastSweep) >= sweepCacheEvery {
		c.lastSweep = now
		maps.DeleteFunc(c.entries, func(_ [sha256.Size]byte, e cacheEntry) bool { return !now.Before(e.expires) })
	}
	if len(c.entries) < c.max {
		return
	}
	// The soonest to expire goes first.
	limits.EvictSampled(c.entries, func(e cacheEntry) float64 { return -float64(e.expires.UnixNano()) })
}

// forget drops every entry of the named users, whose hash changed or who
// were removed from the users file.
func (c *cachedAuth) forget(names []string) {
	if len(names) == 0 {
		return
	}
	gone := make(map[string]bool, len(names))
	for _, n := range names {
		gone[n] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	maps.DeleteFunc(c.entries, func(_ [sha256.Size]byte, e cacheEntry) bool { return gone[e.user] })
}
