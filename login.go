package main

import (
	"fmt"
	"net/http"

	"tokend/internal/session"
)

// signIn proves who sent a token request. Every endpoint that issues tokens
// asks it, so each way of logging in works the same on all of them. Today
// that is a username and password, in the body or as HTTP Basic auth, and
// the session cookie a password login started (withSessions).
type signIn struct {
	auth     Authenticator // checks passwords; the login limits are around it
	sessions *sessions     // nil: no sessions
}

// login is who a request proved to be, and how.
type login struct {
	identity string
	session  *session.Session // the session that proved it, or that the login started
}

// loginOption adds a way of logging in to a server (NewServer's options).
type loginOption func(*signIn)

// identify returns the identity the request has proved. username and
// password are the ones sent in the body, if any; a request with neither
// (nor an Authorization header) and a session cookie is a renewal, whose
// identity is the session's, never the request's. Every refusal is an
// *Error: the same 401 for every failed login, 403 for a cross-site use of
// the cookie, 429 or 503 from the limits.
func (s *signIn) identify(r *http.Request, username, password string) (login, error) {
	if s.sessions != nil && username == "" && password == "" && r.Header.Get("Authorization") == "" {
		if secret := secretOf(r); secret != "" {
			sess, err := s.sessions.renew(r, secret)
			if err != nil {
				return login{}, err
			}
			return login{identity: sess.User, session: &sess}, nil
		}
	}
	username, password, err := credentials(r, username, password)
	if err != nil {
		return login{}, err
	}
	if err := s.auth.Authenticate(r.Context(), username, password); err != nil {
		return login{}, err
	}
	return login{identity: username}, nil
}

// checkSessionWish refuses, before the password is checked, a login that
// asks for a session it cannot have.
func (s *signIn) checkSessionWish(r *http.Request, asked *bool) error {
	if asked == nil || !*asked {
		return nil
	}
	if s.sessions == nil {
		return invalidFields(map[string]string{"session": "this server keeps no login sessions"})
	}
	if !s.sessions.originAllowed(r) {
		return Errorf(EFORBIDDEN, "the page's origin may not hold a session cookie: add it to CORS_ALLOWED_ORIGINS on the server if it is yours")
	}
	return nil
}

// startSession starts a session after a password login that wants one
// (wantsSession) from a page allowed to hold its cookie, and notes it in
// in. It does nothing on a renewal, which has its session already.
func (s *signIn) startSession(w http.ResponseWriter, r *http.Request, in *login, asked *bool) {
	if s.sessions == nil || in.session != nil || !wantsSession(r, asked) || !s.sessions.originAllowed(r) {
		return
	}
	if sess, ok := s.sessions.start(w, r, in.identity); ok {
		in.session = &sess
	}
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
	if len(password) > maxPasswordBytes {
		return "", "", invalidFields(map[string]string{"password": fmt.Sprintf("is longer than %d bytes, which bcrypt cannot check", maxPasswordBytes)})
	}
	return username, password, nil
}
