package main

import (
	"strings"
	"time"

	"tokend/internal/passhash"
	userstore "tokend/internal/users"
)

// UsersDBConfig is where the users are when they are in the application's
// own PostgreSQL database instead of the users file: see the README's
// "User database".
type UsersDBConfig struct {
	URL          string // USERS_DATABASE_URL; empty: the users file
	Query        string
	SampleQuery  string
	QueryTimeout time.Duration
}

// open returns the store over the user database, reached as serve and
// `tokend check` both reach it. It does not connect (see OpenPostgres).
func (c UsersDBConfig) open() (*userstore.Postgres, error) {
	return userstore.OpenPostgres(userstore.PostgresConfig{URL: c.URL, Query: c.Query, SampleQuery: c.SampleQuery, Timeout: c.QueryTimeout})
}

// usersDatabase reads the user database settings and HASH_MEMORY_MIB.
func (s *settings) usersDatabase(c *Config) {
	c.UsersDB = UsersDBConfig{
		URL:          s.str("USERS_DATABASE_URL", ""),
		Query:        s.str("USERS_QUERY", userstore.DefaultQuery),
		SampleQuery:  s.str("USERS_SAMPLE_QUERY", ""),
		QueryTimeout: s.duration("USERS_QUERY_TIMEOUT", 2*time.Second, 50*time.Millisecond, time.Minute, false),
	}
	if c.UsersDB.URL != "" {
		if err := userstore.ValidateQuery(c.UsersDB.Query); err != nil {
			s.problemf("USERS_QUERY %v; for example: %s", err, userstore.DefaultQuery)
		}
		if q := c.UsersDB.SampleQuery; q != "" && !strings.EqualFold(strings.Fields(q)[0], "SELECT") {
			s.problemf("USERS_SAMPLE_QUERY must be a SELECT returning one column of hashes, such as SELECT password_hash FROM users LIMIT 100")
		}
	} else if s.lookup("USERS_QUERY") != "" || s.lookup("USERS_SAMPLE_QUERY") != "" {
		s.problemf("USERS_QUERY and USERS_SAMPLE_QUERY need USERS_DATABASE_URL: set it to read users from PostgreSQL, or remove them to use the users file")
	}
	mib := s.integer("HASH_MEMORY_MIB", 128, 8, 4096)
	c.HashLimits = passhash.DefaultLimits
	c.HashLimits.MemoryKiB = uint32(mib) << 10
}
