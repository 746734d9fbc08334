package main

import (
	"bytes"
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/crypto/bcrypt"

	"tokend/internal/passhash"
	"tokend/internal/session"
	"tokend/internal/testservice"
	userstore "tokend/internal/users"
	"tokend/internal/users/userstest"
)

// TestFileStoreConformance runs the users.Store suite over the real
// htpasswd parser: the file as `tokend user add` writes it.
func TestFileStoreConformance(t *testing.T) {
	userstest.Run(t, func(t *testing.T, u map[string]string) userstore.Store {
		var b strings.Builder
		for name, hash := range u {
			b.WriteString(name + ":" + hash + "\n")
		}
		path := filepath.Join(t.TempDir(), "users")
		if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		users, err := loadUsers(path)
		if err != nil {
			t.Fatal(err)
		}
		return fileStore(newUserStore(users))
	})
}

const testUsersDatabaseURL = "postgres://root@127.0.0.1:5432/test?sslmode=disable"

// frameworkUsers are users whose hashes the frameworks made
// (internal/passhash/testdata), one of each kind: name -> password, hash.
func frameworkUsers(t testing.TB) map[string][2]string {
	data, err := os.ReadFile("internal/passhash/testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []struct{ By, Password, Hash string }
	if err := json.Unmarshal(data, &vs); err != nil {
		t.Fatal(err)
	}
	out := map[string][2]string{}
	seen := map[string]bool{}
	for _, v := range vs {
		if seen[v.By] || strings.Contains(v.By, "default") {
			continue
		}
		seen[v.By] = true
		name := strings.NewReplacer(" ", "_", "$", "", ":", "_", ".", "_", "-", "_").Replace(v.By)
		out[name] = [2]string{v.Password, v.Hash}
	}
	if len(out) < 7 {
		t.Fatalf("only %d kinds of framework hashes", len(out))
	}
	return out
}

// dbServer is tokend serving from a user table of its own, through a proxy.
type dbServer struct {
	http.Handler
	conn   *pgx.Conn
	table  string
	proxy  *tcpProxy
	health *storeHealth
	logs   *syncBuffer
}

// newDBServer serves users (name -> password, hash); userFailures failed
// logins lock a username.
func newDBServer(t *testing.T, users map[string][2]string, userFailures int) *dbServer {
	conn := testservice.Postgres(t, testUsersDatabaseURL)
	ctx := context.Background()
	s := &dbServer{conn: conn, table: "tokend_users_" + strings.ToLower(rand.Text()[:12]), proxy: newTCPProxy(t, "127.0.0.1:5432"), logs: &syncBuffer{}}
	if _, err := conn.Exec(ctx, "CREATE TABLE "+s.table+" (username text PRIMARY KEY, password text, is_active boolean NOT NULL DEFAULT true)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Exec(context.Background(), "DROP TABLE IF EXISTS "+s.table) })
	var sample []string
	for name, pw := range users {
		s.exec(t, "INSERT INTO "+s.table+" VALUES ($1, $2)", name, pw[1])
		sample = append(sample, pw[1])
	}
	cfg := testConfig()
	cfg.AuthCacheTTL, cfg.AuthCacheSize, cfg.BcryptMaxWait = time.Minute, 100, time.Second
	cfg.Limits = Limits{UserFailures: userFailures, UserFailuresPerHour: 1, AddrFailures: 100, AddrFailuresPerHour: 1,
		AddrRequests: 1000, AddrRequestsPerSecond: 1000, MaxKeys: 1000}
	cfg.UsersDB = UsersDBConfig{URL: "postgres://root@" + s.proxy.addr + "/test?sslmode=disable", Query: "SELECT password, NOT is_active FROM " + s.table + " WHERE username = $1", QueryTimeout: 2 * time.Second}
	log := slog.New(slog.NewTextHandler(s.logs, nil))
	s.health = newStoreHealth(log)
	db, err := cfg.UsersDB.open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	auth, err := newDBAuthStack(cfg, db, sample, s.health, 1, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Sessions = SessionConfig{IdleTimeout: time.Hour, MaxAge: 2 * time.Hour, SameSite: http.SameSiteStrictMode, PerUser: 10, MaxSessions: 100}
	m := newMetrics()
	sess := newSessions(session.NewMemoryStore(100), cfg.Sessions, nil, auth.store, log, m, time.Now)
	sess.users = storeCredentials(db, s.health)
	s.Handler = NewServer(log, cfg, auth, auth.ready, m, time.Now, withMaxPassword(maxDBPasswordBytes), withSessions(sess))
	return s
}

// sessionLogin logs in asking for a session and returns its cookie.
func (s *dbServer) sessionLogin(t *testing.T, user, password string) *http.Cookie {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"username": user, "password": password, "session": true})
	req := httptest.NewRequest("POST", "/token", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.RemoteAddr = "127.0.0.7:5555"
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	for _, c := range w.Result().Cookies() {
		if c.Name == sessionCookie {
			return c
		}
	}
	t.Fatalf("login with a session: %d %s, no cookie", w.Code, w.Body)
	return nil
}

// renew asks for a token with the session cookie alone and returns the
// status and the problem's detail.
func (s *dbServer) renew(c *http.Cookie) (int, string) {
	req := httptest.NewRequest("POST", "/token", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	req.RemoteAddr = "127.0.0.7:5555"
	req.AddCookie(c)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	var p struct{ Detail string }
	json.Unmarshal(w.Body.Bytes(), &p)
	return w.Code, p.Detail
}

// TestUserDatabaseSessions: sessions work over the user database, and each
// renewal asks it: a changed password, a disabled or a deleted user ends
// the session; a database that does not answer is a 503, never a 401 that
// would end a good session in the page's eyes.
func TestUserDatabaseSessions(t *testing.T) {
	h, _ := bcrypt.GenerateFromPassword([]byte("old password"), bcrypt.MinCost)
	s := newDBServer(t, map[string][2]string{"alice": {"old password", string(h)}, "bob": {"old password", string(h)}}, 100)
	alice := s.sessionLogin(t, "alice", "old password")
	if code, detail := s.renew(alice); code != 200 {
		t.Fatalf("renewal: %d %s; want 200", code, detail)
	}

	s.proxy.stop()
	if code, detail := s.renew(alice); code != 503 || detail != "the user database is unavailable, so the session's user cannot be checked; try again in 5 seconds" {
		t.Errorf("renewal with the database down: %d %q; want 503 saying the session's user cannot be checked", code, detail)
	}
	s.proxy.start()
	if code, detail := s.renew(alice); code != 200 {
		t.Fatalf("renewal once the database is back: %d %s; want 200", code, detail)
	}

	h2, _ := bcrypt.GenerateFromPassword([]byte("new password"), bcrypt.MinCost)
	s.exec(t, "UPDATE "+s.table+" SET password = $1 WHERE username = 'alice'", string(h2))
	if code, _ := s.renew(alice); code != 401 {
		t.Errorf("renewal after a password change: %d; want 401", code)
	}
	if code, _ := s.renew(alice); code != 401 {
		t.Errorf("the ended session, again: %d; want 401", code)
	}

	for _, tt := range []struct{ name, sql string }{
		{"disabled", "UPDATE " + s.table + " SET is_active = false WHERE username = 'bob'"},
		{"deleted", "DELETE FROM " + s.table + " WHERE username = 'bob'"},
	} {
		s.exec(t, "UPDATE "+s.table+" SET is_active = true WHERE username = 'bob'")
		bob := s.sessionLogin(t, "bob", "old password")
		s.exec(t, tt.sql)
		if code, _ := s.renew(bob); code != 401 {
			t.Errorf("%s user's renewal: %d; want 401", tt.name, code)
		}
	}
}

func (s *dbServer) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := s.conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatal(err)
	}
}

// login posts a login and returns the status, the problem's detail (if
// any) and Retry-After.
func (s *dbServer) login(user, password string) (int, string, string) {
	body, _ := json.Marshal(map[string]string{"username": user, "password": password})
	req := httptest.NewRequest("POST", "/token", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.RemoteAddr = "127.0.0.7:5555"
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	var p struct{ Detail string }
	json.Unmarshal(w.Body.Bytes(), &p)
	return w.Code, p.Detail, w.Header().Get("Retry-After")
}

func (s *dbServer) ready() (int, string) {
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil))
	return w.Code, w.Body.String()
}

func TestUserDatabaseFrameworkHashes(t *testing.T) {
	users := frameworkUsers(t)
	users["legacy_md5"] = [2]string{"secret", "md5$salt$5ebe2294ecd0e0f08eab7690d2a6ee69"}
	s := newDBServer(t, users, 100)
	badBody := ""
	for name, pw := range users {
		if name == "legacy_md5" {
			continue
		}
		if code, detail, _ := s.login(name, pw[0]); code != 200 {
			t.Errorf("%s, right password: %d %s; want 200", name, code, detail)
		}
		code, detail, _ := s.login(name, pw[0]+"!")
		if code != 401 {
			t.Errorf("%s, wrong password: %d; want 401", name, code)
		}
		badBody = detail
	}
	for _, who := range []string{"nobody", "legacy_md5"} {
		if code, detail, _ := s.login(who, "secret"); code != 401 || detail != badBody {
			t.Errorf("%s: %d %q; want 401 with the wrong-password detail %q", who, code, detail, badBody)
		}
	}
	s.login("legacy_md5", "secret again")
	logs := s.logs.String()
	if n := strings.Count(logs, "cannot be checked"); n != 1 || !strings.Contains(logs, "format=md5$") {
		t.Errorf("want one log line naming the md5$ format, got %d:\n%s", n, logs)
	}
	if strings.Contains(logs, "5ebe2294") || strings.Contains(logs, "$salt$") {
		t.Error("the log shows the hash")
	}
	if got := testutil.ToFloat64(s.health.unusableHashes); got != 1 {
		t.Errorf("unusable hashes metric = %v; want 1", got)
	}
}

// TestUserDatabaseChanges: the cache never outlives the database's truth.
func TestUserDatabaseChanges(t *testing.T) {
	h, _ := bcrypt.GenerateFromPassword([]byte("old password"), bcrypt.MinCost)
	s := newDBServer(t, map[string][2]string{"alice": {"old password", string(h)}}, 100)
	for range 2 { // the second is a cache hit
		if code, detail, _ := s.login("alice", "old password"); code != 200 {
			t.Fatalf("login: %d %s", code, detail)
		}
	}
	h2, _ := bcrypt.GenerateFromPassword([]byte("new password"), bcrypt.MinCost)
	s.exec(t, "UPDATE "+s.table+" SET password = $1 WHERE username = 'alice'", string(h2))
	if code, _, _ := s.login("alice", "old password"); code != 401 {
		t.Fatalf("old password after the change: %d; want 401", code)
	}
	if code, _, _ := s.login("alice", "new password"); code != 200 {
		t.Fatalf("new password: %d; want 200", code)
	}
	s.exec(t, "UPDATE "+s.table+" SET is_active = false WHERE username = 'alice'")
	if code, _, _ := s.login("alice", "new password"); code != 401 {
		t.Fatalf("disabled user: %d; want 401", code)
	}
	s.exec(t, "UPDATE "+s.table+" SET is_active = true WHERE username = 'alice'")
	s.exec(t, "DELETE FROM "+s.table+" WHERE username = 'alice'")
	if code, _, _ := s.login("alice", "new password"); code != 401 {
		t.Fatalf("removed user: %d; want 401", code)
	}
}

// TestUserDatabaseOutage: the database stops and comes back. Logins get 503
// with Retry-After, never 401, and are not charged to the limits (2
// failures lock a username here); /readyz follows; the log says it once
// each way; all recovers by itself.
func TestUserDatabaseOutage(t *testing.T) {
	h, _ := bcrypt.GenerateFromPassword([]byte("correct horse"), bcrypt.MinCost)
	s := newDBServer(t, map[string][2]string{"alice": {"correct horse", string(h)}}, 2)
	if code, _, _ := s.login("alice", "correct horse"); code != 200 {
		t.Fatalf("before: %d", code)
	}
	s.proxy.stop()
	for i := range 5 {
		for _, pw := range []string{"correct horse", "wrong"} {
			code, detail, retry := s.login("alice", pw)
			if code != 503 || retry != "5" || detail != "the user database is unavailable, so the password cannot be checked; try again in 5 seconds" {
				t.Fatalf("during the outage (%d, %s): %d %q Retry-After %q", i, pw, code, detail, retry)
			}
		}
	}
	if code, _, _ := s.login("nobody", "x"); code != 503 {
		t.Fatalf("unknown user during the outage: %d; want 503", code)
	}
	if code, body := s.ready(); code != 503 || !strings.Contains(body, "the user database is unavailable") {
		t.Fatalf("/readyz during the outage: %d %s", code, body)
	}
	if got := testutil.ToFloat64(s.health.upGauge); got != 0 {
		t.Fatalf("tokend_users_store_up = %v during the outage", got)
	}
	s.proxy.start()
	if code, body := s.ready(); code != 200 {
		t.Fatalf("/readyz after: %d %s", code, body)
	}
	if code, detail, _ := s.login("alice", "correct horse"); code != 200 {
		t.Fatalf("after: %d %s (the outage was charged?)", code, detail)
	}
	logs := s.logs.String()
	if strings.Count(logs, "user database unavailable") != 1 || strings.Count(logs, "user database available again") != 1 {
		t.Fatalf("want one line down and one up:\n%s", logs)
	}
	if got := testutil.ToFloat64(s.health.upGauge); got != 1 {
		t.Fatalf("tokend_users_store_up = %v after", got)
	}
}

// TestUserDatabaseKilledConnections: pg_terminate_backend under load; no
// login is refused as a wrong password.
func TestUserDatabaseKilledConnections(t *testing.T) {
	h, _ := bcrypt.GenerateFromPassword([]byte("correct horse"), bcrypt.MinCost)
	s := newDBServer(t, map[string][2]string{"alice": {"correct horse", string(h)}}, 100)
	s.login("alice", "correct horse")
	var wg sync.WaitGroup
	codes := make(chan int, 40)
	for i := range 40 {
		if i == 10 {
			s.exec(t, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'tokend' AND pid <> pg_backend_pid()")
		}
		wg.Go(func() {
			code, _, _ := s.login("alice", "correct horse")
			codes <- code
		})
	}
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	if count[200]+count[503] != 40 || count[401] != 0 {
		t.Fatalf("answers %v; want only 200s (and 503s for lookups on a killed connection)", count)
	}
	if code, _, _ := s.login("alice", "correct horse"); code != 200 {
		t.Fatalf("after: %d", code)
	}
}

// TestUserDatabaseDownAtStart: tokend starts, not ready, and logins get 503.
func TestUserDatabaseDownAtStart(t *testing.T) {
	s := newDBServer(t, nil, 2)
	s.proxy.stop()
	if code, _ := s.ready(); code != 503 {
		t.Fatalf("/readyz: %d", code)
	}
	if code, _, _ := s.login("alice", "x"); code != 503 {
		t.Fatalf("login: %d", code)
	}
	var e *Error
	if err := s.health.down(errors.New("x")); !errors.As(err, &e) || e.Code != EUNAVAILABLE {
		t.Fatalf("down = %v", err)
	}
}

// TestCheckUsersDatabase: `tokend check --users` connects, runs the query
// and counts the formats, never printing a hash; a database it cannot
// reach fails the check with what to fix.
func TestCheckUsersDatabase(t *testing.T) {
	users := frameworkUsers(t)
	users["legacy_md5"] = [2]string{"secret", "md5$salt$5ebe2294ecd0e0f08eab7690d2a6ee69"}
	s := newDBServer(t, users, 100)
	noEnv := filepath.Join(t.TempDir(), "absent.env")
	env := cmdEnv("USERS_DATABASE_URL", testUsersDatabaseURL,
		"USERS_QUERY", "SELECT password FROM "+s.table+" WHERE username = $1 AND is_active",
		"USERS_SAMPLE_QUERY", "SELECT password FROM "+s.table)
	stdout, stderr, err := runTokend(t, env, specTime, "", "check", "--env-file", noEnv, "--users")
	if err != nil {
		t.Fatalf("check: %v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "  users:      in PostgreSQL root@127.0.0.1:5432/test; USERS_QUERY ok (") {
		t.Errorf("no users line:\n%s", stdout)
	}
	want := `  formats:    9 hashes read
         1  argon2id
         2  bcrypt
         1  django-argon2id
         1  django-pbkdf2_sha256
         1  md5$ (cannot be checked: unsupported format)
         2  werkzeug-pbkdf2
         1  werkzeug-scrypt
`
	if !strings.HasSuffix(stdout, want) {
		t.Errorf("stdout:\n%s\nwant it to end with:\n%s", stdout, want)
	}
	if strings.Contains(stdout, "5ebe2294") || strings.Contains(stdout, "$2b$04$") {
		t.Error("check printed a hash")
	}

	env["USERS_DATABASE_URL"] = "postgres://root:s3cret@127.0.0.1:1/test?sslmode=disable"
	_, _, err = runTokend(t, env, specTime, "", "check", "--env-file", noEnv)
	if err == nil || !strings.HasPrefix(err.Error(), "user database root@127.0.0.1:1/test: USERS_QUERY for a user that does not exist failed: the user database is unavailable: ") {
		t.Fatalf("check with the database down: %v", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatal("the error shows the database password")
	}
	env["USERS_DATABASE_URL"] = testUsersDatabaseURL
	env["USERS_QUERY"] = "SELECT password, 1, 2 FROM " + s.table + " WHERE username = $1"
	if _, _, err = runTokend(t, env, specTime, "", "check", "--env-file", noEnv); err == nil || !strings.Contains(err.Error(), "USERS_QUERY returns 3 columns") {
		t.Fatalf("check with a wrong query: %v", err)
	}
}

// BenchmarkUserDatabaseTiming: a login for an unknown user costs what a
// wrong password costs (the dummy has the users' format and cost), over
// a real database lookup, with each framework's default cost. Compare
// the ns/op of unknown and wrong (README "User database").
func BenchmarkUserDatabaseTiming(b *testing.B) {
	data, err := os.ReadFile("internal/passhash/testdata/vectors.json")
	if err != nil {
		b.Fatal(err)
	}
	var vs []struct{ By, Password, Hash string }
	json.Unmarshal(data, &vs)
	conn := testservice.Postgres(b, testUsersDatabaseURL)
	ctx := context.Background()
	for _, v := range vs {
		if !strings.Contains(v.By, "default") {
			continue
		}
		b.Run(strings.ReplaceAll(v.By, " ", "_"), func(b *testing.B) {
			table := "tokend_bench_" + strings.ToLower(rand.Text()[:12])
			conn.Exec(ctx, "CREATE TABLE "+table+" (username text PRIMARY KEY, password text)")
			defer conn.Exec(ctx, "DROP TABLE "+table)
			conn.Exec(ctx, "INSERT INTO "+table+" VALUES ('alice', $1)", v.Hash)
			db, err := userstore.OpenPostgres(userstore.PostgresConfig{URL: testUsersDatabaseURL,
				Query: "SELECT password FROM " + table + " WHERE username = $1", Timeout: 5 * time.Second})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			cfg := testConfig()
			auth, err := newDBAuthStack(cfg, db, []string{v.Hash}, nil, 1, time.Now) // no cache: AuthCacheTTL 0
			if err != nil {
				b.Fatal(err)
			}
			for _, tt := range []struct{ name, user, password string }{
				{"right", "alice", v.Password}, {"wrong", "alice", "wrong"}, {"unknown", "mallory", v.Password},
			} {
				b.Run(tt.name, func(b *testing.B) {
					for b.Loop() {
						auth.Authenticate(ctx, tt.user, tt.password)
					}
				})
			}
		})
	}
}

// TestUserDatabaseDummyLearns: with no USERS_SAMPLE_QUERY the dummy starts
// as bcrypt, and follows the shape most users who log in (right password)
// have, so unknown users soon cost what they do.
func TestUserDatabaseDummyLearns(t *testing.T) {
	users := frameworkUsers(t)
	var django [2]string
	for name, u := range users {
		if strings.HasPrefix(name, "django") && strings.Contains(name, "pbkdf2") {
			django = u
		}
	}
	h2, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	s := newDBServer(t, map[string][2]string{"d1": django, "d2": django, "b1": {"pw", string(h2)}}, 100)
	db, err := userstore.OpenPostgres(userstore.PostgresConfig{URL: testUsersDatabaseURL, Query: "SELECT password FROM " + s.table + " WHERE username = $1", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a, err := newStoreAuth(db, nil, passhash.DefaultLimits, nil)
	if err != nil {
		t.Fatal(err)
	}
	shape := func() string { return passhash.Shape(string(*a.dummy.Load())) }
	if got := shape(); got != "bcrypt cost=12" {
		t.Fatalf("first dummy %q", got)
	}
	ctx := context.Background()
	a.Authenticate(ctx, "b1", "x")
	if got := shape(); got != "bcrypt cost=12" {
		t.Fatalf("a wrong password moved the dummy: %q", got)
	}
	a.Authenticate(ctx, "b1", "pw")
	if got := shape(); got != "bcrypt cost=4" {
		t.Fatalf("after a bcrypt cost-4 user: %q", got)
	}
	a.Authenticate(ctx, "d1", django[0])
	if got := shape(); got != "bcrypt cost=4" {
		t.Fatalf("a tie keeps the dummy: %q", got)
	}
	a.Authenticate(ctx, "d2", django[0])
	if got, want := shape(), passhash.Shape(django[1]); got != want {
		t.Fatalf("after two Django users: %q; want %q", got, want)
	}
}

// TestRunUsersDatabase starts tokend through run with USERS_DATABASE_URL,
// as an operator would: a Werkzeug user logs in, /readyz and /metrics say
// the database answers, and the users file is never looked for.
func TestRunUsersDatabase(t *testing.T) {
	users := frameworkUsers(t)
	var werkzeug [2]string
	for name, u := range users {
		if strings.Contains(name, "scrypt") {
			werkzeug = u
		}
	}
	s := newDBServer(t, map[string][2]string{"alice": werkzeug}, 100)
	addr := freeAddr(t)
	env := map[string]string{
		"TWILIO_ACCOUNT_SID":    testAccountSID,
		"TWILIO_API_KEY_SID":    testAPIKeySID,
		"TWILIO_API_KEY_SECRET": testSecret,
		"USERS_FILE":            "/nonexistent/users.htpasswd",
		"USERS_DATABASE_URL":    testUsersDatabaseURL,
		"USERS_QUERY":           "SELECT password FROM " + s.table + " WHERE username = $1 AND is_active",
		"USERS_SAMPLE_QUERY":    "SELECT password FROM " + s.table,
		"LISTEN_ADDR":           addr,
	}
	var stdout, stderr syncBuffer
	errc := startRun(t, []string{"serve", "--env-file", filepath.Join(t.TempDir(), "absent.env")}, env, &stdout, &stderr)
	base := "http://" + addr
	waitReady(t, base, errc)
	if resp, body := postJSON(t, base+"/token", map[string]string{"username": "alice", "password": werkzeug[0]}); resp.StatusCode != 200 {
		t.Fatalf("login: %d %v", resp.StatusCode, body)
	}
	if resp, _ := postJSON(t, base+"/token", map[string]string{"username": "alice", "password": "wrong"}); resp.StatusCode != 401 {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	if code, body := get(t, http.DefaultClient, base+"/readyz"); code != 200 {
		t.Fatalf("/readyz: %d %s", code, body)
	}
	if _, body := get(t, http.DefaultClient, base+"/metrics"); !strings.Contains(body, "\ntokend_users_store_up 1\n") {
		t.Fatal("/metrics lacks tokend_users_store_up 1")
	}
	logs := stderr.String()
	if !strings.Contains(logs, "user database") || !strings.Contains(logs, "sampled_hashes=1") || strings.Contains(logs, werkzeug[1][:30]) {
		t.Fatalf("start-up log:\n%s", logs)
	}
}

// TestUserDatabaseLongPasswords: PBKDF2, scrypt and argon2 read every byte,
// so a user database takes passwords past bcrypt's 72 bytes, up to 1 KiB.
func TestUserDatabaseLongPasswords(t *testing.T) {
	long := strings.Repeat("correct horse battery staple ", 10) // 290 bytes
	key, err := pbkdf2.Key(sha256.New, long, []byte("NaCl"), 1000, 32)
	if err != nil {
		t.Fatal(err)
	}
	s := newDBServer(t, map[string][2]string{"alice": {long, "pbkdf2_sha256$1000$NaCl$" + base64.StdEncoding.EncodeToString(key)}}, 100)
	for _, tt := range []struct {
		password   string
		wantCode   int
		wantDetail string
	}{
		{long, 200, ""},
		{long[:72], 401, "the username or password is wrong, or none was sent; send them as JSON {\"username\", \"password\"}, a form, or HTTP Basic auth"},
		{long + "!", 401, "the username or password is wrong, or none was sent; send them as JSON {\"username\", \"password\"}, a form, or HTTP Basic auth"},
		{strings.Repeat("x", 1025), 400, "password: is longer than 1024 bytes, the most tokend checks"},
	} {
		code, detail, _ := s.login("alice", tt.password)
		if code != tt.wantCode || tt.wantDetail != "" && detail != tt.wantDetail {
			t.Errorf("%d-byte password: %d %q; want %d %q", len(tt.password), code, detail, tt.wantCode, tt.wantDetail)
		}
	}
}

// gatedStore is a users.Store whose Check waits for a gate and counts.
type gatedStore struct {
	userstore.Store
	gate   chan struct{}
	mu     sync.Mutex
	checks int
}

func (g *gatedStore) Check(ctx context.Context) error {
	g.mu.Lock()
	g.checks++
	g.mu.Unlock()
	<-g.gate
	return nil
}

// TestReadyzSharesOneCheck: 50 probes at once cost the database one query.
func TestReadyzSharesOneCheck(t *testing.T) {
	g := &gatedStore{gate: make(chan struct{})}
	r := &storeReadiness{store: g, health: newStoreHealth(slog.New(slog.DiscardHandler)), timeout: time.Second}
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() { errs <- r.Ready(context.Background()) })
	}
	waitFor(t, "50 probes to wait", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.inflight != nil && r.inflight.waiters == 50
	})
	close(g.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if g.checks != 1 {
		t.Fatalf("%d checks for 50 probes; want 1", g.checks)
	}
	// A canceled probe leaves; the check goes on for the others.
	g.gate = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var e *Error
	if err := r.Ready(ctx); !errors.As(err, &e) || e.Code != ECANCELED {
		t.Fatalf("canceled probe: %v", err)
	}
	close(g.gate)
}
