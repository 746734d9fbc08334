package main

import (
	"cmp"
	"fmt"
	"net/http"
)

// signIn proves who sent a token request. Every endpoint that issues tokens
// asks it, so each way of logging in works the same on all of them. Today
// that is a username and password, in the body or as HTTP Basic auth.
type signIn struct {
	auth Authenticator // checks passwords; the login limits are around it
	// maxPassword is the longest password accepted, in bytes: 0 means
	// bcrypt's 72 (maxPasswordBytes).
	maxPassword int
}

// withMaxPassword accepts passwords up to n bytes: for a user database,
// whose PBKDF2, scrypt and argon2 hashes read every byte.
func withMaxPassword(n int) loginOption {
	return func(s *signIn) { s.maxPassword = n }
}

// loginOption adds a way of logging in to a server (NewServer's options).
type loginOption func(*signIn)

// identify returns the identity the request has proved. username and
// password are the ones sent in the body, if any. Every refusal is an
// *Error: the same 401 for every failed login, 429 or 503 from the limits.
func (s *signIn) identify(r *http.Request, username, password string) (identity string, err error) {
	username, password, err = credentials(r, username, password)
	if err != nil {
		return "", err
	}
	if max := cmp.Or(s.maxPassword, maxPasswordBytes); len(password) > max {
		why := fmt.Sprintf("is longer than %d bytes, which bcrypt cannot check", max)
		if max != maxPasswordBytes {
			why = fmt.Sprintf("is longer than %d bytes, the most tokend checks", max)
		}
		return "", invalidFields(map[string]string{"password": why})
	}
	if err := s.auth.Authenticate(r.Context(), username, password); err != nil {
		return "", err
	}
	return username, nil
}

// credentials returns the username and password from the body or from
// HTTP Basic auth; sending both is ambiguous and refused.
func credentials(r *http.Request, bodyUser, bodyPassword string) (username, password string, err error) {
	inBody := bodyUser != "" || bodyPassword != ""
	if r.Header.Get("Authorization") != "" {
		if inBody {
			return "", "", Errorf(EINVALID, "credentials were sent both in the Authorization header and in the body; send them once")
		}
		user, pass, ok := r.BasicAuth()
		if !ok {
			noteAuthFailure(r.Context(), authMalformedAuthorization)
			return "", "", errBadCredentials
		}
		username, password = user, pass
	} else {
		username, password = bodyUser, bodyPassword
	}
	if username == "" || password == "" {
		noteAuthFailure(r.Context(), authMissingCredentials)
		return "", "", errBadCredentials
	}
	return username, password, nil
}
