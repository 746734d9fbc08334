package main

import (
	"context"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"tokend/internal/backend"
	"tokend/internal/session"
	userstore "tokend/internal/users"
)

// sessionCookie is the session cookie's name. The __Host- prefix makes
// browsers refuse it unless it is Secure, has Path=/ and no Domain, so no
// other host (a sibling subdomain included) can set or overwrite it.
const sessionCookie = "__Host-tokend_session"

// sessionOpTimeout bounds every session store call, so a slow Redis
// answers a renewal with 503 quickly instead of holding the request.
const sessionOpTimeout = time.Second

// Why a session ended, as tokend_sessions_ended_total names it.
const (
	endLogout          = "logout"
	endRevoked         = "revoked"          // by an operator
	endUserRemoved     = "user_removed"     // the user is gone from the users file
	endPasswordChanged = "password_changed" // the user's hash changed since the login
	endReplaced        = "replaced"         // a new login from the same browser
	endEvicted         = "evicted"          // the per-user or the memory store's cap
)

// sessionEndReasons lists every reason. Timeouts are not among them: a
// session that times out is dropped by the store (Redis expires it by
// itself), and a renewal cannot tell it from one that never existed.
var sessionEndReasons = []string{endLogout, endRevoked, endUserRemoved, endPasswordChanged, endReplaced, endEvicted}

// SessionConfig is how sessions behave; see the README's "Sessions".
type SessionConfig struct {
	IdleTimeout time.Duration // SESSION_IDLE_TIMEOUT
	MaxAge      time.Duration // SESSION_MAX_AGE
	SameSite    http.SameSite // SESSION_SAMESITE
	PerUser     int           // SESSION_MAX_PER_USER
	MaxSessions int           // SESSION_MAX: the memory store's cap
}

// sessions starts, renews and ends login sessions over a session.Store.
// The cookie holds a random secret; the store knows only its hash.
type sessions struct {
	store   session.Store
	cfg     SessionConfig
	origins []string   // CORS_ALLOWED_ORIGINS: other origins that may use the cookie
	users   userHashes // a renewal checks that the user and password are unchanged
	log     *slog.Logger
	m       *metrics
	now     func() time.Time
	health  *backend.Health // whether the store answers: one log line each way, and tokend_session_store_up
}

func newSessions(store session.Store, cfg SessionConfig, origins []string, users *userStore, log *slog.Logger, m *metrics, now func() time.Time) *sessions {
	return &sessions{store: store, cfg: cfg, origins: origins, users: fileCredentials(users), log: log, m: m, now: now,
		health: backend.NewHealth(log, gaugeSetter(m.sessionStoreUp),
			"session store is not answering: session renewals get 503 until it does; password logins still work",
			"session store is answering again")}
}

// userHashes looks up a user's stored hash for the sessions: ok false for
// a user who is gone (or disabled), err for a store that cannot answer
// (already the 503 to send).
type userHashes func(ctx context.Context, name string) (hash []byte, ok bool, err error)

// fileCredentials reads the users file as last loaded.
func fileCredentials(users *userStore) userHashes {
	return func(_ context.Context, name string) ([]byte, bool, error) {
		hash, ok := users.Lookup(name)
		return hash, ok, nil
	}
}

// storeCredentials reads a user store (the user database) on every
// renewal, so a changed password, a disabled or a deleted user ends the
// session at its next renewal; a store that cannot answer is a 503, as for
// a password login, and health notes it (one log line, /readyz).
func storeCredentials(store userstore.Store, health *storeHealth) userHashes {
	return func(ctx context.Context, name string) ([]byte, bool, error) {
		hash, err := store.Lookup(ctx, name)
		switch {
		case errors.Is(err, userstore.ErrNotFound):
			return nil, false, nil
		case err != nil:
			health.down(err) // logged once, and /readyz and the gauge follow
			return nil, false, retryLater(EUNAVAILABLE, dbRetryAfter, "the user database is unavailable, so the session's user cannot be checked")
		}
		return []byte(hash), true, nil
	}
}

// withSessions makes a server's logins start and accept sessions.
func withSessions(s *sessions) loginOption {
	return func(in *signIn) { in.sessions = s }
}

// storeErr turns a store error that is not ErrNotFound into the 503 the
// client gets, and notes the store as down: one log line when it goes
// down, one when it answers again (health.Answered), not one per request.
func (s *sessions) storeErr(err error) error {
	s.health.Failed(err)
	return &Error{Code: EUNAVAILABLE, RetryAfter: 5 * time.Second,
		Message: "login sessions are unavailable for now (the session store is not answering); log in again with the username and password"}
}

// ping asks the store whether it answers, for /readyz, which so notices
// a recovery even when no renewal comes.
func (s *sessions) ping(ctx context.Context) error {
	// Half a second: a readiness probe's own timeout is often one.
	ctx, cancel := context.WithTimeout(ctx, sessionOpTimeout/2)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.storeErr(err)
		return err
	}
	s.health.Answered()
	return nil
}

// errNoSession answers a cookie of no live session. It never touches a
// username's budget: the cookie names no user.
var errNoSession = &Error{Code: EUNAUTHORIZED,
	Message: "the login session has ended (logged out, timed out or revoked) or is unknown; log in again with the username and password"}

// checkSameOrigin refuses a cookie-authenticated request that a page of
// another site could have made (ASVS 50.3, OWASP CSRF): it must be JSON,
// which a cross-site form cannot send without a CORS preflight, and its
// Origin, when it has one, must be tokend's own or an allowed one.
func (s *sessions) checkSameOrigin(r *http.Request) error {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return Errorf(EFORBIDDEN, "a request that uses the session cookie must be sent with Content-Type: application/json (a cross-site form cannot send it)")
	}
	if !s.originAllowed(r) {
		return Errorf(EFORBIDDEN, "the page's origin may not use the session cookie: add it to CORS_ALLOWED_ORIGINS on the server if it is yours")
	}
	return nil
}

// originAllowed reports whether the request's Origin, if any, is tokend's
// own or listed in CORS_ALLOWED_ORIGINS; "*" lists none for cookies. With
// no Origin, a browser's Sec-Fetch-Site, when sent, must say same-origin
// (or none: typed by the user); the null origin never passes.
func (s *sessions) originAllowed(r *http.Request) bool {
	if sentNullOrigin(r) {
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		// Browsers send Origin on every cross-origin POST; without one
		// the request is same-origin or not from a browser.
		site := r.Header.Get("Sec-Fetch-Site")
		return site == "" || site == "same-origin" || site == "none"
	}
	if !corsAllowsAll(s.origins) && slices.Contains(s.origins, strings.ToLower(origin)) {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

// secretOf returns the request's session secret, or "".
func secretOf(r *http.Request) string {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return ""
	}
	return c.Value
}

// renew proves a request with its session cookie: the session must be
// live, its user still in the users file with the password of the login.
func (s *sessions) renew(r *http.Request, secret string) (session.Session, error) {
	if err := s.checkSameOrigin(r); err != nil {
		return session.Session{}, err
	}
	if !session.ValidSecret(secret) {
		noteAuthFailure(r.Context(), authNoSession)
		return session.Session{}, errNoSession
	}
	ctx, cancel := context.WithTimeout(r.Context(), sessionOpTimeout)
	defer cancel()
	key := session.Key(secret)
	now := s.now()
	sess, err := s.store.Touch(ctx, key, now, now.Add(s.cfg.IdleTimeout))
	switch {
	case errors.Is(err, session.ErrNotFound):
		noteAuthFailure(r.Context(), authNoSession)
		return session.Session{}, errNoSession
	case err != nil:
		return session.Session{}, s.storeErr(err)
	}
	s.health.Answered()
	if rl := requestLogFrom(r.Context()); rl != nil {
		rl.session = sess.ID
	}
	reason, err := s.userChanged(r.Context(), sess)
	if err != nil {
		return session.Session{}, err
	}
	if reason != "" {
		if err := s.store.Delete(ctx, key); err == nil {
			s.m.sessionsEnded.WithLabelValues(reason).Inc()
		}
		noteAuthFailure(r.Context(), authNoSession)
		return session.Session{}, errNoSession
	}
	s.m.sessionsRenewed.Inc()
	return sess, nil
}

// userChanged says why the session's user can no longer use it, or "".
func (s *sessions) userChanged(ctx context.Context, sess session.Session) (string, error) {
	hash, ok, err := s.users(ctx, sess.User)
	switch {
	case err != nil:
		return "", err
	case !ok:
		return endUserRemoved, nil
	case session.CredentialOf(hash) != sess.Credential:
		return endPasswordChanged, nil
	}
	return "", nil
}

// endUsers ends at once the sessions of users whose password changed or
// who are gone (names), now that users is loaded: a reload's onChange. A
// renewal checks the user too, so a store that does not answer now only
// delays the listing, not the refusal.
func (s *sessions) endUsers(users *Users, names []string) {
	for _, name := range names {
		ctx, cancel := context.WithTimeout(context.Background(), sessionOpTimeout)
		n, err := s.store.DeleteUser(ctx, name)
		cancel()
		if err != nil {
			s.storeErr(err)
			return
		}
		if n == 0 {
			continue
		}
		reason := endPasswordChanged
		if _, ok := users.Hash(name); !ok {
			reason = endUserRemoved
		}
		s.m.sessionsEnded.WithLabelValues(reason).Add(float64(n))
		s.log.Info("sessions ended", "user", name, "reason", reason, "sessions", n)
	}
}

// wantsSession reports whether a password login should start a session: when
// the body says so, or, when it does not say, for a browser (which sends
// Sec-Fetch-Mode; curl and server clients do not), so plain API clients
// get no cookie and cost no session.
func wantsSession(r *http.Request, asked *bool) bool {
	if asked != nil {
		return *asked
	}
	return r.Header.Get("Sec-Fetch-Mode") != ""
}

// start begins a session for user after a password login and sets its
// cookie. A store that does not answer costs the session, not the token:
// the login has succeeded, so it is logged and the answer has no cookie.
func (s *sessions) start(w http.ResponseWriter, r *http.Request, user string) (session.Session, bool) {
	hash, ok, err := s.users(r.Context(), user)
	if err != nil || !ok {
		return session.Session{}, false // removed during the login, or the store stopped answering
	}
	ctx, cancel := context.WithTimeout(r.Context(), sessionOpTimeout)
	defer cancel()
	now := s.now()
	secret, key := session.NewSecret()
	sess := session.Session{ID: session.IDOf(key), User: user, Credential: session.CredentialOf(hash),
		Created: now, LastSeen: now, IdleUntil: now.Add(min(s.cfg.IdleTimeout, s.cfg.MaxAge)), EndsAt: now.Add(s.cfg.MaxAge)}
	evicted, err := s.store.Create(ctx, key, sess, s.cfg.PerUser)
	if err != nil {
		s.storeErr(err)
		s.log.WarnContext(r.Context(), "token issued without a session: the session store is not answering", "identity", user)
		return session.Session{}, false
	}
	s.health.Answered()
	s.m.sessionsStarted.Inc()
	if evicted > 0 {
		s.m.sessionsEnded.WithLabelValues(endEvicted).Add(float64(evicted))
	}
	// A new login from the same browser ends the session it had.
	if old := secretOf(r); session.ValidSecret(old) {
		if err := s.store.Delete(ctx, session.Key(old)); err == nil {
			s.m.sessionsEnded.WithLabelValues(endReplaced).Inc()
		}
	}
	if rl := requestLogFrom(r.Context()); rl != nil {
		rl.session = sess.ID
	}
	http.SetCookie(w, s.cookie(secret, int(s.cfg.MaxAge/time.Second)))
	return sess, true
}

// cookie is the session cookie with value; maxAge -1 deletes it.
func (s *sessions) cookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: sessionCookie, Value: value, Path: "/", MaxAge: maxAge,
		Secure: true, HttpOnly: true, SameSite: s.cfg.SameSite}
}

// handleLogout ends the request's session and deletes its cookie: POST
// /logout and DELETE /session (method). With no session it answers the
// same 204, so logging out twice is not an error.
func handleLogout(log *slog.Logger, s *sessions, method string) http.Handler {
	allow := "OPTIONS, " + method
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case method:
		case http.MethodOptions: // a CORS preflight: allowCORS has answered for an allowed origin
			w.Header().Set("Allow", allow)
			w.WriteHeader(http.StatusNoContent)
			return
		default:
			w.Header().Set("Allow", allow)
			writeError(w, r, log, Errorf(EMETHOD, "%s is not allowed here: end the session with POST /logout or DELETE /session", r.Method))
			return
		}
		secret := secretOf(r)
		if secret != "" {
			if err := s.checkSameOrigin(r); err != nil {
				writeError(w, r, log, err)
				return
			}
		}
		if session.ValidSecret(secret) {
			ctx, cancel := context.WithTimeout(r.Context(), sessionOpTimeout)
			defer cancel()
			key := session.Key(secret)
			switch err := s.store.Delete(ctx, key); {
			case err == nil:
				s.health.Answered()
				s.m.sessionsEnded.WithLabelValues(endLogout).Inc()
				if rl := requestLogFrom(r.Context()); rl != nil {
					rl.session = session.IDOf(key)
				}
			case !errors.Is(err, session.ErrNotFound):
				writeError(w, r, log, s.storeErr(err))
				return
			}
		}
		http.SetCookie(w, s.cookie("", -1))
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
	})
}
