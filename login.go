package main

import (
	"fmt"
	"net/http"
	"strings"
)

// signIn proves who sent a token request. Every endpoint that issues tokens
// asks it, so each way of logging in works the same on all of them: a
// username and password, in the body or as HTTP Basic auth, and with OIDC
// on, an ID token as Authorization: Bearer.
type signIn struct {
	auth   Authenticator // checks passwords; the login limits are around it. nil: no passwords (IdP-only)
	oidc   *oidcLogin    // nil: no ID tokens
	limits *loginLimits  // the failed-login budgets, for ID tokens (auth has them already)
}

// loginOption adds a way of logging in to a server (NewServer's options).
type loginOption func(*signIn)

// withOIDC accepts ID tokens from o's identity provider.
func withOIDC(o *oidcLogin) loginOption {
	return func(s *signIn) { s.oidc = o }
}

// identify returns the identity the request has proved, and what it is
// (the username, or an ID token's claim) for error messages. username and
// password are the ones sent in the body, if any. Every refusal is an
// *Error: the same 401 for every failed login, 403 for a valid ID token
// whose identity is not allowed, 429 or 503 from the limits.
func (s *signIn) identify(r *http.Request, username, password string) (identity, source string, err error) {
	if raw, ok := bearerToken(r); ok {
		switch {
		case username != "" || password != "":
			return "", "", Errorf(EINVALID, "credentials were sent both in the Authorization header and in the body; send them once")
		case s.oidc == nil:
			noteAuthFailure(r.Context(), authMalformedAuthorization)
			return "", "", Errorf(EUNAUTHORIZED, "this server does not accept bearer tokens; send a username and password as JSON {\"username\", \"password\"}, a form, or HTTP Basic auth")
		}
		return s.oidc.login(r.Context(), s.limits, raw)
	}
	if s.auth == nil {
		noteAuthFailure(r.Context(), authMissingCredentials)
		return "", "", &Error{Code: EUNAUTHORIZED, Challenge: `Bearer realm="tokend"`,
			Message: "this server signs in with an identity provider only; send its ID token as Authorization: Bearer <ID token>"}
	}
	username, password, err = credentials(r, username, password)
	if err != nil {
		return "", "", err
	}
	if err := s.auth.Authenticate(r.Context(), username, password); err != nil {
		return "", "", err
	}
	return username, "the username", nil
}

// bearerToken returns the token of an Authorization: Bearer header
// (RFC 6750; the scheme is case-insensitive).
func bearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(token), true
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
