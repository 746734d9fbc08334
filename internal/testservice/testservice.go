// Package testservice connects tests to the Redis and PostgreSQL of the
// machine they run on, for the tests of package main and of internal/
// alike. Only tests import it. A test whose service does not answer skips,
// naming what is missing; with CI=true it fails instead, since there a
// missing service is a broken CI machine, not a reason to test less.
package testservice

import (
	"context"
	"crypto/rand"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// RedisURL is the test Redis: TEST_REDIS_URL, or 127.0.0.1:6379.
func RedisURL() string {
	if url := os.Getenv("TEST_REDIS_URL"); url != "" {
		return url
	}
	return "redis://127.0.0.1:6379/0"
}

// Redis returns a client of RedisURL, made by open (nil: go-redis's own),
// and a key prefix of the test's own whose keys are removed after. The
// client is named for this test alone, so that CLIENT KILL can close its
// connections and no other test's.
func Redis(t testing.TB, open func(url string) (*redis.Client, error)) (*redis.Client, string) {
	t.Helper()
	url := RedisURL()
	if open == nil {
		open = func(url string) (*redis.Client, error) {
			opt, err := redis.ParseURL(url)
			if err != nil {
				return nil, err
			}
			return redis.NewClient(opt), nil
		}
	}
	rdb, err := open(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb.Options().ClientName = "tokendtest-" + rand.Text()[:10] // before the first connection is made
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

// Postgres connects to the test PostgreSQL at url, to make the tables a
// test needs; the connection is closed when the test ends.
func Postgres(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL at %s is needed (CI=true): %v", url, err)
		}
		t.Skipf("skipping: no PostgreSQL at %s: %v", url, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}
