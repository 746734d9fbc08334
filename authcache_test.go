package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// countingStack is the auth stack over cheap hashes, counting bcrypt calls.
type countingStack struct {
	*authStack
	calls int // read only while no check runs
	clock *testClock
}

func newCountingStack(t *testing.T, ttl time.Duration, size int, logins map[string]string) *countingStack {
	t.Helper()
	s := &countingStack{clock: newTestClock()}
	cfg := &Config{AuthCacheTTL: ttl, AuthCacheSize: size, BcryptMaxWait: time.Second}
	var err error
	s.authStack, err = newAuthStack(cfg, testUsers(t, logins).Load(), 1, s.clock.now)
	if err != nil {
		t.Fatal(err)
	}
	s.bcrypt.compare = func(hash []byte, password string) bool {
		s.calls++
		return checkPassword(hash, password)
	}
	return s
}

type loginStep struct {
	advance   time.Duration
	user      string
	pass      string
	wantErr   error
	wantCalls int // bcrypt calls so far
}

func (s *countingStack) run(t *testing.T, steps []loginStep) {
	t.Helper()
	for i, st := range steps {
		s.clock.advance(st.advance)
		err := s.Authenticate(context.Background(), st.user, st.pass)
		if err != st.wantErr || s.calls != st.wantCalls {
			t.Fatalf("step %d (%s/%s): err %v, %d bcrypt calls; want %v, %d", i, st.user, st.pass, err, s.calls, st.wantErr, st.wantCalls)
		}
	}
}

// TestCacheSkipsBcrypt: the same username and password skip bcrypt until
// the entry expires; any other password, a failure, or an unknown user
// goes through bcrypt.
func TestCacheSkipsBcrypt(t *testing.T) {
	s := newCountingStack(t, 5*time.Minute, 100, map[string]string{"alice": "correct horse", "bob": "battery staple"})
	s.run(t, []loginStep{
		{user: "alice", pass: "correct horse", wantCalls: 1},
		{user: "alice", pass: "correct horse", wantCalls: 1},
		{user: "alice", pass: "correct horse", wantCalls: 1},
		{user: "alice", pass: "correct horsf", wantErr: errBadCredentials, wantCalls: 2},
		{user: "alice", pass: "correct hors", wantErr: errBadCredentials, wantCalls: 3},
		{user: "alice", pass: "wrong", wantErr: errBadCredentials, wantCalls: 4},
		{user: "alice", pass: "wrong", wantErr: errBadCredentials, wantCalls: 5}, // failures are not cached
		{user: "bob", pass: "correct horse", wantErr: errBadCredentials, wantCalls: 6},
		{user: "mallory", pass: "correct horse", wantErr: errBadCredentials, wantCalls: 7},
		{user: "alice", pass: "correct horse", wantCalls: 7},
		{advance: 5*time.Minute - time.Second, user: "alice", pass: "correct horse", wantCalls: 7},
		{advance: time.Second, user: "alice", pass: "correct horse", wantCalls: 8}, // expired
		{user: "alice", pass: "correct horse", wantCalls: 8},
	})
}

// TestCacheOff: AUTH_CACHE_TTL=0 checks every login with bcrypt.
func TestCacheOff(t *testing.T) {
	s := newCountingStack(t, 0, 100, map[string]string{"alice": "correct horse"})
	if s.cache != nil {
		t.Fatal("a cache with a TTL of 0")
	}
	s.run(t, []loginStep{
		{user: "alice", pass: "correct horse", wantCalls: 1},
		{user: "alice", pass: "correct horse", wantCalls: 2},
	})
}

// TestCacheForgetsChangedUsers: a reload that changes a user's hash or
// removes them drops their entries; other users' entries stay.
func TestCacheForgetsChangedUsers(t *testing.T) {
	s := newCountingStack(t, 5*time.Minute, 100, map[string]string{"alice": "correct horse", "bob": "battery staple", "carol": "staple"})
	s.run(t, []loginStep{
		{user: "alice", pass: "correct horse", wantCalls: 1},
		{user: "bob", pass: "battery staple", wantCalls: 2},
		{user: "carol", pass: "staple", wantCalls: 3},
	})
	next := testUsers(t, map[string]string{"alice": "new password", "carol": "staple"}).Load()
	// Carol's hash is new too (a fresh salt), as if `tokend user add
	// carol` set the same password again.
	next.hashes["carol"], _ = s.store.Load().Hash("carol")
	added, changed := diffUsers(s.store.Load(), next)
	if added != 0 || fmt.Sprint(changed) != "[alice bob]" {
		t.Fatalf("diff: added %d changed %v", added, changed)
	}
	if err := s.swapUsers(next, changed); err != nil {
		t.Fatal(err)
	}
	if n := s.cache.len(); n != 1 {
		t.Errorf("%d entries after the reload, want carol's only", n)
	}
	s.run(t, []loginStep{
		{user: "alice", pass: "correct horse", wantErr: errBadCredentials, wantCalls: 4},
		{user: "alice", pass: "new password", wantCalls: 5},
		{user: "bob", pass: "battery staple", wantErr: errBadCredentials, wantCalls: 6},
		{user: "carol", pass: "staple", wantCalls: 6},
	})
}

// TestCacheEntryBoundToHash: even an entry the reload did not drop (a check
// that finished after it) cannot prove a password the file no longer has.
func TestCacheEntryBoundToHash(t *testing.T) {
	s := newCountingStack(t, 5*time.Minute, 100, map[string]string{"alice": "correct horse"})
	s.run(t, []loginStep{{user: "alice", pass: "correct horse", wantCalls: 1}})
	s.store.Store(testUsers(t, map[string]string{"alice": "new password"}).Load()) // no forget
	s.run(t, []loginStep{
		{user: "alice", pass: "correct horse", wantErr: errBadCredentials, wantCalls: 2},
		{user: "alice", pass: "new password", wantCalls: 3},
		{user: "alice", pass: "new password", wantCalls: 3},
	})
}

// TestCacheBounded: the cache never holds more than its size.
func TestCacheBounded(t *testing.T) {
	logins := map[string]string{}
	for i := range 20 {
		logins[fmt.Sprintf("user%d", i)] = "pw"
	}
	s := newCountingStack(t, 5*time.Minute, 5, logins)
	for i := range 20 {
		s.clock.advance(time.Second)
		if err := s.Authenticate(context.Background(), fmt.Sprintf("user%d", i), "pw"); err != nil {
			t.Fatal(err)
		}
		if n := s.cache.len(); n > 5 {
			t.Fatalf("%d entries, size 5", n)
		}
	}
	// The most recent logins are kept in preference to the oldest.
	before := s.calls
	if err := s.Authenticate(context.Background(), "user19", "pw"); err != nil || s.calls != before {
		t.Errorf("the newest entry was evicted: %v, %d calls", err, s.calls-before)
	}
}

// TestCacheDigest: the entry key separates username from password.
func TestCacheDigest(t *testing.T) {
	c := newCachedAuth(nil, nil, time.Minute, 1, time.Now)
	if c.digest("ab", "c") == c.digest("a", "bc") {
		t.Error("digest(ab, c) == digest(a, bc)")
	}
	if first, again := c.digest("a", "b"), c.digest("a", "b"); first != again {
		t.Error("digest is not stable")
	}
	if newCachedAuth(nil, nil, time.Minute, 1, time.Now).digest("a", "b") == c.digest("a", "b") {
		t.Error("two caches share a key")
	}
}

// TestUnknownUserCostsABcrypt: an unknown user is checked against a dummy
// hash of the users' cost, so it takes a bcrypt like a wrong password.
func TestUnknownUserCostsABcrypt(t *testing.T) {
	s := newCountingStack(t, 5*time.Minute, 100, map[string]string{"alice": "correct horse"})
	var hashes [][]byte
	s.bcrypt.compare = func(hash []byte, password string) bool {
		hashes = append(hashes, hash)
		return checkPassword(hash, password)
	}
	for _, user := range []string{"mallory", "alice"} {
		if err := s.Authenticate(context.Background(), user, "guess"); err != errBadCredentials {
			t.Fatalf("%s: %v", user, err)
		}
	}
	if len(hashes) != 2 {
		t.Fatalf("%d bcrypt calls, want 2", len(hashes))
	}
	for _, h := range hashes {
		if cost, err := bcrypt.Cost(h); err != nil || cost != bcrypt.MinCost {
			t.Errorf("compared against cost %d (%v), want %d", cost, err, bcrypt.MinCost)
		}
	}
	// A reload that rehashes at a higher cost brings the dummy along.
	h, _ := bcrypt.GenerateFromPassword([]byte("correct horse"), bcrypt.MinCost+1)
	if err := s.swapUsers(newUsers(map[string][]byte{"alice": h}), []string{"alice"}); err != nil {
		t.Fatal(err)
	}
	hashes = nil
	if err := s.Authenticate(context.Background(), "mallory", "guess"); err != errBadCredentials {
		t.Fatal(err)
	}
	if len(hashes) != 1 {
		t.Fatalf("%d bcrypt calls, want 1", len(hashes))
	}
	if cost, _ := bcrypt.Cost(hashes[0]); cost != bcrypt.MinCost+1 {
		t.Errorf("dummy cost %d after the reload, want %d", cost, bcrypt.MinCost+1)
	}
}

// TestDummyHash: the dummy hash is a well-formed bcrypt hash of the asked
// cost that no password matches, so checking against it runs a full bcrypt
// (a malformed one would fail at once: a timing tell), and two are never
// alike.
func TestDummyHash(t *testing.T) {
	for _, cost := range []int{bcrypt.MinCost, 10, maxBcryptCost} {
		h := dummyHash(cost)
		if got, err := bcrypt.Cost(h); err != nil || got != cost {
			t.Errorf("cost %d: bcrypt.Cost = %d, %v", cost, got, err)
		}
		if err := checkHash(string(h)); err != nil {
			t.Errorf("cost %d: %q refused: %v", cost, h, err)
		}
		if bytes.Equal(h, dummyHash(cost)) {
			t.Errorf("cost %d: two dummy hashes are alike", cost)
		}
	}
	h := dummyHash(bcrypt.MinCost)
	for _, pw := range []string{"", "password", rand.Text()} {
		if err := bcrypt.CompareHashAndPassword(h, []byte(pw)); err != bcrypt.ErrMismatchedHashAndPassword {
			t.Errorf("compare %q: %v, want a mismatch after a full bcrypt", pw, err)
		}
	}
}

// len is the number of entries, for tests of the bound.
func (c *cachedAuth) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
