package main

import (
	"cmp"
	"fmt"
	"net/http"
	"strings"

	"tokend/internal/session"
)

// signIn proves who sent a token request. Every endpoint that issues tokens
// asks it, so each way of logging in works the same on all of them: a
// username and password, in the body or as HTTP Basic auth; the session
// cookie a password login started (withSessions); and with OIDC on, an ID
// token as Authorization: Bearer.
type signIn struct {
	auth     Authenticator // checks passwords; the login limits are around it. nil: no passwords (IdP-only)
	sessions *sessions     // nil: no sessions
	oidc     *oidcLogin    // nil: no ID tokens
	limits   *loginLimits  // the failed-login budgets, for ID tokens (auth has them already)
	// maxPassword is the longest password accepted, in bytes: 0 means
	// bcrypt's 72 (maxPasswordBytes).
	maxPassword int
}

// withMaxPassword accepts passwords up to n bytes: for a user database,
// whose PBKDF2, scrypt and argon2 hashes read every byte.
func withMaxPassword(n int) loginOption {
	return func(s *signIn) { s.maxPassword = n }
}

// sourceUsername is a password login's source: the identity is the
// username. An ID token's source names its claim.
const sourceUsername = "the username"

// login is who a request proved to be, and how.
type login struct {
	identity string
	source   string           // what the identity is (the username, an ID token's claim), for error messages
	session  *session.Session // the session that proved it, or that the login started
}

// loginOption adds a way of logging in to a server (NewServer's options).
type loginOption func(*signIn)

// withOIDC accepts ID tokens from o's identity provider.
func withOIDC(o *oidcLogin) loginOption {
	return func(s *signIn) { s.oidc = o }
}

// identify returns the identity the request has proved. username and
// password are the ones sent in the body, if any; a request with neither
// (nor an Authorization header) and a session cookie is a renewal, whose
// identity is the session's, never the request's. Every refusal is an
// *Error: the same 401 for every failed login, 403 for a cross-site use of
// the cookie or a valid ID token whose identity is not allowed, 429 or 503
// from the limits.
func (s *signIn) identify(r *http.Request, username, password string) (login, error) {
	authorization := r.Header.Get("Authorization")
	if raw, ok := bearerToken(authorization); ok {
		switch {
		case username != "" || password != "":
			return login{}, Errorf(EINVALID, "credentials were sent both in the Authorization header and in the body; send them once")
		case s.oidc == nil:
			noteAuthFailure(r.Context(), authMalformedAuthorization)
			return login{}, Errorf(EUNAUTHORIZED, "this server does not accept bearer tokens; send a username and password as JSON {\"username\", \"password\"}, a form, or HTTP Basic auth")
		}
		identity, source, err := s.oidc.login(r.Context(), s.limits, raw)
		if err != nil {
			return login{}, err
		}
		return login{identity: identity, source: source}, nil
	}
	if s.sessions != nil && username == "" && password == "" && authorization == "" {
		if secret := secretOf(r); secret != "" {
			sess, err := s.sessions.renew(r, secret)
			if err != nil {
				return login{}, err
			}
			return login{identity: sess.User, source: sourceUsername, session: &sess}, nil
		}
	}
	if s.auth == nil {
		noteAuthFailure(r.Context(), authMissingCredentials)
		return login{}, &Error{Code: EUNAUTHORIZED, Challenge: `Bearer realm="tokend"`,
			Message: "this server signs in with an identity provider only; send its ID token as Authorization: Bearer <ID token>"}
	}
	username, password, err := credentials(r, username, password)
	if err != nil {
		return login{}, err
	}
	if max := cmp.Or(s.maxPassword, maxPasswordBytes); len(password) > max {
		why := fmt.Sprintf("is longer than %d bytes, which bcrypt cannot check", max)
		if max != maxPasswordBytes {
			why = fmt.Sprintf("is longer than %d bytes, the most tokend checks", max)
		}
		return login{}, invalidFields(map[string]string{"password": why})
	}
	if err := s.auth.Authenticate(r.Context(), username, password); err != nil {
		return login{}, err
	}
	return login{identity: username, source: sourceUsername}, nil
}

// bearerToken returns the token of an Authorization header that is
// "Bearer TOKEN" (RFC 6750; the scheme is case-insensitive).
func bearerToken(authorization string) (string, bool) {
	scheme, token, ok := strings.Cut(authorization, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(token), true
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
	if _, bearer := bearerToken(r.Header.Get("Authorization")); bearer {
		return invalidFields(map[string]string{"session": "an ID token login starts no session; ask the identity provider for a new ID token instead"})
	}
	if !s.sessions.originAllowed(r) {
		return Errorf(EFORBIDDEN, "the page's origin may not hold a session cookie: add it to CORS_ALLOWED_ORIGINS on the server if it is yours")
	}
	return nil
}

// startSession starts a session after a password login that wants one
// (wantsSession) from a page allowed to hold its cookie, and notes it in
// in. It does nothing on a renewal, which has its session already, nor
// after an ID token login (whose source is a claim, not sourceUsername): a
// session's renewal checks the users file, and the provider, not tokend,
// decides how long such a login lasts.
func (s *signIn) startSession(w http.ResponseWriter, r *http.Request, in *login, asked *bool) {
	if s.sessions == nil || in.session != nil || in.source != sourceUsername || !wantsSession(r, asked) || !s.sessions.originAllowed(r) {
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
	return username, password, nil
}
