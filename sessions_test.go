package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"tokend/internal/session"
)

// sessionServer is tokend's handler with sessions over store, the users
// alice and bob, a clock the test moves and a private admin mux.
type sessionServer struct {
	http.Handler
	admin *http.ServeMux
	users *userStore
	clock *testClock
	logs  *syncBuffer
	sess  *sessions
	t     testing.TB
}

const (
	appOrigin  = "https://app.example.com" // listed in CORS_ALLOWED_ORIGINS
	evilOrigin = "https://evil.example.net"
	selfOrigin = "http://example.com" // httptest.NewRequest's host
)

func newSessionServer(t testing.TB, store session.Store, edit func(*Config)) *sessionServer {
	t.Helper()
	users := testUsers(t, map[string]string{"alice": "correct horse", "bob": "battery staple"})
	auth, err := newBcryptAuth(users)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.CORSOrigins = []string{appOrigin}
	cfg.Sessions = SessionConfig{IdleTimeout: 2 * time.Hour, MaxAge: 12 * time.Hour, SameSite: http.SameSiteStrictMode, PerUser: 10, MaxSessions: 10000}
	if edit != nil {
		edit(cfg)
	}
	clock := newTestClock()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m := newMetrics()
	sess := newSessions(store, cfg.Sessions, cfg.CORSOrigins, users, log, m, clock.now)
	admin := http.NewServeMux()
	addAdminRoutes(admin, log, sess)
	return &sessionServer{Handler: NewServer(log, cfg, auth, users, m, clock.now, withSessions(sess)),
		admin: admin, users: users, clock: clock, logs: logs, sess: sess, t: t}
}

// req describes one request: a browser's unless told otherwise.
type req struct {
	method, path, body, ct, origin, cookie, addr string
	fetchSite                                    string // Sec-Fetch-Site
	curl                                         bool   // no Sec-Fetch-Mode: not a browser
}

func (s *sessionServer) do(r req) *httptest.ResponseRecorder {
	if r.method == "" {
		r.method = "POST"
	}
	if r.path == "" {
		r.path = "/token"
	}
	hr := httptest.NewRequest(r.method, r.path, strings.NewReader(r.body))
	if r.ct == "" && r.body != "" || r.ct == "json" {
		r.ct = jsonCT
	}
	if r.ct != "none" && r.ct != "" {
		hr.Header.Set("Content-Type", r.ct)
	}
	if r.origin != "" {
		hr.Header.Set("Origin", r.origin)
	}
	if !r.curl {
		hr.Header.Set("Sec-Fetch-Mode", "cors")
	}
	if r.fetchSite != "" {
		hr.Header.Set("Sec-Fetch-Site", r.fetchSite)
	}
	if r.cookie != "" {
		hr.AddCookie(&http.Cookie{Name: sessionCookie, Value: r.cookie})
	}
	if r.addr != "" {
		hr.RemoteAddr = r.addr + ":40000"
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, hr)
	return rec
}

// login logs alice in from tokend's own page and returns the cookie value.
func (s *sessionServer) login() string {
	s.t.Helper()
	rec := s.do(req{body: `{"username":"alice","password":"correct horse"}`, origin: selfOrigin})
	c := cookieOf(rec)
	if rec.Code != 200 || c == nil || c.Value == "" {
		s.t.Fatalf("login: %d %s %v", rec.Code, rec.Body, rec.Header())
	}
	return c.Value
}

func cookieOf(rec *httptest.ResponseRecorder) *http.Cookie {
	for _, c := range rec.Result().Cookies() {
		if c.Name == sessionCookie {
			return c
		}
	}
	return nil
}

// claimsOf decodes a token's payload, unverified (token_test checks signatures).
func claimsOf(t *testing.T, body []byte) (tokenResponse, map[string]any) {
	t.Helper()
	var resp tokenResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	parts := strings.Split(resp.Token, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	json.Unmarshal(payload, &claims)
	return resp, claims
}

var cookiePattern = regexp.MustCompile(`^__Host-tokend_session=[A-Za-z0-9_-]{43}; Path=/; Max-Age=43200; HttpOnly; Secure; SameSite=Strict$`)

// TestSessionCookie: the cookie's attributes exactly, and the answer says
// when the session ends.
func TestSessionCookie(t *testing.T) {
	s := newSessionServer(t, session.NewMemoryStore(100), nil)
	rec := s.do(req{body: `{"username":"alice","password":"correct horse"}`, origin: selfOrigin})
	if got := rec.Header().Values("Set-Cookie"); len(got) != 1 || !cookiePattern.MatchString(got[0]) {
		t.Fatalf("Set-Cookie = %q", got)
	}
	resp, _ := claimsOf(t, rec.Body.Bytes())
	if resp.SessionIdleExpiresAt != "2026-11-27T03:32:11Z" || resp.SessionExpiresAt != "2026-11-27T13:32:11Z" {
		t.Errorf("session ends %s (idle) %s (at most), want specTime+2h and +12h", resp.SessionIdleExpiresAt, resp.SessionExpiresAt)
	}
	lax := newSessionServer(t, session.NewMemoryStore(100), func(c *Config) { c.Sessions.SameSite = http.SameSiteLaxMode })
	if got := lax.do(req{body: `{"username":"alice","password":"correct horse"}`}).Header().Get("Set-Cookie"); !strings.HasSuffix(got, "; SameSite=Lax") {
		t.Errorf("SESSION_SAMESITE=lax: Set-Cookie = %q", got)
	}
}

// TestWhoGetsASession: browsers do, API clients do not unless they ask,
// and nobody gets one for a page of a foreign origin.
func TestWhoGetsASession(t *testing.T) {
	const creds = `"username":"alice","password":"correct horse"`
	for _, tt := range []struct {
		name       string
		r          req
		status     int
		wantCookie bool
	}{
		{"browser, own page", req{body: `{` + creds + `}`, origin: selfOrigin}, 200, true},
		{"browser, no Origin", req{body: `{` + creds + `}`}, 200, true},
		{"browser, allowed origin", req{body: `{` + creds + `}`, origin: appOrigin}, 200, true},
		{"browser asks for none", req{body: `{` + creds + `,"session":false}`, origin: selfOrigin}, 200, false},
		{"browser, foreign origin", req{body: `{` + creds + `}`, origin: evilOrigin}, 200, false},
		{"foreign origin asks for one", req{body: `{` + creds + `,"session":true}`, origin: evilOrigin}, 403, false},
		{"curl", req{body: `{` + creds + `}`, curl: true}, 200, false},
		{"curl asks for one", req{body: `{` + creds + `,"session":true}`, curl: true}, 200, true},
		{"curl asks with a form", req{body: "username=alice&password=correct+horse&session=true", ct: formCT, curl: true}, 200, true},
		{"bad session value", req{body: "username=alice&password=correct+horse&session=maybe", ct: formCT, curl: true}, 400, false},
		{"wrong password", req{body: `{"username":"alice","password":"wrong"}`, origin: selfOrigin}, 401, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newSessionServer(t, session.NewMemoryStore(100), nil)
			rec := s.do(tt.r)
			if rec.Code != tt.status || (cookieOf(rec) != nil) != tt.wantCookie {
				t.Errorf("%d, cookie %v; want %d, cookie %v: %s", rec.Code, cookieOf(rec) != nil, tt.status, tt.wantCookie, rec.Body)
			}
		})
	}
}

// TestSessionRenewal: the cookie alone gets a token for the session's
// user, with the grants and TTL asked for, checked as a password login's.
func TestSessionRenewal(t *testing.T) {
	s := newSessionServer(t, session.NewMemoryStore(100), nil)
	secret := s.login()
	s.clock.advance(50 * time.Minute)
	rec := s.do(req{body: `{"grants":["video"],"ttl":600,"room":"standup"}`, cookie: secret, origin: selfOrigin})
	if rec.Code != 200 {
		t.Fatalf("renewal: %d %s", rec.Code, rec.Body)
	}
	if cookieOf(rec) != nil {
		t.Errorf("a renewal set a new cookie: %v", rec.Header().Values("Set-Cookie"))
	}
	resp, claims := claimsOf(t, rec.Body.Bytes())
	grants, _ := claims["grants"].(map[string]any)
	if resp.Identity != "alice" || grants["identity"] != "alice" || grants["video"] == nil || grants["voice"] != nil ||
		resp.ExpiresAt != "2026-11-27T02:32:11Z" || resp.SessionIdleExpiresAt != "2026-11-27T04:22:11Z" {
		t.Errorf("renewal answer %+v, grants %v", resp, grants)
	}
	// Checked as a password login's request is.
	rec = s.do(req{body: `{"ttl":99999}`, cookie: secret})
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "ttl: must be a whole number of seconds from 1 to 7200") {
		t.Errorf("renewal with a bad ttl: %d %s", rec.Code, rec.Body)
	}
	// An empty JSON request renews with the defaults.
	if rec := s.do(req{cookie: secret, ct: "json"}); rec.Code != 200 {
		t.Errorf("renewal with no body: %d %s", rec.Code, rec.Body)
	}
	// A body with credentials is a password login, whatever the cookie says.
	if rec := s.do(req{body: `{"username":"bob","password":"wrong"}`, cookie: secret}); rec.Code != 401 {
		t.Errorf("a wrong password with a good cookie: %d %s", rec.Code, rec.Body)
	}
	if rec := s.do(req{body: `{"username":"bob","password":"battery staple"}`, cookie: secret}); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"identity":"bob"`) {
		t.Errorf("bob's login with alice's cookie: %d %s", rec.Code, rec.Body)
	}
	// That login replaced alice's session in this browser.
	if rec := s.do(req{cookie: secret, ct: "json"}); rec.Code != 401 {
		t.Errorf("the replaced session still renews: %d %s", rec.Code, rec.Body)
	}
}

// TestSessionTimeouts: the idle timeout and the absolute lifetime, with the
// clock moved by hand.
func TestSessionTimeouts(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		s := newSessionServer(t, session.NewMemoryStore(100), nil)
		secret := s.login()
		s.clock.advance(2*time.Hour - time.Second)
		if rec := s.do(req{cookie: secret, ct: "json"}); rec.Code != 200 {
			t.Fatalf("a second before the idle timeout: %d %s", rec.Code, rec.Body)
		}
		s.clock.advance(2 * time.Hour)
		rec := s.do(req{cookie: secret, ct: "json"})
		if rec.Code != 401 || !strings.Contains(rec.Body.String(), "the login session has ended") {
			t.Errorf("at the idle timeout: %d %s", rec.Code, rec.Body)
		}
	})
	t.Run("absolute", func(t *testing.T) {
		s := newSessionServer(t, session.NewMemoryStore(100), nil)
		secret := s.login()
		for h := 1; h < 12; h++ {
			s.clock.advance(time.Hour)
			if rec := s.do(req{cookie: secret, ct: "json"}); rec.Code != 200 {
				t.Fatalf("renewal at hour %d: %d %s", h, rec.Code, rec.Body)
			}
		}
		s.clock.advance(time.Hour)
		if rec := s.do(req{cookie: secret, ct: "json"}); rec.Code != 401 {
			t.Errorf("at SESSION_MAX_AGE: %d %s", rec.Code, rec.Body)
		}
	})
}

// TestLogout: POST /logout and DELETE /session end the session on the
// server and delete the cookie; a second logout is no error.
func TestLogout(t *testing.T) {
	for _, path := range []struct{ method, path string }{{"POST", "/logout"}, {"DELETE", "/session"}} {
		t.Run(path.path, func(t *testing.T) {
			s := newSessionServer(t, session.NewMemoryStore(100), nil)
			secret := s.login()
			rec := s.do(req{method: path.method, path: path.path, cookie: secret, ct: "json", origin: selfOrigin})
			if rec.Code != 204 || rec.Header().Get("Set-Cookie") != "__Host-tokend_session=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict" {
				t.Fatalf("logout: %d %q", rec.Code, rec.Header().Get("Set-Cookie"))
			}
			if rec := s.do(req{cookie: secret, ct: "json"}); rec.Code != 401 {
				t.Errorf("renewal after logout: %d %s", rec.Code, rec.Body)
			}
			if rec := s.do(req{method: path.method, path: path.path, cookie: secret, ct: "json"}); rec.Code != 204 {
				t.Errorf("second logout: %d %s", rec.Code, rec.Body)
			}
		})
	}
	s := newSessionServer(t, session.NewMemoryStore(100), nil)
	secret := s.login()
	for _, r := range []req{
		{path: "/logout", cookie: secret, ct: formCT, origin: evilOrigin},
		{path: "/logout", cookie: secret, ct: "json", origin: evilOrigin},
	} {
		if rec := s.do(r); rec.Code != 403 {
			t.Errorf("cross-site logout %+v: %d %s", r, rec.Code, rec.Body)
		}
	}
	if rec := s.do(req{method: "GET", path: "/logout", cookie: secret}); rec.Code != 405 || rec.Header().Get("Allow") != "OPTIONS, POST" {
		t.Errorf("GET /logout: %d %v", rec.Code, rec.Header())
	}
	if rec := s.do(req{cookie: secret, ct: "json"}); rec.Code != 200 {
		t.Errorf("the refused logouts ended the session: %d %s", rec.Code, rec.Body)
	}
}

// TestSessionEndsWithTheUser: a password change or a removed user ends the
// user's sessions at their next renewal.
func TestSessionEndsWithTheUser(t *testing.T) {
	for _, tt := range []struct {
		name, reason string
		change       func(u *Users)
	}{
		{"password changed", endPasswordChanged, func(u *Users) {
			u.hashes["alice"] = testUsers(t, map[string]string{"alice": "new password"}).Load().hashes["alice"]
		}},
		{"user removed", endUserRemoved, func(u *Users) { delete(u.hashes, "alice") }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newSessionServer(t, session.NewMemoryStore(100), nil)
			secret := s.login()
			bob := s.do(req{body: `{"username":"bob","password":"battery staple"}`})
			next := &Users{hashes: map[string][]byte{}}
			for k, v := range s.users.Load().hashes {
				next.hashes[k] = v
			}
			tt.change(next)
			s.users.Store(next)
			if rec := s.do(req{cookie: secret, ct: "json"}); rec.Code != 401 {
				t.Errorf("renewal: %d %s", rec.Code, rec.Body)
			}
			if rec := s.do(req{cookie: cookieOf(bob).Value, ct: "json"}); rec.Code != 200 {
				t.Errorf("bob's session ended too: %d %s", rec.Code, rec.Body)
			}
			if got := scrapeLine(t, s, `tokend_sessions_ended_total{reason="`+tt.reason+`"}`); got != "1" {
				t.Errorf("ended{%s} = %s, want 1", tt.reason, got)
			}
		})
	}
}

func scrapeLine(t *testing.T, h http.Handler, series string) string {
	t.Helper()
	for _, l := range scrape(t, h) {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			return v
		}
	}
	return ""
}

// TestSessionForgery: a page of another site cannot use the cookie, and a
// forged or random cookie proves nothing.
func TestSessionForgery(t *testing.T) {
	s := newSessionServer(t, session.NewMemoryStore(100), nil)
	secret := s.login()
	random, _ := session.NewSecret()
	for _, tt := range []struct {
		name   string
		r      req
		status int
		detail string
	}{
		{"form post", req{cookie: secret, ct: formCT, body: "grants=video", origin: evilOrigin}, 403, "must be sent with Content-Type: application/json"},
		{"form post from no origin", req{cookie: secret, ct: formCT, body: "grants=video"}, 403, "must be sent with Content-Type: application/json"},
		{"text/plain", req{cookie: secret, ct: "text/plain", body: `{}`}, 415, "the Content-Type text/plain is not supported"},
		{"text/plain, no body", req{cookie: secret, ct: "text/plain"}, 403, "must be sent with Content-Type: application/json"},
		{"no content type", req{cookie: secret, ct: "none"}, 403, "must be sent with Content-Type: application/json"},
		{"wrong origin", req{cookie: secret, ct: "json", origin: evilOrigin}, 403, "the page's origin may not use the session cookie"},
		{"null origin", req{cookie: secret, ct: "json", origin: "null"}, 403, "the page's origin may not use the session cookie"},
		{"cross-site, no origin", req{cookie: secret, ct: "json", fetchSite: "cross-site"}, 403, "the page's origin may not use the session cookie"},
		{"same-site other origin, not listed", req{cookie: secret, ct: "json", fetchSite: "same-site"}, 403, "the page's origin may not use the session cookie"},
		{"same-origin, no origin", req{cookie: secret, ct: "json", fetchSite: "same-origin"}, 200, ""},
		{"allowed origin", req{cookie: secret, ct: "json", origin: appOrigin}, 200, ""},
		{"own origin", req{cookie: secret, ct: "json", origin: selfOrigin}, 200, ""},
		{"random secret", req{cookie: random, ct: "json"}, 401, "the login session has ended"},
		{"malformed secret", req{cookie: "x' OR 1=1", ct: "json"}, 401, "the login session has ended"},
		{"someone's key as the secret", req{cookie: session.Key(secret), ct: "json"}, 401, "the login session has ended"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := s.do(tt.r)
			if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.detail) {
				t.Errorf("%d %s; want %d with %q", rec.Code, rec.Body, tt.status, tt.detail)
			}
		})
	}
	if got := scrapeLine(t, s, `tokend_auth_failures_total{reason="no_session"}`); got != "3" {
		t.Errorf("auth failures for no session = %s, want 3", got)
	}
	if strings.Contains(s.logs.String(), secret) {
		t.Error("the log holds a session secret")
	}
}

// TestSessionLimits: renewals count against the address's request budget,
// and unknown cookies never lock a username.
func TestSessionLimits(t *testing.T) {
	s := newSessionServer(t, session.NewMemoryStore(100), func(c *Config) {
		c.Limits = Limits{AddrRequests: 3, AddrRequestsPerSecond: 1, UserFailures: 2, UserFailuresPerHour: 1, AddrFailures: 100, AddrFailuresPerHour: 100, MaxKeys: 1000}
	})
	secret := s.login() // 127.0.0.1? no: httptest's 192.0.2.1, one request of its budget
	codes := ""
	for range 3 {
		codes += fmt.Sprint(s.do(req{cookie: secret, ct: "json"}).Code, " ")
	}
	if codes != "200 200 429 " {
		t.Errorf("renewals from one address: %s, want 200 200 429", codes)
	}
	for i := range 20 {
		forged, _ := session.NewSecret()
		if rec := s.do(req{cookie: forged, ct: "json", addr: fmt.Sprintf("127.0.0.%d", 10+i)}); rec.Code != 401 {
			t.Fatalf("forged cookie %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	if rec := s.do(req{body: `{"username":"alice","password":"correct horse"}`, addr: "127.0.0.99"}); rec.Code != 200 {
		t.Errorf("alice after 20 forged cookies: %d %s", rec.Code, rec.Body)
	}
}

// failingStore is a session store that does not answer, as Redis when it is down.
type failingStore struct{ session.Store }

var errStoreDown = errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")

func (failingStore) Create(context.Context, string, session.Session, int) (int, error) {
	return 0, errStoreDown
}
func (failingStore) Touch(context.Context, string, time.Time, time.Time) (session.Session, error) {
	return session.Session{}, errStoreDown
}
func (failingStore) Delete(context.Context, string) error { return errStoreDown }
func (failingStore) Ping(context.Context) error           { return errStoreDown }

// switchStore is a store that can be made to stop answering.
type switchStore struct {
	session.Store
	mu   sync.Mutex
	down bool
}

func (s *switchStore) get() session.Store {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return failingStore{}
	}
	return s.Store
}
func (s *switchStore) setDown(down bool) { s.mu.Lock(); s.down = down; s.mu.Unlock() }
func (s *switchStore) Create(ctx context.Context, k string, v session.Session, n int) (int, error) {
	return s.get().Create(ctx, k, v, n)
}
func (s *switchStore) Touch(ctx context.Context, k string, now, idle time.Time) (session.Session, error) {
	return s.get().Touch(ctx, k, now, idle)
}
func (s *switchStore) Delete(ctx context.Context, k string) error { return s.get().Delete(ctx, k) }
func (s *switchStore) Ping(ctx context.Context) error             { return s.get().Ping(ctx) }

// TestSessionStoreDown: renewals get 503 with a clear problem, password
// logins still work (without a cookie), /readyz and the metric say so, the
// log says it once, and all comes back when the store does.
func TestSessionStoreDown(t *testing.T) {
	store := &switchStore{Store: session.NewMemoryStore(100)}
	s := newSessionServer(t, store, nil)
	secret := s.login()
	store.setDown(true)
	for range 5 {
		rec := s.do(req{cookie: secret, ct: "json"})
		if rec.Code != 503 || rec.Header().Get("Retry-After") != "5" ||
			!strings.Contains(rec.Body.String(), `"detail":"login sessions are unavailable for now (the session store is not answering); log in again with the username and password"`) {
			t.Fatalf("renewal with the store down: %d %v %s", rec.Code, rec.Header(), rec.Body)
		}
	}
	rec := s.do(req{body: `{"username":"alice","password":"correct horse"}`})
	if rec.Code != 200 || cookieOf(rec) != nil || strings.Contains(rec.Body.String(), "session_") {
		t.Errorf("password login with the store down: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	ready := s.do(req{method: "GET", path: "/readyz", curl: true})
	if ready.Code != 200 || ready.Body.String() != "ready\nsessions: unavailable: the session store (REDIS_URL) is not answering; password logins work, session renewals get 503\n" {
		t.Errorf("/readyz: %d %q", ready.Code, ready.Body)
	}
	if got := scrapeLine(t, s, "tokend_session_store_up"); got != "0" {
		t.Errorf("store up = %s", got)
	}
	if n := strings.Count(s.logs.String(), "session store is not answering:"); n != 1 {
		t.Errorf("%d log lines say the store is down, want 1:\n%s", n, s.logs)
	}
	store.setDown(false)
	if ready := s.do(req{method: "GET", path: "/readyz", curl: true}); ready.Body.String() != "ready\n" {
		t.Errorf("/readyz after recovery: %q", ready.Body)
	}
	if rec := s.do(req{cookie: secret, ct: "json"}); rec.Code != 200 {
		t.Errorf("renewal after recovery: %d %s", rec.Code, rec.Body)
	}
	if got := scrapeLine(t, s, "tokend_session_store_up"); got != "1" || strings.Count(s.logs.String(), "session store is answering again") != 1 {
		t.Errorf("store up = %s after recovery; logs:\n%s", got, s.logs)
	}
}

// TestSessionLog: the request log names the session by its short ID, never
// by its secret or key.
func TestSessionLog(t *testing.T) {
	s := newSessionServer(t, session.NewMemoryStore(100), nil)
	secret := s.login()
	s.do(req{cookie: secret, ct: "json"})
	key := session.Key(secret)
	logs := s.logs.String()
	if strings.Contains(logs, secret) || strings.Contains(logs, key) {
		t.Fatalf("the log holds the secret or the key:\n%s", logs)
	}
	if n := strings.Count(logs, "session="+key[:session.IDLen]); n != 2 {
		t.Errorf("the session's ID is on %d lines, want 2:\n%s", n, logs)
	}
}

// TestAdminSessions: list and revoke on the private listener's routes.
func TestAdminSessions(t *testing.T) {
	s := newSessionServer(t, session.NewMemoryStore(100), nil)
	a1, a2 := s.login(), s.login()
	bob := cookieOf(s.do(req{body: `{"username":"bob","password":"battery staple"}`})).Value
	admin := func(method, target string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		s.admin.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
		return rec
	}
	rec := admin("GET", "/admin/sessions?user=alice")
	var list sessionList
	json.Unmarshal(rec.Body.Bytes(), &list)
	if rec.Code != 200 || len(list.Sessions) != 2 || list.Sessions[0].User != "alice" ||
		list.Sessions[0].ExpiresAt != "2026-11-27T13:32:11Z" || len(list.Sessions[0].ID) != session.IDLen {
		t.Fatalf("list: %d %s", rec.Code, rec.Body)
	}
	for _, secret := range []string{a1, a2, bob} {
		if strings.Contains(rec.Body.String(), secret) || strings.Contains(rec.Body.String(), session.Key(secret)) {
			t.Fatal("the list holds a secret or a key")
		}
	}
	if rec := admin("DELETE", "/admin/sessions/"+session.IDOf(session.Key(a1))); rec.Code != 200 || rec.Body.String() != "{\"ended\":1}\n" {
		t.Errorf("revoke by ID: %d %s", rec.Code, rec.Body)
	}
	if rec := admin("DELETE", "/admin/sessions/0123456789abcdef"); rec.Code != 404 {
		t.Errorf("revoke an unknown ID: %d %s", rec.Code, rec.Body)
	}
	if rec := admin("DELETE", "/admin/sessions?user=alice"); rec.Code != 200 || rec.Body.String() != "{\"ended\":1}\n" {
		t.Errorf("revoke by user: %d %s", rec.Code, rec.Body)
	}
	if rec := admin("DELETE", "/admin/sessions"); rec.Code != 400 {
		t.Errorf("revoke with no user: %d %s", rec.Code, rec.Body)
	}
	for _, h := range [][2]string{{"Sec-Fetch-Mode", "cors"}, {"Origin", "http://127.0.0.1:9090"}} {
		r := httptest.NewRequest("DELETE", "/admin/sessions?user=bob", nil)
		r.Header.Set(h[0], h[1])
		rec := httptest.NewRecorder()
		s.admin.ServeHTTP(rec, r)
		if rec.Code != 403 {
			t.Errorf("an admin request with %s: %d %s", h[0], rec.Code, rec.Body)
		}
	}
	for _, secret := range []string{a1, a2} {
		if rec := s.do(req{cookie: secret, ct: "json"}); rec.Code != 401 {
			t.Errorf("a revoked session renews: %d", rec.Code)
		}
	}
	if rec := s.do(req{cookie: bob, ct: "json"}); rec.Code != 200 {
		t.Errorf("bob's session was revoked: %d", rec.Code)
	}
	if got := scrapeLine(t, s, `tokend_sessions_ended_total{reason="revoked"}`); got != "2" {
		t.Errorf("ended{revoked} = %s, want 2", got)
	}
}

// TestReloadEndsSessions: a users file reload ends at once every session of
// the users whose password changed or who are gone, and only theirs.
func TestReloadEndsSessions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	carol := strings.TrimPrefix(usersFileLines(t, "carol", "staple"), "# team\n") // the same line in both files
	os.WriteFile(path, []byte(usersFileLines(t, "alice", "correct horse", "bob", "battery staple")+carol), 0o600)
	var logs syncBuffer
	r := newTestReloader(t, path, &logs)
	store := session.NewMemoryStore(100)
	m := newMetrics()
	sess := newSessions(store, SessionConfig{IdleTimeout: time.Hour, MaxAge: 2 * time.Hour, PerUser: 10, MaxSessions: 100},
		nil, r.auth.store, slog.New(slog.NewTextHandler(&logs, nil)), m, time.Now)
	r.onChange = sess.endUsers
	now := time.Now()
	for _, user := range []string{"alice", "alice", "bob", "carol"} {
		_, key := session.NewSecret()
		store.Create(context.Background(), key, session.Session{User: user, Created: now, LastSeen: now, IdleUntil: now.Add(time.Hour), EndsAt: now.Add(2 * time.Hour)}, 10)
	}
	os.WriteFile(path, []byte(usersFileLines(t, "alice", "new password")+carol), 0o600)
	if err := r.reload("SIGHUP"); err != nil {
		t.Fatal(err)
	}
	left, _ := store.List(context.Background(), "", now)
	if len(left) != 1 || left[0].User != "carol" {
		t.Errorf("sessions left: %+v, want carol's", left)
	}
	for _, want := range []string{`msg="sessions ended" user=alice reason=password_changed sessions=2`, `msg="sessions ended" user=bob reason=user_removed sessions=1`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
}
