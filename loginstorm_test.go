package main

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Login storms: many logins at once. These tests count (bcrypt calls,
// answers by status), never time: each bcrypt is gated where the test
// needs logins to pile up behind it.

// stormConfig is testConfig with tokend's default limits of failed logins and
// cache, the request budget raised (these tests send more than 30 logins from
// one address, and that budget is not under test), and the slots' wait long
// enough that no test login ever gets a 503.
func stormConfig(t testing.TB) *Config {
	t.Helper()
	cfg := testConfig()
	s := &settings{lookup: mapEnv(nil)}
	s.guard(cfg)
	if err := s.err(); err != nil {
		t.Fatal(err)
	}
	cfg.BcryptMaxWait = time.Minute
	cfg.Limits.AddrRequests = 1 << 20
	return cfg
}

// gateBcrypt makes every bcrypt check of g wait until open is called, and
// counts them; reached(n) returns once n have started.
func gateBcrypt(g *guardedServer) (open func(), reached func(n int64)) {
	gate := make(chan struct{})
	var once sync.Once
	g.auth.bcrypt.compare = func(hash []byte, password string) bool {
		g.compares.Add(1)
		<-gate
		return checkPassword(hash, password)
	}
	open = func() { once.Do(func() { close(gate) }) }
	reached = func(n int64) {
		for g.compares.Load() < n {
			runtime.Gosched()
		}
	}
	return open, reached
}

// storm sends n logins at once, login(i) giving the i-th one's address,
// username and password; once every one has started, release is called (nil:
// nothing to release). It returns the count of answers by status and the
// distinct Retry-After and body of each status.
func storm(g *guardedServer, n int, login func(i int) (addr, user, pass string), release func()) (byStatus map[int]int, bodies map[int]map[string]bool) {
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		started sync.WaitGroup
	)
	byStatus, bodies = map[int]int{}, map[int]map[string]bool{}
	started.Add(n)
	for i := range n {
		wg.Go(func() {
			addr, user, pass := login(i)
			started.Done()
			status, retry, body := g.login(addr, user, pass)
			mu.Lock()
			defer mu.Unlock()
			byStatus[status]++
			if bodies[status] == nil {
				bodies[status] = map[string]bool{}
			}
			bodies[status]["Retry-After "+retry+" "+body] = true
		})
	}
	started.Wait()
	if release != nil {
		release()
	}
	wg.Wait()
	return byStatus, bodies
}

// TestStormIdenticalColdLogins: 48 logins at once with the same right
// password and a cold cache (a kiosk account on 48 screens after a restart)
// all get 200, and bcrypt runs once: they share the check.
func TestStormIdenticalColdLogins(t *testing.T) {
	g := newGuardedServer(t, stormConfig(t), map[string]string{"kiosk": "correct horse"})
	open, reached := gateBcrypt(g)
	got, bodies := storm(g, 48, func(int) (string, string, string) { return addrA, "kiosk", "correct horse" }, func() {
		// The first check holds the gate: every other login either
		// waits for it or finds its answer in the cache.
		reached(1)
		open()
	})
	if got[200] != 48 || len(got) != 1 {
		t.Errorf("answers %v, want 48 × 200: %v", got, bodies)
	}
	if n := g.compares.Load(); n != 1 {
		t.Errorf("%d bcrypt checks for 48 identical logins, want 1", n)
	}
}

// TestStormIdenticalColdFromManyAddresses: the same, from 48 addresses, and
// then 48 identical wrong passwords at once: one check, charged once.
func TestStormIdenticalFromManyAddresses(t *testing.T) {
	cfg := stormConfig(t)
	cfg.Limits.UserFailures = 2
	g := newGuardedServer(t, cfg, map[string]string{"kiosk": "correct horse"})
	open, reached := gateBcrypt(g)
	waitFirst := func() {
		reached(1)
		open()
	}
	addr := func(i int) string { return fmt.Sprintf("127.0.0.%d:4000", 1+i) }
	got, bodies := storm(g, 48, func(i int) (string, string, string) { return addr(i), "kiosk", "correct horse" }, waitFirst)
	if got[200] != 48 || len(got) != 1 || g.compares.Load() != 1 {
		t.Fatalf("right passwords: answers %v, %d checks, want 48 × 200 and 1: %v", got, g.compares.Load(), bodies)
	}
	// The same wrong password 48 times at once is one guess: while the
	// first check runs the others share it, and any that comes after it
	// checks again. Every one is a 401, and the username, with a budget of
	// two failures, is locked only if two of those checks ran.
	open, reached = gateBcrypt(g)
	g.compares.Store(0)
	got, bodies = storm(g, 48, func(i int) (string, string, string) { return addr(i), "kiosk", "wrong" }, func() {
		reached(1)
		open()
	})
	checks := int(g.compares.Load())
	if got[401]+got[429] != 48 || checks < 1 || checks > 2 || (checks == 1 && got[429] != 0) {
		t.Errorf("one wrong password 48 times: answers %v, %d checks: %v", got, checks, bodies)
	}
}

// TestStormOfficeBehindNAT: 60 users with their right passwords at once from
// one address, cold cache: all 200. The address's budget of failed logins
// (30) is not spent by logins that succeed, whatever their number in flight.
func TestStormOfficeBehindNAT(t *testing.T) {
	logins := map[string]string{}
	for i := range 60 {
		logins[fmt.Sprintf("user%d", i)] = fmt.Sprintf("password of user%d", i)
	}
	g := newGuardedServer(t, stormConfig(t), logins)
	open, reached := gateBcrypt(g)
	got, bodies := storm(g, 60, func(i int) (string, string, string) {
		return addrA, fmt.Sprintf("user%d", i), fmt.Sprintf("password of user%d", i)
	}, func() {
		reached(2) // both slots taken: the other logins pile up
		open()
	})
	if got[200] != 60 || len(got) != 1 {
		t.Errorf("answers %v, want 60 × 200: %v", got, bodies)
	}
	if n := g.compares.Load(); n != 60 {
		t.Errorf("%d bcrypt checks, want 60", n)
	}
}

// TestStormWarmCache: one user, right password, warm cache, 400 logins from
// 16 clients at once: all 200 and no bcrypt. Cached logins charge nothing.
func TestStormWarmCache(t *testing.T) {
	g := newGuardedServer(t, stormConfig(t), map[string]string{"alice": "correct horse"})
	if status, _, body := g.login(addrA, "alice", "correct horse"); status != 200 {
		t.Fatalf("warm-up: %d %s", status, body)
	}
	g.compares.Store(0)
	var wg sync.WaitGroup
	var refused atomic.Int64
	for range 16 {
		wg.Go(func() {
			for range 25 {
				if status, _, _ := g.login(addrB, "alice", "correct horse"); status != 200 {
					refused.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := refused.Load(); n != 0 {
		t.Errorf("%d of 400 cached logins refused", n)
	}
	if n := g.compares.Load(); n != 0 {
		t.Errorf("%d bcrypt checks for cached logins", n)
	}
}

// TestStormGuessing: 100 different wrong passwords for one username at once,
// from 100 addresses (so only the username's budget applies), reach bcrypt
// at most burst + BCRYPT_SLOTS times; the rest get 429, and the username is
// then locked for the right password too, with an honest Retry-After.
func TestStormGuessing(t *testing.T) {
	cfg := stormConfig(t) // 10 failures per username in a row
	g := newGuardedServer(t, cfg, map[string]string{"alice": "correct horse"})
	// The right password is in the cache: a cached login is refused too.
	if status, _, body := g.login(addrA, "alice", "correct horse"); status != 200 {
		t.Fatalf("warm-up: %d %s", status, body)
	}
	g.compares.Store(0)
	got, bodies := storm(g, 100, func(i int) (string, string, string) {
		return fmt.Sprintf("127.0.0.%d:4000", 1+i), "alice", fmt.Sprintf("guess %d", i)
	}, nil)
	const slots = 2 // newGuardedServer's
	checks := int(g.compares.Load())
	if checks > cfg.Limits.UserFailures+slots || got[401] != checks || got[429] != 100-checks || got[401]+got[429] != 100 {
		t.Errorf("100 guesses at once: answers %v, %d bcrypt checks; want at most %d checks, each a 401, the rest 429",
			got, checks, cfg.Limits.UserFailures+slots)
	}
	// The budget is spent by failures: every 429 says so, with the wait
	// until the next attempt comes back (one every 40 s), not the time of
	// attempts in flight.
	want := "Retry-After 40 " + problemBody(ETOOMANY, "Too many requests", 429, "too many failed logins for this username; try again in 40 seconds")
	for b := range bodies[429] {
		if b != want {
			t.Errorf("429: %s\nwant %s", b, want)
		}
	}
	for _, pass := range []string{"correct horse", "a fresh guess"} {
		if status, retry, body := g.login("127.0.0.200:4000", "alice", pass); status != 429 || retry != "40" {
			t.Errorf("after the storm, %q: %d %q %s", pass, status, retry, body)
		}
	}
}

// TestStormRightPasswordBehindGuesses: a right password that arrives while
// guesses hold the username's last attempts waits for them instead of being
// refused: if they fail, the username is locked (by failures) and the 429
// says how long the refill takes; if the budget has room, it gets 200.
func TestStormRightPasswordBehindGuesses(t *testing.T) {
	for _, tt := range []struct {
		name       string
		failures   int // the username's budget
		wantStatus int
		wantRetry  string
	}{
		{"the guess spends the last attempt", 1, 429, "40"},
		{"room for both", 2, 200, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := stormConfig(t)
			cfg.Limits.UserFailures = tt.failures
			cfg.Limits.UserFailuresPerHour = 90
			g := newGuardedServer(t, cfg, map[string]string{"alice": "correct horse"})
			open, reached := gateBcrypt(g)
			guess := make(chan int)
			go func() {
				status, _, _ := g.login("127.0.0.1:4000", "alice", "a guess")
				guess <- status
			}()
			reached(1)
			// The guess holds a bcrypt slot and the username's attempt; the
			// right password (from another address) comes now.
			right := make(chan [2]string)
			go func() {
				status, retry, body := g.login("127.0.0.2:4000", "alice", "correct horse")
				right <- [2]string{fmt.Sprint(status, " ", retry), body}
			}()
			open()
			if status := <-guess; status != 401 {
				t.Errorf("guess: %d", status)
			}
			if got := <-right; got[0] != fmt.Sprint(tt.wantStatus, " ", tt.wantRetry) {
				t.Errorf("right password: %s, want %d %q: %s", got[0], tt.wantStatus, tt.wantRetry, got[1])
			}
		})
	}
}
