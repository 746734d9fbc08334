package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"tokend/internal/session"
	"tokend/internal/testservice"
)

// killOurConnections closes, from the Redis side, every connection of rdb
// (named for this test alone, so other tests' connections are untouched).
func killOurConnections(t *testing.T, rdb *redis.Client) {
	t.Helper()
	ctx := context.Background()
	name := rdb.Options().ClientName
	list, err := rdb.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	for _, line := range strings.Split(list, "\n") {
		if !strings.Contains(line, " name="+name+" ") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if id, ok := strings.CutPrefix(f, "id="); ok {
				if err := rdb.Do(ctx, "CLIENT", "KILL", "ID", id).Err(); err == nil {
					killed++
				}
			}
		}
	}
	if killed == 0 {
		t.Fatal("no connection of this test's Redis client was found to kill")
	}
}

// TestSessionsAcrossReplicas: with Redis, a session started on one replica
// renews on the others, and a logout on one ends it on all.
func TestSessionsAcrossReplicas(t *testing.T) {
	rdb, prefix := testservice.Redis(t, newRedisClient)
	var replicas []*sessionServer
	for range 3 {
		s := newSessionServer(t, session.NewRedisStore(rdb, prefix), nil)
		s.clock.t = time.Now() // Redis expires keys by its own clock
		if len(replicas) > 0 {
			s.users.Store(replicas[0].users.Load()) // one users file for all
		}
		replicas = append(replicas, s)
	}
	secret := replicas[0].login()
	for i, s := range replicas {
		if rec := s.do(req{cookie: secret, ct: "json"}); rec.Code != 200 {
			t.Fatalf("renewal on replica %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	if rec := replicas[1].do(req{path: "/logout", cookie: secret, ct: "json"}); rec.Code != 204 {
		t.Fatalf("logout on replica 1: %d %s", rec.Code, rec.Body)
	}
	for i, s := range replicas {
		if rec := s.do(req{cookie: secret, ct: "json"}); rec.Code != 401 {
			t.Errorf("renewal on replica %d after logout: %d %s", i, rec.Code, rec.Body)
		}
	}
	// Redis closes every connection of ours (as a restart or a failover
	// does): the next renewal reconnects and works.
	secret = replicas[0].login()
	killOurConnections(t, rdb)
	if rec := replicas[1].do(req{cookie: secret, ct: "json"}); rec.Code != 200 {
		t.Errorf("renewal after CLIENT KILL: %d %s", rec.Code, rec.Body)
	}
	// A revocation on one replica's admin listener holds everywhere too.
	secret = replicas[2].login()
	n, err := replicas[0].sess.store.DeleteUser(context.Background(), "alice")
	if err != nil || n != 2 { // this one and the one before CLIENT KILL
		t.Fatalf("DeleteUser = %d, %v; want 2", n, err)
	}
	if rec := replicas[2].do(req{cookie: secret, ct: "json"}); rec.Code != 401 {
		t.Errorf("renewal after revocation: %d", rec.Code)
	}
}

// TestSessionsRedisUnreachable: with a Redis that does not answer (a port
// nobody listens on), renewals get 503 quickly, password logins still get
// their token, and /readyz says why.
func TestSessionsRedisUnreachable(t *testing.T) {
	rdb, err := newRedisClient("redis://" + freeAddr(t) + "/0")
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	s := newSessionServer(t, session.NewRedisStore(rdb, "tokendtest:"), nil)
	forged, _ := session.NewSecret()
	rec := s.do(req{cookie: forged, ct: "json"})
	if rec.Code != 503 {
		t.Errorf("renewal with Redis down: %d %s", rec.Code, rec.Body)
	}
	rec = s.do(req{body: `{"username":"alice","password":"correct horse"}`})
	if rec.Code != 200 || cookieOf(rec) != nil {
		t.Errorf("password login with Redis down: %d %v", rec.Code, rec.Header())
	}
	if ready := s.do(req{method: "GET", path: "/readyz", curl: true}); ready.Code != 200 ||
		ready.Body.String() != "ready\nsessions: unavailable: the session store (REDIS_URL) is not answering; password logins work, session renewals get 503\n" {
		t.Errorf("/readyz: %d %q", ready.Code, ready.Body)
	}
}

// BenchmarkSessionRenewal is one renewal through tokend's whole handler
// (no network between client and tokend), with each store: the Redis one
// adds a round trip and a Lua script per renewal.
func BenchmarkSessionRenewal(b *testing.B) {
	for _, tc := range []struct {
		name  string
		store func(b *testing.B) session.Store
	}{
		{"memory", func(*testing.B) session.Store { return session.NewMemoryStore(10000) }},
		{"redis", func(b *testing.B) session.Store {
			rdb, prefix := testservice.Redis(b, newRedisClient)
			return session.NewRedisStore(rdb, prefix)
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := newSessionServer(b, tc.store(b), nil)
			s.clock.t = time.Now()
			secret := s.login()
			for b.Loop() {
				if rec := s.do(req{cookie: secret, ct: "json"}); rec.Code != 200 {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}

// TestServeWithRedis: two tokend processes' worth of `run` with one
// REDIS_URL share sessions: a login on one renews on the other, and a
// logout on the second ends it on the first.
func TestServeWithRedis(t *testing.T) {
	_, prefix := testservice.Redis(t, newRedisClient)
	url := testservice.RedisURL()
	shared := testEnv(t) // one users file for both
	shared["REDIS_URL"], shared["REDIS_PREFIX"] = url, prefix
	var bases []string
	var logs []*syncBuffer
	for range 2 {
		env := maps.Clone(shared)
		env["LISTEN_ADDR"] = freeAddr(t)
		var stdout, stderr syncBuffer
		errc := startRun(t, []string{"serve", "--env-file", filepath.Join(t.TempDir(), ".env")}, env, &stdout, &stderr)
		waitReady(t, "http://"+env["LISTEN_ADDR"], errc)
		bases = append(bases, "http://"+env["LISTEN_ADDR"])
		logs = append(logs, &stderr)
	}
	call := func(base, path, body, cookie string) (*http.Response, string) {
		t.Helper()
		r, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		if cookie != "" {
			r.AddCookie(&http.Cookie{Name: sessionCookie, Value: cookie})
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := call(bases[0], "/token", `{"username":"alice","password":"alice password","session":true}`, "")
	var secret string
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			secret = c.Value
		}
	}
	if resp.StatusCode != 200 || secret == "" {
		t.Fatalf("login on the first: %d %s", resp.StatusCode, body)
	}
	if resp, body := call(bases[1], "/token", `{}`, secret); resp.StatusCode != 200 || !strings.Contains(body, `"identity":"alice"`) {
		t.Errorf("renewal on the second: %d %s", resp.StatusCode, body)
	}
	if resp, body := call(bases[1], "/logout", `{}`, secret); resp.StatusCode != 204 {
		t.Errorf("logout on the second: %d %s", resp.StatusCode, body)
	}
	if resp, body := call(bases[0], "/token", `{}`, secret); resp.StatusCode != 401 {
		t.Errorf("renewal on the first after logout: %d %s", resp.StatusCode, body)
	}
	for i, l := range logs {
		if !strings.Contains(l.String(), `msg="login sessions" store=redis`) {
			t.Errorf("replica %d does not say it keeps sessions in Redis:\n%s", i, l)
		}
	}
}

// TestServeRedisDownAtStart: a Redis that does not answer at start-up does
// not stop tokend; the log says so once, and /readyz says why.
func TestServeRedisDownAtStart(t *testing.T) {
	env := testEnv(t)
	env["REDIS_URL"] = "redis://:hunter2@" + freeAddr(t) + "/0" // nothing listens there
	addr := env["LISTEN_ADDR"]
	var stdout, stderr syncBuffer
	errc := startRun(t, []string{"serve", "--env-file", filepath.Join(t.TempDir(), ".env")}, env, &stdout, &stderr)
	waitReady(t, "http://"+addr, errc)
	for range 3 {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), "sessions: unavailable") {
			t.Errorf("/readyz: %d %q", resp.StatusCode, b)
		}
	}
	logs := stderr.String()
	if n := strings.Count(logs, "session store is not answering"); n != 1 {
		t.Errorf("%d lines say Redis is down, want 1:\n%s", n, logs)
	}
	if strings.Contains(logs, "hunter2") {
		t.Errorf("the log holds REDIS_URL's password:\n%s", logs)
	}
}

// TestSessionCommandsOnRedis: without METRICS_ADDR, `tokend session` asks
// the Redis of REDIS_URL directly.
func TestSessionCommandsOnRedis(t *testing.T) {
	rdb, prefix := testservice.Redis(t, newRedisClient)
	s := newSessionServer(t, session.NewRedisStore(rdb, prefix), nil)
	s.clock.t = time.Now()
	a1 := s.login()
	s.login()
	env := map[string]string{"REDIS_URL": "redis://" + rdb.Options().Addr + "/" + fmt.Sprint(rdb.Options().DB), "REDIS_PREFIX": prefix}
	noEnv := filepath.Join(t.TempDir(), "none.env")
	out, _, err := runTokend(t, env, time.Now(), "", "session", "list", "--env-file", noEnv)
	if err != nil || strings.Count(out, " alice ") != 2 {
		t.Fatalf("list: %v\n%s", err, out)
	}
	id := session.IDOf(session.Key(a1))
	if out, _, err := runTokend(t, env, time.Now(), "", "session", "revoke", "--env-file", noEnv, id); err != nil || out != "session "+id+": 1 session(s) ended\n" {
		t.Errorf("revoke ID: %v %q", err, out)
	}
	if _, _, err := runTokend(t, env, time.Now(), "", "session", "revoke", "--env-file", noEnv, id); err == nil ||
		err.Error() != `no live session has the ID "`+id+"\"; list them with `tokend session list`" {
		t.Errorf("revoke it again: %v", err)
	}
	if out, _, err := runTokend(t, env, time.Now(), "", "session", "revoke", "--env-file", noEnv, "alice"); err != nil || out != "user \"alice\": 1 session(s) ended\n" {
		t.Errorf("revoke user: %v %q", err, out)
	}
}
