package session_test

import (
	"context"
	"crypto/rand"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"tokend/internal/session"
	"tokend/internal/session/sessiontest"
)

func TestMemoryStore(t *testing.T) {
	sessiontest.Run(t, func(t *testing.T) session.Store { return session.NewMemoryStore(10000) })
}

// TestMemoryStoreCap: the store never holds more than its cap; the oldest go first.
func TestMemoryStoreCap(t *testing.T) {
	st := session.NewMemoryStore(3)
	ctx := context.Background()
	base := time.Now()
	var keys []string
	evictedTotal := 0
	for i := range 5 {
		_, key := session.NewSecret()
		keys = append(keys, key)
		n, err := st.Create(ctx, key, session.Session{User: "u" + string(rune('a'+i)), Created: base, LastSeen: base,
			IdleUntil: base.Add(time.Hour), EndsAt: base.Add(2 * time.Hour)}, 0)
		if err != nil {
			t.Fatal(err)
		}
		evictedTotal += n
	}
	if st.Len() != 3 || evictedTotal != 2 {
		t.Fatalf("Len = %d, evicted %d; want 3 and 2", st.Len(), evictedTotal)
	}
	for i, key := range keys {
		_, err := st.Touch(ctx, key, base, base.Add(time.Hour))
		if alive := err == nil; alive != (i >= 2) {
			t.Errorf("session %d alive = %v", i, alive)
		}
	}
}

// redisForTest returns a client of the test Redis (REDIS_URL, or
// 127.0.0.1:6379), skipping the test when none answers, failing when
// CI=true. Its keys are under a prefix of the test's own, removed after.
func redisForTest(t *testing.T) (*redis.Client, string) {
	t.Helper()
	url := os.Getenv("TEST_REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Redis at %s is not answering, and CI=true: %v", url, err)
		}
		t.Skipf("Redis at %s is not answering (set TEST_REDIS_URL): %v", url, err)
	}
	prefix := "tokendtest:" + rand.Text()[:12] + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
	})
	return rdb, prefix
}

func TestRedisStore(t *testing.T) {
	sessiontest.Run(t, func(t *testing.T) session.Store {
		rdb, prefix := redisForTest(t)
		return session.NewRedisStore(rdb, prefix)
	})
}

// TestRedisStoreKeepsNoSecret: nothing in Redis holds the secret or the
// username in a key name.
func TestRedisStoreKeepsNoSecret(t *testing.T) {
	rdb, prefix := redisForTest(t)
	st := session.NewRedisStore(rdb, prefix)
	ctx := context.Background()
	secret, key := session.NewSecret()
	now := time.Now()
	if _, err := st.Create(ctx, key, session.Session{User: "alice-secretname", Created: now, LastSeen: now, IdleUntil: now.Add(time.Hour), EndsAt: now.Add(2 * time.Hour)}, 5); err != nil {
		t.Fatal(err)
	}
	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	if err != nil || len(keys) != 2 {
		t.Fatalf("keys %v, %v; want a session and a user index", keys, err)
	}
	for _, k := range keys {
		if containsAny(k, secret, "alice") {
			t.Errorf("key %q names the secret or the user", k)
		}
		dump, _ := rdb.Dump(ctx, k).Result()
		if containsAny(dump, secret) {
			t.Errorf("key %q holds the secret", k)
		}
	}
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
