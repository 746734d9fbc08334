package main

import (
	"slices"
	"testing"
	"time"

	"tokend/internal/passhash"
)

func TestLoadConfigUsersDatabase(t *testing.T) {
	const url = "postgres://tokend@127.0.0.1:5432/app"
	tests := []struct {
		name     string
		env      map[string]string
		want     UsersDBConfig
		memKiB   uint32
		problems []string
	}{
		{"defaults", nil, UsersDBConfig{Query: "SELECT password_hash FROM users WHERE username = $1", QueryTimeout: 2 * time.Second}, 128 << 10, nil},
		{"every setting", map[string]string{"USERS_DATABASE_URL": url, "USERS_QUERY": " SELECT password FROM auth_user WHERE username = $1 AND is_active ",
			"USERS_SAMPLE_QUERY": "select password from auth_user limit 10", "USERS_QUERY_TIMEOUT": "500ms", "HASH_MEMORY_MIB": "256"},
			UsersDBConfig{URL: url, Query: "SELECT password FROM auth_user WHERE username = $1 AND is_active", SampleQuery: "select password from auth_user limit 10", QueryTimeout: 500 * time.Millisecond},
			256 << 10, nil},
		{"a query that writes", map[string]string{"USERS_DATABASE_URL": url, "USERS_QUERY": "UPDATE users SET seen = now() WHERE username = $1 RETURNING password_hash"}, UsersDBConfig{}, 0,
			[]string{"USERS_QUERY must be a SELECT (or WITH … SELECT) statement; for example: SELECT password_hash FROM users WHERE username = $1"}},
		{"a query without $1", map[string]string{"USERS_DATABASE_URL": url, "USERS_QUERY": "SELECT password_hash FROM users"}, UsersDBConfig{}, 0,
			[]string{"USERS_QUERY must use $1 for the username; for example: SELECT password_hash FROM users WHERE username = $1"}},
		{"a sample query that is not a SELECT", map[string]string{"USERS_DATABASE_URL": url, "USERS_SAMPLE_QUERY": "TRUNCATE users"}, UsersDBConfig{}, 0,
			[]string{"USERS_SAMPLE_QUERY must be a SELECT returning one column of hashes, such as SELECT password_hash FROM users LIMIT 100"}},
		{"a query without a database", map[string]string{"USERS_QUERY": "SELECT password FROM auth_user WHERE username = $1"}, UsersDBConfig{}, 0,
			[]string{"USERS_QUERY and USERS_SAMPLE_QUERY need USERS_DATABASE_URL: set it to read users from PostgreSQL, or remove them to use the users file"}},
		{"limits", map[string]string{"USERS_QUERY_TIMEOUT": "10ms", "HASH_MEMORY_MIB": "8192"}, UsersDBConfig{}, 0,
			[]string{`USERS_QUERY_TIMEOUT is "10ms": use a duration from 50ms to 1m0s, such as 500ms or 2s`, `HASH_MEMORY_MIB is "8192": use a whole number from 8 to 4096`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig(cfgEnv(tt.env))
			if got := configProblems(t, err); !slices.Equal(got, tt.problems) {
				t.Fatalf("problems:\n%q\nwant\n%q", got, tt.problems)
			}
			if tt.problems != nil {
				return
			}
			if c.UsersDB != tt.want {
				t.Errorf("UsersDB = %+v; want %+v", c.UsersDB, tt.want)
			}
			want := passhash.DefaultLimits
			want.MemoryKiB = tt.memKiB
			if c.HashLimits != want {
				t.Errorf("HashLimits = %+v; want %+v", c.HashLimits, want)
			}
		})
	}
}

// TestLoadAllUsersDatabase: with USERS_DATABASE_URL the users file is not
// read, so a missing one is no problem.
func TestLoadAllUsersDatabase(t *testing.T) {
	env := map[string]string{"USERS_DATABASE_URL": "postgres://tokend@127.0.0.1/app", "USERS_FILE": "/nonexistent/users"}
	cfg, users, err := loadAll(cfgEnv(env))
	if err != nil || cfg.UsersDB.URL == "" || users.Len() != 0 {
		t.Fatalf("loadAll = %v, %v users, %v", cfg != nil, users, err)
	}
}
