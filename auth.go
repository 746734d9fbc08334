package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync/atomic"

	"golang.org/x/crypto/bcrypt"
)

// Authenticator checks a username and password. It returns nil when they
// match, an *Error for the client otherwise (always the same 401 for a
// wrong password and an unknown user), or an internal error.
type Authenticator interface {
	Authenticate(ctx context.Context, username, password string) error
}

// errBadCredentials is the one answer to every failed login, whatever the
// reason, so the response never tells whether a user exists.
var errBadCredentials = &Error{
	Code:    EUNAUTHORIZED,
	Message: "the username or password is wrong, or none was sent; send them as JSON {\"username\", \"password\"}, a form, or HTTP Basic auth",
}

// userStore holds the current users; a reload swaps the whole set at once,
// so a request sees either the old set or the new one, never a mix.
type userStore struct {
	users atomic.Pointer[Users]
}

func newUserStore(u *Users) *userStore {
	s := &userStore{}
	s.users.Store(u)
	return s
}

func (s *userStore) Load() *Users                      { return s.users.Load() }
func (s *userStore) Store(u *Users)                    { s.users.Store(u) }
func (s *userStore) Lookup(name string) ([]byte, bool) { return s.users.Load().Hash(name) }

// bcryptAuth checks passwords against the users' bcrypt hashes. An unknown
// user is checked against a dummy hash of the same cost, so that a miss takes
// as long as a wrong password.
type bcryptAuth struct {
	users *userStore
	dummy []byte
}

// newBcryptAuth returns a bcryptAuth whose dummy hash has the cost of the
// users' own hashes (the highest, if they differ).
func newBcryptAuth(users *userStore) (*bcryptAuth, error) {
	cost := userCost
	if u := users.Load(); u.Len() > 0 {
		cost = bcrypt.MinCost
		for _, name := range u.Names() {
			h, _ := u.Hash(name)
			if c, err := bcrypt.Cost(h); err == nil && c > cost {
				cost = c
			}
		}
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte(rand.Text()), cost)
	if err != nil {
		return nil, fmt.Errorf("dummy hash: %w", err)
	}
	return &bcryptAuth{users: users, dummy: dummy}, nil
}

// Authenticate notes in ctx why a login failed, for the metrics and the log;
// the error is errBadCredentials either way.
func (a *bcryptAuth) Authenticate(ctx context.Context, username, password string) error {
	hash, ok := a.users.Lookup(username)
	if !ok {
		checkPassword(a.dummy, password)
		noteAuthFailure(ctx, authUnknownUser)
		return errBadCredentials
	}
	if !checkPassword(hash, password) {
		noteAuthFailure(ctx, authWrongPassword)
		return errBadCredentials
	}
	return nil
}
