package users_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"tokend/internal/testservice"
	"tokend/internal/users"
	"tokend/internal/users/userstest"
)

// testDatabaseURL is the machine's PostgreSQL (trust auth, database test).
const testDatabaseURL = "postgres://root@127.0.0.1:5432/test?sslmode=disable"

// databaseURL is TEST_DATABASE_URL, or testDatabaseURL.
func databaseURL() string {
	if url := os.Getenv("TEST_DATABASE_URL"); url != "" {
		return url
	}
	return testDatabaseURL
}

// admin connects to the test database to make tables.
func admin(t testing.TB) *pgx.Conn {
	t.Helper()
	return testservice.Postgres(t, databaseURL())
}

// userTable makes a table of its own for one test, dropped at the end.
func userTable(t testing.TB, conn *pgx.Conn, rows map[string]string) string {
	t.Helper()
	ctx := context.Background()
	table := "tokend_users_" + strings.ToLower(rand.Text()[:12])
	if _, err := conn.Exec(ctx, "CREATE TABLE "+table+" (id serial PRIMARY KEY, username text UNIQUE, password_hash text, is_active boolean NOT NULL DEFAULT true)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Exec(context.Background(), "DROP TABLE IF EXISTS "+table) })
	for name, hash := range rows {
		if _, err := conn.Exec(ctx, "INSERT INTO "+table+" (username, password_hash) VALUES ($1, $2)", name, hash); err != nil {
			t.Fatal(err)
		}
	}
	return table
}

func openStore(t testing.TB, cfg users.PostgresConfig) *users.Postgres {
	t.Helper()
	if cfg.URL == "" {
		cfg.URL = databaseURL()
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	s, err := users.OpenPostgres(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestPostgresConformance(t *testing.T) {
	conn := admin(t)
	userstest.Run(t, func(t *testing.T, u map[string]string) users.Store {
		table := userTable(t, conn, u)
		return openStore(t, users.PostgresConfig{
			Query:       "SELECT password_hash FROM " + table + " WHERE username = $1",
			SampleQuery: "SELECT password_hash FROM " + table,
		})
	})
}

func TestPostgresRows(t *testing.T) {
	conn := admin(t)
	ctx := context.Background()
	table := userTable(t, conn, map[string]string{"alice": userstest.Users["alice"], "carol": userstest.Users["Bob"]})
	conn.Exec(ctx, "UPDATE "+table+" SET is_active = false WHERE username = 'carol'")
	conn.Exec(ctx, "INSERT INTO "+table+" (username, password_hash) VALUES ('nopass', NULL), ('empty', '')")
	for _, tt := range []struct {
		name, query, user, want string
		err                     error
	}{
		{"flag column: active", "SELECT password_hash, NOT is_active FROM %s WHERE username = $1", "alice", userstest.Users["alice"], nil},
		{"flag column: disabled", "SELECT password_hash, NOT is_active FROM %s WHERE username = $1", "carol", "", users.ErrNotFound},
		{"condition in WHERE", "SELECT password_hash FROM %s WHERE username = $1 AND is_active", "carol", "", users.ErrNotFound},
		{"NULL hash", "SELECT password_hash FROM %s WHERE username = $1", "nopass", "", users.ErrNotFound},
		{"empty hash", "SELECT password_hash FROM %s WHERE username = $1", "empty", "", users.ErrNotFound},
		{"two rows", "SELECT password_hash FROM %s WHERE username = $1 OR username = 'carol'", "alice", "", users.ErrUnavailable},
		{"three columns", "SELECT password_hash, 1, 2 FROM %s WHERE username = $1", "alice", "", users.ErrUnavailable},
		{"three columns, no row", "SELECT password_hash, 1, 2 FROM %s WHERE username = $1", "nobody", "", users.ErrUnavailable},
		{"no such table", "SELECT password_hash FROM %s_gone WHERE username = $1", "alice", "", users.ErrUnavailable},
		{"writes are refused", "WITH gone AS (DELETE FROM %s WHERE username = $1 RETURNING password_hash) SELECT password_hash FROM gone", "alice", "", users.ErrUnavailable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, users.PostgresConfig{Query: fmt.Sprintf(tt.query, table)})
			got, err := s.Lookup(ctx, tt.user)
			if got != tt.want || !errors.Is(err, tt.err) {
				t.Fatalf("Lookup(%q) = %q, %v; want %q, %v", tt.user, got, err, tt.want, tt.err)
			}
		})
	}
	var n int
	conn.QueryRow(ctx, "SELECT count(*) FROM "+table+" WHERE username = 'alice'").Scan(&n)
	if n != 1 {
		t.Fatal("the read-only session deleted a row")
	}
}

// TestPostgresRecovers: a connection killed under the pool (as a database
// restart or failover does) fails at most the lookups in flight with
// ErrUnavailable, never ErrNotFound, and the next ones work.
func TestPostgresRecovers(t *testing.T) {
	conn := admin(t)
	ctx := context.Background()
	table := userTable(t, conn, map[string]string{"alice": userstest.Users["alice"]})
	s := openStore(t, users.PostgresConfig{Query: "SELECT password_hash FROM " + table + " WHERE username = $1"})
	if _, err := s.Lookup(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'tokend' AND datname = current_database() AND query LIKE '%"+table+"%'"); err != nil {
		t.Fatal(err)
	}
	failed := 0
	for range 5 {
		got, err := s.Lookup(ctx, "alice")
		switch {
		case errors.Is(err, users.ErrUnavailable):
			failed++
		case err != nil || got != userstest.Users["alice"]:
			t.Fatalf("Lookup after the kill = %q, %v", got, err)
		}
	}
	if failed > 1 {
		t.Fatalf("%d of 5 lookups failed after one killed connection; want at most 1", failed)
	}
}

func TestPostgresDown(t *testing.T) {
	// Nothing listens on port 1 of loopback: a database that is down.
	s := openStore(t, users.PostgresConfig{URL: "postgres://root@127.0.0.1:1/test?sslmode=disable", Query: users.DefaultQuery, Timeout: time.Second})
	if _, err := s.Lookup(context.Background(), "alice"); !errors.Is(err, users.ErrUnavailable) {
		t.Fatalf("Lookup = %v; want ErrUnavailable", err)
	}
	if err := s.Check(context.Background()); !errors.Is(err, users.ErrUnavailable) {
		t.Fatalf("Check = %v; want ErrUnavailable", err)
	}
}

func TestOpenPostgresRefuses(t *testing.T) {
	for _, tt := range []struct{ url, query, want string }{
		{testDatabaseURL, "DELETE FROM users WHERE username = $1", "USERS_QUERY must be a SELECT (or WITH … SELECT) statement"},
		{testDatabaseURL, "SELECT password_hash FROM users WHERE username = 'x'", "USERS_QUERY must use $1 for the username"},
		{testDatabaseURL, "SELECT password_hash FROM users WHERE username = $1 AND org = $2", "USERS_QUERY uses $2: the only parameter is $1, the username"},
		{testDatabaseURL, "SELECT password_hash FROM users WHERE username = $1; DROP TABLE users", "USERS_QUERY must be one statement, without ';'"},
		{"postgres://root:s3cret@127.0.0.1:notaport/test", users.DefaultQuery, "USERS_DATABASE_URL is not a valid postgres:// URL or key=value connection string"},
	} {
		_, err := users.OpenPostgres(users.PostgresConfig{URL: tt.url, Query: tt.query, Timeout: time.Second})
		if err == nil || err.Error() != tt.want {
			t.Errorf("OpenPostgres(%q) = %v; want %q", tt.query, err, tt.want)
		}
	}
}

// BenchmarkPostgresLookup: one lookup's latency over loopback, which every
// login (cached or not) pays in database mode.
func BenchmarkPostgresLookup(b *testing.B) {
	conn := admin(b)
	table := userTable(b, conn, map[string]string{"alice": userstest.Users["alice"]})
	s := openStore(b, users.PostgresConfig{Query: "SELECT password_hash FROM " + table + " WHERE username = $1"})
	ctx := context.Background()
	for b.Loop() {
		if _, err := s.Lookup(ctx, "alice"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPostgresSlow: a query slower than the timeout is ErrUnavailable (a
// 503 for the login), and the pool goes on serving afterwards.
func TestPostgresSlow(t *testing.T) {
	conn := admin(t)
	table := userTable(t, conn, map[string]string{"alice": userstest.Users["alice"]})
	s := openStore(t, users.PostgresConfig{
		Query:   "SELECT password_hash FROM " + table + ", pg_sleep(CASE WHEN $1 = 'slow' THEN 5 ELSE 0 END) WHERE username = $1 OR $1 = 'slow'",
		Timeout: 200 * time.Millisecond,
	})
	ctx := context.Background()
	if _, err := s.Lookup(ctx, "slow"); !errors.Is(err, users.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow lookup: %v; want ErrUnavailable from the deadline", err)
	}
	for range 3 {
		if got, err := s.Lookup(ctx, "alice"); err != nil || got != userstest.Users["alice"] {
			t.Fatalf("after the slow one: %q, %v", got, err)
		}
	}
}
