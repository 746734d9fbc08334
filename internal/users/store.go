// Package users looks up the password hash of a user, wherever the users
// are kept: an htpasswd file (File) or the application's own PostgreSQL
// user table (Postgres). Both satisfy Store and pass the one conformance
// suite in userstest.
package users

import (
	"context"
	"errors"
)

// ErrNotFound is a user the store does not have (or has disabled).
var ErrNotFound = errors.New("no such user")

// ErrUnavailable wraps every failure to answer: the store is down, slow or
// misconfigured. It never means the user is unknown, so a login that meets
// it must not be refused as a wrong password.
var ErrUnavailable = errors.New("the user database is unavailable")

// Store is where users' password hashes live.
type Store interface {
	// Lookup returns the stored hash of user name, ErrNotFound, or an
	// error wrapping ErrUnavailable.
	Lookup(ctx context.Context, name string) (hash string, err error)
	// Check reports whether Lookup can answer now (for /readyz and
	// `tokend check`); its error wraps ErrUnavailable.
	Check(ctx context.Context) error
	// Sample returns up to n of the stored hashes (none if the store
	// cannot list them), to pick the dummy hash's format and to report
	// the formats in use. Never log them.
	Sample(ctx context.Context, n int) ([]string, error)
}
