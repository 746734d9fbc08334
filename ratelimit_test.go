package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"tokend/internal/limits"
	"tokend/internal/limits/limitstest"
	"tokend/internal/testservice"
)

// testClock is a clock the test moves by hand, so expiry needs no sleep.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: specTime} }

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// guardedServer is tokend's handler with the whole password stack (limits,
// cache, bcrypt slots, bcrypt) over cheap hashes, a counted bcrypt and a
// clock the test moves.
type guardedServer struct {
	http.Handler
	auth     *authStack
	compares atomic.Int64
	clock    *testClock
}

func newGuardedServer(t testing.TB, cfg *Config, logins map[string]string) *guardedServer {
	t.Helper()
	g := &guardedServer{clock: newTestClock()}
	if cfg.BcryptMaxWait == 0 {
		cfg.BcryptMaxWait = time.Second
	}
	var err error
	g.auth, err = newAuthStack(cfg, testUsers(t, logins).Load(), 2, g.clock.now)
	if err != nil {
		t.Fatal(err)
	}
	g.auth.bcrypt.compare = func(hash []byte, password string) bool {
		g.compares.Add(1)
		return checkPassword(hash, password)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	g.Handler = NewServer(log, cfg, g.auth, g.auth.store, newMetrics(), g.clock.now)
	return g
}

// login posts a JSON login from the client address addr and returns the
// status, the Retry-After header and the body.
func (g *guardedServer) login(addr, user, pass string) (int, string, string) {
	return g.post(addr, nil, `{"username":"`+user+`","password":"`+pass+`","grants":"video"}`)
}

func (g *guardedServer) post(addr string, header map[string]string, body string) (int, string, string) {
	req := httptest.NewRequest("POST", "/token", strings.NewReader(body))
	req.RemoteAddr = addr
	req.Header.Set("Content-Type", jsonCT)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, req)
	return rec.Code, rec.Header().Get("Retry-After"), strings.TrimSpace(rec.Body.String())
}

func problemBody(code, title string, status int, detail string) string {
	return fmt.Sprintf(`{"type":"urn:tokend:problem:%s","title":"%s","status":%d,"detail":%q}`, code, title, status, detail)
}

const (
	addrA = "198.51.100.7:40000"
	addrB = "203.0.113.9:40000"
)

// TestUserLock: failed logins lock the username, whatever the password and
// the address, and only that username; a success neither charges nor resets
// the budget; the lock lifts as the bucket refills.
func TestUserLock(t *testing.T) {
	cfg := testConfig()
	cfg.Limits = Limits{UserFailures: 3, UserFailuresPerHour: 90, AddrFailures: 100, AddrFailuresPerHour: 100, MaxKeys: 100}
	g := newGuardedServer(t, cfg, map[string]string{"alice": "correct horse", "bob": "battery staple"})
	const userLocked = "too many failed logins for this username; try again in %d seconds"
	type step struct {
		advance    time.Duration
		addr, user string
		pass       string
		wantStatus int
		wantRetry  string
		wantDetail string
	}
	steps := []step{
		{addr: addrA, user: "alice", pass: "wrong 1", wantStatus: 401},
		{addr: addrA, user: "alice", pass: "correct horse", wantStatus: 200},
		{addr: addrA, user: "alice", pass: "wrong 2", wantStatus: 401},
		// The success above did not reset the count: this is the third failure.
		{addr: addrB, user: "alice", pass: "wrong 3", wantStatus: 401},
		// Locked, even for the right password and from another address.
		{addr: addrA, user: "alice", pass: "correct horse", wantStatus: 429, wantRetry: "40", wantDetail: fmt.Sprintf(userLocked, 40)},
		{addr: addrB, user: "alice", pass: "wrong 4", wantStatus: 429, wantRetry: "40", wantDetail: fmt.Sprintf(userLocked, 40)},
		// Another user, from the same addresses, is not locked out.
		{addr: addrA, user: "bob", pass: "battery staple", wantStatus: 200},
		{addr: addrB, user: "bob", pass: "wrong", wantStatus: 401},
		// An unknown username locks the same way, so a 429 says nothing
		// about whether a user exists.
		{addr: addrA, user: "mallory", pass: "a", wantStatus: 401},
		{addr: addrA, user: "mallory", pass: "b", wantStatus: 401},
		{addr: addrA, user: "mallory", pass: "c", wantStatus: 401},
		{addr: addrA, user: "mallory", pass: "d", wantStatus: 429, wantRetry: "40", wantDetail: fmt.Sprintf(userLocked, 40)},
		// One attempt comes back every 40 s (90 an hour).
		{advance: 30 * time.Second, addr: addrA, user: "alice", pass: "correct horse", wantStatus: 429, wantRetry: "10", wantDetail: fmt.Sprintf(userLocked, 10)},
		{advance: 10 * time.Second, addr: addrA, user: "alice", pass: "correct horse", wantStatus: 200},
		{addr: addrA, user: "alice", pass: "wrong 5", wantStatus: 401},
		{addr: addrA, user: "alice", pass: "correct horse", wantStatus: 429, wantRetry: "40", wantDetail: fmt.Sprintf(userLocked, 40)},
	}
	for i, s := range steps {
		g.clock.advance(s.advance)
		status, retry, body := g.login(s.addr, s.user, s.pass)
		if status != s.wantStatus || retry != s.wantRetry {
			t.Fatalf("step %d (%s/%s): status %d Retry-After %q, want %d %q: %s", i, s.user, s.pass, status, retry, s.wantStatus, s.wantRetry, body)
		}
		if s.wantStatus == 429 {
			if want := problemBody(ETOOMANY, "Too many requests", 429, s.wantDetail); body != want {
				t.Errorf("step %d: body %s\nwant %s", i, body, want)
			}
		}
	}
}

// TestAddrLock: failed logins over many usernames lock the client address,
// and only that address.
func TestAddrLock(t *testing.T) {
	cfg := testConfig()
	cfg.Limits = Limits{UserFailures: 100, UserFailuresPerHour: 100, AddrFailures: 4, AddrFailuresPerHour: 60, MaxKeys: 100}
	g := newGuardedServer(t, cfg, map[string]string{"alice": "correct horse"})
	for i := range 4 {
		if status, _, body := g.login(addrA, fmt.Sprintf("user%d", i), "guess"); status != 401 {
			t.Fatalf("failure %d: %d %s", i, status, body)
		}
	}
	want := problemBody(ETOOMANY, "Too many requests", 429, "too many failed logins from your address; try again in 60 seconds")
	if status, retry, body := g.login(addrA, "alice", "correct horse"); status != 429 || retry != "60" || body != want {
		t.Errorf("locked address: %d %q %s", status, retry, body)
	}
	if status, _, body := g.login(addrB, "alice", "correct horse"); status != 200 {
		t.Errorf("other address: %d %s", status, body)
	}
}

// TestRequestLimit: every POST /token counts against the client address,
// right passwords included, before the body is even read.
func TestRequestLimit(t *testing.T) {
	cfg := testConfig()
	cfg.Limits = Limits{AddrRequests: 3, AddrRequestsPerSecond: 0.5, MaxKeys: 100}
	g := newGuardedServer(t, cfg, map[string]string{"alice": "correct horse"})
	for i := range 3 {
		if status, _, body := g.login(addrA, "alice", "correct horse"); status != 200 {
			t.Fatalf("request %d: %d %s", i, status, body)
		}
	}
	want := problemBody(ETOOMANY, "Too many requests", 429, "too many requests from your address; try again in 2 seconds")
	for _, body := range []string{`{"username":"alice","password":"correct horse"}`, `not even json`} {
		if status, retry, got := g.post(addrA, nil, body); status != 429 || retry != "2" || got != want {
			t.Errorf("past the limit: %d %q %s", status, retry, got)
		}
	}
	if status, _, body := g.login(addrB, "alice", "correct horse"); status != 200 {
		t.Errorf("other address: %d %s", status, body)
	}
	g.clock.advance(2 * time.Second)
	if status, _, body := g.login(addrA, "alice", "correct horse"); status != 200 {
		t.Errorf("after the wait: %d %s", status, body)
	}
	// Only /token is limited: health checks from a proxy never are.
	req := httptest.NewRequest("GET", "/healthz", nil)
	req.RemoteAddr = addrA
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Errorf("/healthz: %d", rec.Code)
	}
}

// TestTrustedProxyLimits: behind a trusted proxy, clients are told apart by
// X-Forwarded-For, and a forged entry on the left does not help.
func TestTrustedProxyLimits(t *testing.T) {
	cfg := testConfig()
	cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	cfg.Limits = Limits{AddrRequests: 1, AddrRequestsPerSecond: 1, MaxKeys: 100}
	g := newGuardedServer(t, cfg, map[string]string{"alice": "correct horse"})
	body := `{"username":"alice","password":"correct horse","grants":"video"}`
	proxy := "10.1.2.3:5555"
	tests := []struct {
		peer, xff  string
		wantStatus int
	}{
		{proxy, "198.51.100.7", 200},
		{proxy, "198.51.100.7", 429},
		{proxy, "203.0.113.9", 200},
		{proxy, "192.0.2.1, 198.51.100.7", 429}, // forged left entry: still 198.51.100.7
		{proxy, "", 200},                        // the proxy itself
		// A peer that is not trusted is keyed by itself, whatever it claims.
		{"192.0.2.200:1", "192.0.2.50", 200},
		{"192.0.2.200:1", "192.0.2.51", 429},
	}
	for i, tt := range tests {
		h := map[string]string{}
		if tt.xff != "" {
			h["X-Forwarded-For"] = tt.xff
		}
		if status, _, got := g.post(tt.peer, h, body); status != tt.wantStatus {
			t.Errorf("%d: %s via %s: %d, want %d: %s", i, tt.xff, tt.peer, status, tt.wantStatus, got)
		}
	}
}

func TestClientAddr(t *testing.T) {
	trusted, err := parseTrustedProxies("10.0.0.0/8, 2001:db8:1::/48 192.168.1.1")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		trusted []netip.Prefix
		peer    string
		xff     []string
		want    string
	}{
		{"no trusted proxies: XFF ignored", nil, "10.0.0.1:1", []string{"203.0.113.7"}, "10.0.0.1"},
		{"untrusted peer: XFF ignored", trusted, "198.51.100.1:1", []string{"203.0.113.7"}, "198.51.100.1"},
		{"trusted peer without XFF", trusted, "10.0.0.1:1", nil, "10.0.0.1"},
		{"trusted peer", trusted, "10.0.0.1:1", []string{"203.0.113.7"}, "203.0.113.7"},
		{"read from the right", trusted, "10.0.0.1:1", []string{"1.1.1.1, 203.0.113.7"}, "203.0.113.7"},
		{"through two proxies", trusted, "10.0.0.1:1", []string{"1.1.1.1, 203.0.113.7, 10.9.9.9"}, "203.0.113.7"},
		{"every hop trusted", trusted, "10.0.0.1:1", []string{"10.0.0.3,10.0.0.2"}, "10.0.0.3"},
		{"several headers in order", trusted, "10.0.0.1:1", []string{"1.1.1.1", "203.0.113.7"}, "203.0.113.7"},
		{"garbage where the client should be", trusted, "10.0.0.1:1", []string{"203.0.113.7, 10.0.0.2, nonsense, 10.0.0.3"}, "10.0.0.3"},
		{"empty entry", trusted, "10.0.0.1:1", []string{"203.0.113.7,"}, "10.0.0.1"},
		{"port and brackets", trusted, "10.0.0.1:1", []string{"[2001:db8::5]:443"}, "2001:db8::5"},
		{"IPv4 with port", trusted, "10.0.0.1:1", []string{"203.0.113.7:8080"}, "203.0.113.7"},
		{"IPv6 proxy", trusted, "[2001:db8:1::10]:1", []string{"203.0.113.7"}, "203.0.113.7"},
		{"single-address proxy", trusted, "192.168.1.1:1", []string{"203.0.113.7"}, "203.0.113.7"},
		{"neighbour of the single address", trusted, "192.168.1.2:1", []string{"203.0.113.7"}, "192.168.1.2"},
		{"IPv4-mapped peer", trusted, "[::ffff:10.0.0.1]:1", []string{"203.0.113.7"}, "203.0.113.7"},
		{"unparsable peer", trusted, "@", []string{"203.0.113.7"}, "invalid IP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.peer
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientAddr(r, tt.trusted).String(); got != tt.want {
				t.Errorf("clientAddr = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestParseTrustedProxies(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{in: "", want: "[]"},
		{in: "10.1.2.3/8,  172.16.0.0/12\t::1", want: "[10.0.0.0/8 172.16.0.0/12 ::1/128]"},
		{in: "::ffff:10.0.0.0/104", want: "[10.0.0.0/8]"},
		{in: "10.0.0.0/8,proxy.example", err: `"proxy.example" is not a CIDR prefix such as 10.0.0.0/8 or an address`},
		{in: "10.0.0.0/33", err: `"10.0.0.0/33" is not a CIDR prefix such as 10.0.0.0/8 or an address`},
	}
	for _, tt := range tests {
		got, err := parseTrustedProxies(tt.in)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("%q: err %v, want %s", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || fmt.Sprint(got) != tt.want {
			t.Errorf("%q: %v %v, want %s", tt.in, got, err, tt.want)
		}
	}
}

func TestAddrKey(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.7":               "203.0.113.7",
		"2001:db8:1:2:aaaa::1":      "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff:ffff::9": "2001:db8:1:2::/64",
	} {
		if got := addrKey(netip.MustParseAddr(in)); got != want {
			t.Errorf("addrKey(%s) = %s, want %s", in, got, want)
		}
	}
	if got := addrKey(netip.Addr{}); got != "unknown" {
		t.Errorf("addrKey(zero) = %s", got)
	}
}

// TestBudgetTables runs the one conformance suite of limits.Table on both
// backends: the in-memory one, and Redis through the fallback wrapper with
// Redis up. The shared budgets must mean exactly what the memory ones mean.
func TestBudgetTables(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		limitstest.Run(t, func(t *testing.T, burst int, perSecond float64, now func() time.Time) limits.Table {
			return limits.NewMemory(burst, perSecond, 100, now)
		})
	})
	t.Run("redis", func(t *testing.T) {
		limitstest.Run(t, func(t *testing.T, burst int, perSecond float64, now func() time.Time) limits.Table {
			rdb, prefix := testservice.Redis(t, newRedisClient)
			l := newLoginLimits(Limits{AddrRequests: burst, AddrRequestsPerSecond: perSecond, MaxKeys: 100}, now)
			l.useRedis(rdb, prefix, []byte("test secret"), Limits{AddrRequests: burst, AddrRequestsPerSecond: perSecond}, now,
				slog.New(slog.DiscardHandler), func(bool) {})
			return l.requests
		})
	})
}

// TestBudgetsIdle: the in-memory table says idle exactly when it holds no
// bucket, so a login with no failure anywhere takes no lock.
func TestBudgetsIdle(t *testing.T) {
	b := limits.NewMemory(1, 1.0/40, 100, newTestClock().now)
	if !b.Idle() {
		t.Error("a new table is not idle")
	}
	b.Begin(context.Background(), "alice", 0)
	b.End("alice", true)
	if b.Idle() {
		t.Error("a table with a lock is idle")
	}
	b.Reset("alice")
	if !b.Idle() {
		t.Error("not idle once the only lock is reset")
	}
	if !(*limits.Memory)(nil).Idle() {
		t.Error("no limit is not idle")
	}
	// A success leaves no entry behind.
	b.Begin(context.Background(), "bob", 0)
	if b.Idle() {
		t.Error("a table with an attempt in flight is idle")
	}
	b.End("bob", false)
	if !b.Idle() {
		t.Error("a success left an entry")
	}
}

// TestBudgetsEvictedInFlight: a failure whose key was evicted while it was
// in flight is still charged.
func TestBudgetsEvictedInFlight(t *testing.T) {
	ctx := context.Background()
	b := limits.NewMemory(1, 1, 1, newTestClock().now)
	b.Begin(ctx, "alice", 0)
	b.Begin(ctx, "bob", 0) // the table holds one key: alice's goes
	b.End("alice", true)
	if wait, locked := b.Locked("alice"); !locked || wait != time.Second {
		t.Errorf("after a failure charged late: locked=%v wait=%s", locked, wait)
	}
	if n := b.Len(); n != 1 {
		t.Errorf("%d entries, cap 1", n)
	}
}

// TestBudgetsMemory: a flood of distinct keys never holds more than the cap,
// keeps the locked keys rather than the fresh ones, and is forgotten once
// the buckets are full again.
func TestBudgetsMemory(t *testing.T) {
	clock := newTestClock()
	ctx := context.Background()
	const max = 1000
	b := limits.NewMemory(3, 1.0/40, max, clock.now) // 3 failures, then one every 40 s
	for range 3 {
		b.Begin(ctx, "alice", 0)
		b.End("alice", true)
	}
	for i := range 100 * max {
		key := userKey(fmt.Sprintf("random-%d", i))
		if _, locked, err := b.Begin(ctx, key, 0); locked || err != nil {
			t.Fatalf("a fresh key was refused at %d: %v", i, err)
		}
		b.End(key, true)
		if n := b.Len(); n > max {
			t.Fatalf("%d entries after %d keys, cap %d", n, i+1, max)
		}
	}
	if _, locked := b.Locked("alice"); !locked {
		t.Error("the flood evicted the locked key")
	}
	// Once every bucket is full again, the entries are gone at the next
	// sweep (which a new key starts); the new key's, in flight, remains.
	clock.advance(2 * time.Minute)
	b.Begin(ctx, "someone", 0)
	if n := b.Len(); n != 1 {
		t.Errorf("%d entries after expiry, want 1", n)
	}
	b.End("someone", false)
}

// TestLimiterFlood drives a flood of random usernames through the server:
// the username table stays within LIMIT_MAX_KEYS.
func TestLimiterFlood(t *testing.T) {
	clock := newTestClock()
	l := newLoginLimits(Limits{UserFailures: 10, UserFailuresPerHour: 90, AddrFailures: 1 << 20, AddrFailuresPerHour: 1 << 20,
		AddrRequests: 1 << 20, AddrRequestsPerSecond: 1 << 20, MaxKeys: 200}, clock.now)
	auth := l.guard(errAuthAlways{}, time.Second)
	for i := range 5000 {
		ctx := withClient(netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}))
		l.requests.Take(clientKeyFrom(ctx))
		if err := auth.Authenticate(ctx, fmt.Sprintf("user-%d-%s", i, strings.Repeat("x", 1000)), "pw"); err != errBadCredentials {
			t.Fatalf("%d: %v", i, err)
		}
	}
	for name, b := range map[string]*limits.Memory{"requests": l.requests.(*limits.Memory), "addrFails": l.addrFails.(*limits.Memory), "userFails": l.userFails.(*limits.Memory)} {
		if n := b.Len(); n > 200 {
			t.Errorf("%s holds %d keys, cap 200", name, n)
		}
	}
}

// errAuthAlways refuses every login without bcrypt.
type errAuthAlways struct{}

func (errAuthAlways) Authenticate(context.Context, string, string) error { return errBadCredentials }

func TestRetrySeconds(t *testing.T) {
	for d, want := range map[time.Duration]int{0: 1, time.Millisecond: 1, time.Second: 1, 1001 * time.Millisecond: 2, 40 * time.Second: 40} {
		if got := retrySeconds(d); got != want {
			t.Errorf("retrySeconds(%s) = %d, want %d", d, got, want)
		}
	}
}

// TestGuardSettings reads the limits, cache and reload settings: their
// defaults, every one set, and every one wrong in a single error.
func TestGuardSettings(t *testing.T) {
	base := map[string]string{
		"TWILIO_ACCOUNT_SID":    testAccountSID,
		"TWILIO_API_KEY_SID":    testAPIKeySID,
		"TWILIO_API_KEY_SECRET": testSecret,
	}
	with := func(extra map[string]string) func(string) string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return mapEnv(m)
	}
	type guard struct {
		Limits              Limits
		TrustedProxies      string
		AuthCacheTTL        time.Duration
		AuthCacheSize       int
		BcryptSlots         int
		BcryptMaxWait       time.Duration
		UsersReloadInterval time.Duration
	}
	of := func(c *Config) guard {
		return guard{c.Limits, fmt.Sprint(c.TrustedProxies), c.AuthCacheTTL, c.AuthCacheSize, c.BcryptSlots, c.BcryptMaxWait, c.UsersReloadInterval}
	}
	tests := []struct {
		name string
		env  map[string]string
		want guard
	}{
		{"defaults", nil, guard{
			Limits: Limits{UserFailures: 10, UserFailuresPerHour: 90, AddrFailures: 30, AddrFailuresPerHour: 300,
				AddrRequests: 30, AddrRequestsPerSecond: 10, MaxKeys: 50000},
			TrustedProxies: "[]", AuthCacheTTL: 5 * time.Minute, AuthCacheSize: 10000, BcryptMaxWait: 2 * time.Second, UsersReloadInterval: 2 * time.Second}},
		{"all set", map[string]string{
			"LIMIT_USER_FAILURES": "5", "LIMIT_USER_FAILURES_PER_HOUR": "20", "LIMIT_ADDR_FAILURES": "50", "LIMIT_ADDR_FAILURES_PER_HOUR": "1000",
			"LIMIT_ADDR_REQUESTS": "100", "LIMIT_ADDR_REQUESTS_PER_SECOND": "50", "LIMIT_MAX_KEYS": "1000",
			"TRUSTED_PROXIES": "10.0.0.0/8,fd00::/8", "AUTH_CACHE_TTL": "0", "AUTH_CACHE_SIZE": "500",
			"BCRYPT_SLOTS": "1", "BCRYPT_MAX_WAIT": "500ms", "USERS_RELOAD_INTERVAL": "30",
		}, guard{
			Limits: Limits{UserFailures: 5, UserFailuresPerHour: 20, AddrFailures: 50, AddrFailuresPerHour: 1000,
				AddrRequests: 100, AddrRequestsPerSecond: 50, MaxKeys: 1000},
			TrustedProxies: "[10.0.0.0/8 fd00::/8]", AuthCacheTTL: 0, AuthCacheSize: 500, BcryptSlots: 1, BcryptMaxWait: 500 * time.Millisecond, UsersReloadInterval: 30 * time.Second}},
	}
	for _, tt := range tests {
		cfg, err := loadConfig(with(tt.env))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := of(cfg); got != tt.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.name, got, tt.want)
		}
	}
	// A wait past the write timeout left clients with no answer at all
	// while the log said 200 and a token was counted.
	if _, err := loadConfig(with(map[string]string{"BCRYPT_MAX_WAIT": "30s"})); err == nil ||
		!strings.Contains(err.Error(), `BCRYPT_MAX_WAIT is "30s": use a duration from 10ms to 5s, such as 500ms or 2s`) {
		t.Errorf("BCRYPT_MAX_WAIT=30s: err = %v", err)
	}
	_, err := loadConfig(with(map[string]string{
		"LIMIT_USER_FAILURES": "0", "LIMIT_USER_FAILURES_PER_HOUR": "many", "LIMIT_MAX_KEYS": "10",
		"TRUSTED_PROXIES": "10.0.0.0/8 proxy", "AUTH_CACHE_TTL": "-1m", "AUTH_CACHE_SIZE": "0",
		"BCRYPT_SLOTS": "999", "BCRYPT_MAX_WAIT": "0", "USERS_RELOAD_INTERVAL": "10ms",
	}))
	want := fmt.Sprintf(`invalid configuration:
  - LIMIT_USER_FAILURES is "0": use a whole number from 1 to 100000
  - LIMIT_USER_FAILURES_PER_HOUR is "many": use a whole number from 1 to 1000000
  - LIMIT_MAX_KEYS is "10": use a whole number from 100 to 10000000
  - TRUSTED_PROXIES: "proxy" is not a CIDR prefix such as 10.0.0.0/8 or an address
  - AUTH_CACHE_TTL is "-1m": use 0 (off) or a duration from 1s to 24h0m0s, such as 90s or 5m
  - AUTH_CACHE_SIZE is "0": use a whole number from 1 to 10000000
  - BCRYPT_SLOTS is "999": use a whole number from 1 to %d
  - BCRYPT_MAX_WAIT is "0": use a duration from 10ms to 5s, such as 500ms or 2s
  - USERS_RELOAD_INTERVAL is "10ms": use 0 (off) or a duration from 100ms to 1h0m0s, such as 90s or 5m`, runtime.GOMAXPROCS(0))
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
}

// TestBcryptSlots: by default one CPU is left to requests that need no
// bcrypt; BCRYPT_SLOTS overrides it.
func TestBcryptSlots(t *testing.T) {
	if got, want := bcryptSlots(&Config{}), max(1, runtime.GOMAXPROCS(0)-1); got != want {
		t.Errorf("default: %d slots, want %d", got, want)
	}
	if got := bcryptSlots(&Config{BcryptSlots: 3}); got != 3 {
		t.Errorf("BCRYPT_SLOTS=3: %d slots", got)
	}
}

// TestEnvExampleGuardDefaults: the values .env.example shows for these
// settings are the defaults, so copying it changes nothing by surprise.
func TestEnvExampleGuardDefaults(t *testing.T) {
	lookup, found, err := envLookup(".env.example", mapEnv(map[string]string{
		"TWILIO_ACCOUNT_SID": testAccountSID, "TWILIO_API_KEY_SID": testAPIKeySID, "TWILIO_API_KEY_SECRET": testSecret,
	}))
	if err != nil || !found {
		t.Fatal(found, err)
	}
	example, err := loadConfig(lookup)
	if err != nil {
		t.Fatal(err)
	}
	defaults := &Config{}
	s := &settings{lookup: mapEnv(nil)}
	s.guard(defaults)
	if !reflect.DeepEqual(example.Limits, defaults.Limits) || len(example.TrustedProxies) != 0 ||
		example.AuthCacheTTL != defaults.AuthCacheTTL || example.AuthCacheSize != defaults.AuthCacheSize ||
		example.BcryptSlots != defaults.BcryptSlots || example.BcryptMaxWait != defaults.BcryptMaxWait ||
		example.UsersReloadInterval != defaults.UsersReloadInterval {
		t.Errorf(".env.example: %+v\ndefaults:     %+v", example, defaults)
	}
}

// withClient is the context observe gives a request from addr.
func withClient(addr netip.Addr) context.Context {
	return context.WithValue(context.Background(), requestLogKey{}, &requestLog{client: addr})
}
