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
	// unavailable answers a login whose user could not be looked up
	// (the database is down); nil: such a login goes on to next.
	unavailable func(error) error
	ttl         time.Duration
	max         int
	now         func() time.Time
	macs        sync.Pool // of hash.Hash keyed with the process's key

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
	c.macs.New = func() any { return hmac.New(sha256.New, key) }
	return c
}

func (c *cachedAuth) Authenticate(ctx context.Context, username, password string) error {
	// Looked up before the check, every time: see cacheEntry.hash. In
	// database mode this one indexed query is what a cached login costs,
	// and what ends a changed or removed password at once.
	stored, err := c.users.Lookup(ctx, username)
	if err != nil && !errors.Is(err, userstore.ErrNotFound) && c.unavailable != nil && ctx.Err() == nil {
		return c.unavailable(err)
	}
	known, hash := err == nil, []byte(stored)
	key := c.digest(username, password)
	if known && c.hit(key, hash) {
		return nil
	}
	err = c.next.Authenticate(ctx, username, password)
	if err == nil && known {
		c.put(key, cacheEntry{user: username, hash: hash, expires: c.now().Add(c.ttl)})
	}
	return err
}

// digest is the entry key: the username's length comes first, so that no
// other split of the same bytes into username and password collides.
func (c *cachedAuth) digest(username, password string) [sha256.Size]byte {
	mac := c.macs.Get().(hash.Hash)
	defer c.macs.Put(mac)
	mac.Reset()
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(username)))
	mac.Write(n[:])
	mac.Write([]byte(username))
	mac.Write([]byte(password))
	var out [sha256.Size]byte
	mac.Sum(out[:0])
	return out
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

func (c *cachedAuth) put(key [sha256.Size]byte, e cacheEntry) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.max {
		c.makeRoom(now)
	}
	c.entries[key] = e
}

// makeRoom drops the expired entries (at most once a second, since it reads
// them all) and, if the cache is still full, the entry that expires first
// of a few taken at random. c.mu must be held.
func (c *cachedAuth) makeRoom(now time.Time) {
	if now.Sub(c.lastSweep) >= sweepFullEvery {
		c.lastSweep = now
		maps.DeleteFunc(c.entries, func(_ [sha256.Size]byte, e cacheEntry) bool { return !now.Before(e.expires) })
	}
	if len(c.entries) < c.max {
		return
	}
	// The soonest to expire goes first.
	evictSampled(c.entries, func(e cacheEntry) float64 { return -float64(e.expires.UnixNano()) })
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
