package main

import (
	"bytes"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"tokend/internal/testservice"
)

// sharedLimits are login limits a guesser can only beat across replicas if
// they are not shared: one username's budget, generous address budgets.
var sharedLimits = Limits{UserFailures: 10, UserFailuresPerHour: 90,
	AddrFailures: 1000, AddrFailuresPerHour: 1000, AddrRequests: 1000, AddrRequestsPerSecond: 1000, MaxKeys: 1000}

// TestLimitsAcrossReplicas: three replicas sharing one Redis prefix give a
// username one budget, not three: 100 wrong passwords spread over them, all
// at once, reach bcrypt at most the budget's 10 times in total; the right
// password is then refused on every replica; an operator's unlock on one
// lifts the lock on all.
func TestLimitsAcrossReplicas(t *testing.T) {
	rdb, prefix := testservice.Redis(t, newRedisClient)
	var replicas []*guardedServer
	for range 3 {
		cfg := testConfig()
		cfg.Limits = sharedLimits
		g := newGuardedServer(t, cfg, map[string]string{"alice": "correct horse"})
		g.auth.limits.useRedis(rdb, prefix, limitsSecret(cfg.APIKeySecret), cfg.Limits, g.clock.now,
			slog.New(slog.DiscardHandler), func(bool) {})
		replicas = append(replicas, g)
	}
	var wg sync.WaitGroup
	var refused atomic.Int64
	for i := range 100 {
		wg.Go(func() {
			addr := "198.51.100." + string(rune('0'+i%10)) + ":40000"
			code, _, body := replicas[i%3].login(addr, "alice", "wrong horse")
			switch code {
			case 401:
			case 429:
				refused.Add(1)
			default:
				t.Errorf("guess %d: %d %s", i, code, body)
			}
		})
	}
	wg.Wait()
	total := replicas[0].compares.Load() + replicas[1].compares.Load() + replicas[2].compares.Load()
	if total > 10 || total < 1 {
		t.Errorf("%d wrong passwords reached bcrypt over 3 replicas, want at most the one budget of 10", total)
	}
	if refused.Load() < 90 {
		t.Errorf("%d guesses refused with 429, want at least 90", refused.Load())
	}
	for i, g := range replicas {
		if code, retry, _ := g.login(addrB, "alice", "correct horse"); code != 429 || retry == "" {
			t.Errorf("right password on replica %d while locked: %d Retry-After %q, want 429", i, code, retry)
		}
	}
	rec := httptest.NewRecorder()
	handleUnlock(slog.New(slog.DiscardHandler), replicas[1].auth.limits).ServeHTTP(rec,
		httptest.NewRequest("POST", "/admin/unlock?username=alice", nil))
	if want := `{"username":"alice","was_locked":true}`; strings.TrimSpace(rec.Body.String()) != want {
		t.Fatalf("unlock: %d %s, want %s", rec.Code, rec.Body, want)
	}
	for i, g := range replicas {
		if code, _, body := g.login(addrB, "alice", "correct horse"); code != 200 {
			t.Errorf("right password on replica %d after the unlock on replica 1: %d %s", i, code, body)
		}
	}
}

// TestLimitsRedisDown: while Redis does not answer, each replica enforces
// its own budgets (a guesser gets one replica's budget, not unlimited
// tries), right passwords still log in, the gauge and /readyz say so, and
// one log line marks each change; the shared budgets return with Redis.
func TestLimitsRedisDown(t *testing.T) {
	_, prefix := testservice.Redis(t, newRedisClient) // skips when no Redis answers
	p := newTCPProxy(t, "127.0.0.1:6379")
	rdb, err := newRedisClient("redis://" + p.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	cfg := testConfig()
	cfg.Limits = sharedLimits
	g := newGuardedServer(t, cfg, map[string]string{"alice": "correct horse", "bob": "battery staple"})
	var logs bytes.Buffer
	var ups []bool
	g.auth.limits.useRedis(rdb, prefix, limitsSecret(cfg.APIKeySecret), cfg.Limits, g.clock.now,
		slog.New(slog.NewTextHandler(&logs, nil)), func(up bool) { ups = append(ups, up) })
	if code, _, body := g.login(addrA, "bob", "battery staple"); code != 200 {
		t.Fatalf("login with Redis up: %d %s", code, body)
	}
	p.stop()
	codes := map[int]int{}
	for range 30 {
		code, _, _ := g.login(addrA, "alice", "wrong horse")
		codes[code]++
	}
	if codes[401] != 10 || codes[429] != 20 {
		t.Errorf("30 guesses with Redis down: %v, want 10 401s (the local budget) and 20 429s", codes)
	}
	if code, _, body := g.login(addrB, "bob", "battery staple"); code != 200 {
		t.Errorf("right password with Redis down: %d %s", code, body)
	}
	rec := httptest.NewRecorder()
	handleReadyz(slog.New(slog.DiscardHandler), g.auth.store, true, nil, nil, g.auth.limits).ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "limits: local:") {
		t.Errorf("/readyz with Redis down: %d %q", rec.Code, rec.Body)
	}
	if n := strings.Count(logs.String(), "login limits store is not answering"); n != 1 {
		t.Errorf("%d down lines in the log, want 1:\n%s", n, logs.String())
	}
	p.start()
	// /readyz asks Redis while it is noted down, so it notices the return
	// even when no login comes.
	rec = httptest.NewRecorder()
	handleReadyz(slog.New(slog.DiscardHandler), g.auth.store, true, nil, nil, g.auth.limits).ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 200 || rec.Body.String() != "ready\n" {
		t.Errorf("/readyz once Redis is back: %d %q", rec.Code, rec.Body)
	}
	if code, _, body := g.login(addrB, "bob", "battery staple"); code != 200 {
		t.Errorf("login after Redis returned: %d %s", code, body)
	}
	if n := strings.Count(logs.String(), "login limits store is answering again"); n != 1 {
		t.Errorf("%d recovery lines in the log, want 1:\n%s", n, logs.String())
	}
	if len(ups) != 3 || !ups[0] || ups[1] || !ups[2] {
		t.Errorf("gauge settings %v, want [true false true]", ups)
	}
	if strings.Contains(logs.String(), "alice") || strings.Contains(logs.String(), "horse") {
		t.Errorf("the log names a username or a password:\n%s", logs.String())
	}
}

// BenchmarkLoginCachedShared is a repeat login answered by the verification
// cache, through the login limits kept in memory and then in Redis
// (REDIS_URL): what sharing the budgets costs a login. The Redis case makes
// two round trips (the address and username locks), since Redis cannot say
// cheaply that no key is locked. Compare the two ns/op figures.
func BenchmarkLoginCachedShared(b *testing.B) {
	for _, store := range []string{"memory", "redis"} {
		b.Run(store, func(b *testing.B) {
			cfg := benchConfig(b)
			cfg.Limits = sharedLimits
			st := benchStack(b, cfg)
			if store == "redis" {
				rdb, prefix := testservice.Redis(b, newRedisClient)
				st.limits.useRedis(rdb, prefix, limitsSecret(cfg.APIKeySecret), cfg.Limits, nil,
					slog.New(slog.DiscardHandler), func(bool) {})
			}
			auth := st.limits.guard(st, cfg.BcryptMaxWait)
			ctx := withClient(netip.MustParseAddr("198.51.100.7"))
			if err := auth.Authenticate(ctx, benchUser, benchPassword); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if err := auth.Authenticate(ctx, benchUser, benchPassword); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
