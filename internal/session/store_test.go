package session_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"tokend/internal/session"
	"tokend/internal/session/sessiontest"
	"tokend/internal/testservice"
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

func TestRedisStore(t *testing.T) {
	sessiontest.Run(t, func(t *testing.T) session.Store {
		rdb, prefix := testservice.Redis(t, nil)
		return session.NewRedisStore(rdb, prefix)
	})
}

// TestRedisStoreKeepsNoSecret: nothing in Redis holds the secret or the
// username in a key name.
func TestRedisStoreKeepsNoSecret(t *testing.T) {
	rdb, prefix := testservice.Redis(t, nil)
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
