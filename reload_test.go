package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// usersFileLines is an htpasswd file with cheap hashes: name -> password.
func usersFileLines(t *testing.T, logins ...string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# team\n")
	for i := 0; i+1 < len(logins); i += 2 {
		h, err := bcrypt.GenerateFromPassword([]byte(logins[i+1]), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(logins[i] + ":" + string(h) + "\n")
	}
	return b.String()
}

// newTestReloader loads path into an auth stack and returns its reloader,
// logging to logs.
func newTestReloader(t *testing.T, path string, logs *syncBuffer) *usersReloader {
	t.Helper()
	users, err := loadUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := newAuthStack(&Config{AuthCacheTTL: time.Minute, AuthCacheSize: 10, BcryptMaxWait: time.Second}, users, 1, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	return newUsersReloader(slog.New(slog.NewTextHandler(logs, nil)), path, auth)
}

func checkLogin(t *testing.T, a Authenticator, user, pass string, want error) {
	t.Helper()
	if err := a.Authenticate(context.Background(), user, pass); err != want {
		t.Errorf("login %s/%s: %v, want %v", user, pass, err, want)
	}
}

// TestReloadSwaps: a good file replaces the users at once.
func TestReloadSwaps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	os.WriteFile(path, []byte(usersFileLines(t, "alice", "correct horse", "bob", "battery staple")), 0o600)
	var logs syncBuffer
	r := newTestReloader(t, path, &logs)
	checkLogin(t, r.auth, "alice", "correct horse", nil) // now cached
	os.WriteFile(path, []byte(usersFileLines(t, "alice", "new password", "carol", "staple")), 0o600)
	if err := r.reload("SIGHUP"); err != nil {
		t.Fatal(err)
	}
	checkLogin(t, r.auth, "alice", "correct horse", errBadCredentials)
	checkLogin(t, r.auth, "alice", "new password", nil)
	checkLogin(t, r.auth, "bob", "battery staple", errBadCredentials)
	checkLogin(t, r.auth, "carol", "staple", nil)
	if want := "msg=\"users reloaded\" reason=SIGHUP file=" + path + " users=2 added=1 changed_or_removed=2\n"; !strings.HasSuffix(logs.String(), want) {
		t.Errorf("log: %s\nwant …%s", logs.String(), want)
	}
}

// TestReloadKeepsLastGoodSet: a file that does not load changes nothing,
// and the log names the line at fault.
func TestReloadKeepsLastGoodSet(t *testing.T) {
	good := func(t *testing.T) string { return usersFileLines(t, "alice", "correct horse") }
	tests := []struct {
		name    string
		content func(t *testing.T) string // nil: the file is removed
		wantErr string
	}{
		{"bad line", func(t *testing.T) string { return good(t) + "just a name\n" }, "%s:3: not a user line: expected NAME:BCRYPT-HASH"},
		{"unsupported hash", func(t *testing.T) string { return good(t) + "bob:$apr1$abc$def\n" },
			`%s:3: user "bob": unsupported hash type Apache MD5 ($apr1$); only bcrypt is accepted: recreate it with ` + "`tokend user add`" + ` or ` + "`htpasswd -B`"},
		{"user twice", func(t *testing.T) string { return good(t) + good(t)[len("# team\n"):] }, `%s:3: user "alice" appears twice`},
		{"file gone", nil, "users file: open %s: no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "users")
			os.WriteFile(path, []byte(good(t)), 0o600)
			var logs syncBuffer
			r := newTestReloader(t, path, &logs)
			before := r.auth.store.Load()
			if tt.content == nil {
				os.Remove(path)
			} else {
				os.WriteFile(path, []byte(tt.content(t)), 0o600)
			}
			err := r.reload("file changed")
			want := "users file not reloaded\n" + strings.ReplaceAll(tt.wantErr, "%s", path)
			if err == nil || err.Error() != want {
				t.Errorf("err = %v\nwant %s", err, want)
			}
			if r.auth.store.Load() != before {
				t.Error("the users were replaced")
			}
			checkLogin(t, r.auth, "alice", "correct horse", nil)
			if line := strings.ReplaceAll(tt.wantErr, "%s", path); !strings.Contains(logs.String(), `msg="users file not reloaded; keeping the last good users" reason="file changed" users=1`) ||
				!strings.Contains(logs.String(), line[:strings.Index(line, ":")+2]) {
				t.Errorf("log lacks the fault: %s", logs.String())
			}
		})
	}
}

// TestReloadEmptyFileMeansNoLogins: a file with no users is applied, as
// the operator means it: nobody can log in, not even from the cache.
func TestReloadEmptyFileMeansNoLogins(t *testing.T) {
	for _, content := range []string{"", "# everyone left\n", "\n\n"} {
		path := filepath.Join(t.TempDir(), "users")
		os.WriteFile(path, []byte(usersFileLines(t, "alice", "correct horse")), 0o600)
		var logs syncBuffer
		r := newTestReloader(t, path, &logs)
		checkLogin(t, r.auth, "alice", "correct horse", nil) // now cached
		os.WriteFile(path, []byte(content), 0o600)
		if err := r.reload("file changed"); err != nil {
			t.Fatalf("%q: %v", content, err)
		}
		if n := r.auth.store.Load().Len(); n != 0 {
			t.Errorf("%q: %d users loaded, want 0", content, n)
		}
		checkLogin(t, r.auth, "alice", "correct horse", errBadCredentials)
		if want := `level=WARN msg="the users file has no users: every login is refused and /readyz answers 503 until one is added with ` + "`tokend user add NAME`" + `" file=` + path + "\n"; !strings.HasSuffix(logs.String(), want) {
			t.Errorf("%q: log: %s\nwant …%s", content, logs.String(), want)
		}
	}
}

// TestReloaderPolls: the poll loads a file renamed into place and an edit
// in place once two polls have seen it alike, never loads an unchanged
// file again, says at every poll that the file is unreadable or bad, and
// retries a failed load even when the fix changes nothing a stat shows.
func TestReloaderPolls(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "users")
	os.WriteFile(path, []byte(usersFileLines(t, "alice", "pw")), 0o600)
	var logs syncBuffer
	r := newTestReloader(t, path, &logs)
	stale := false
	r.stale = func(s bool) { stale = s }
	count := func(s string) int { return strings.Count(logs.String(), s) }
	step := func(what string, polls int, wantReloads, wantUnreadable, wantFailed, wantUsers int) {
		t.Helper()
		for range polls {
			r.poll()
		}
		// Stale while the last look found the file unreadable or bad.
		wantStale := strings.HasPrefix(what, "file gone") || strings.HasPrefix(what, "bad line")
		if stale != wantStale {
			t.Errorf("%s: stale = %v, want %v", what, stale, wantStale)
		}
		if got := count(`msg="users reloaded"`); got != wantReloads {
			t.Errorf("%s: %d reloads, want %d", what, got, wantReloads)
		}
		if got := count(`level=ERROR msg="users file unreadable; keeping the last good users"`); got != wantUnreadable {
			t.Errorf("%s: %d unreadable errors, want %d", what, got, wantUnreadable)
		}
		if got := count(`level=ERROR msg="users file not reloaded; keeping the last good users"`); got != wantFailed {
			t.Errorf("%s: %d failed loads, want %d", what, got, wantFailed)
		}
		if got := r.auth.store.Load().Len(); got != wantUsers {
			t.Errorf("%s: %d users, want %d", what, got, wantUsers)
		}
	}
	step("nothing done", 3, 0, 0, 0, 1)

	// `tokend user add`: a new file renamed over the old one.
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err := editUsersFile(path, setUser("bob", hash)); err != nil {
		t.Fatal(err)
	}
	step("first poll after a rename", 1, 0, 0, 0, 1)
	step("second poll after a rename", 1, 1, 0, 0, 2)
	step("unchanged since", 3, 1, 0, 0, 2)

	// An edit in place that keeps the size: only the time tells.
	fi, _ := os.Stat(path)
	data, _ := os.ReadFile(path)
	f, _ := os.OpenFile(path, os.O_WRONLY, 0)
	f.Write(append([]byte("# TEAM"), data[len("# team"):]...))
	f.Close()
	os.Chtimes(path, fi.ModTime(), fi.ModTime().Add(time.Second))
	step("an edit in place", 2, 2, 0, 0, 2)

	os.Remove(path)
	step("file gone", 3, 2, 3, 0, 2)
	os.WriteFile(path, data, 0o600)
	step("file back", 2, 3, 3, 0, 2)

	// A bad line: refused at every poll until fixed.
	bad := append(append([]byte{}, data...), "carol\n"...)
	os.WriteFile(path, bad, 0o600)
	step("bad line", 4, 3, 3, 3, 2)
	// Fixed without changing size or time (as a chmod would be): the
	// retry still picks it up.
	badInfo, _ := os.Stat(path)
	fixed := append(append([]byte{}, data...), "#arol\n"...)
	os.WriteFile(path, fixed, 0o600)
	os.Chtimes(path, badInfo.ModTime(), badInfo.ModTime())
	step("fixed", 1, 4, 3, 3, 2)
	if !strings.Contains(logs.String(), `msg="users reloaded" reason="retrying a failed load"`) {
		t.Errorf("log: %s", logs.String())
	}
	step("unchanged since", 3, 4, 3, 3, 2)

	// Moved away and back (an unmounted volume, a wrong mv undone): the
	// same file in the same state, loaded again all the same.
	os.Rename(path, path+".away")
	step("file gone again", 1, 4, 4, 3, 2)
	os.Rename(path+".away", path)
	step("file back unchanged", 2, 5, 4, 3, 2)
}

// startReloadServer runs tokend on a users file with alice, and returns
// the base URL.
func startReloadServer(t *testing.T, users string, env map[string]string) (string, *syncBuffer) {
	t.Helper()
	os.WriteFile(users, []byte(usersFileLines(t, "alice", "correct horse")), 0o600)
	addr := freeAddr(t)
	full := map[string]string{
		"TWILIO_ACCOUNT_SID":    testAccountSID,
		"TWILIO_API_KEY_SID":    testAPIKeySID,
		"TWILIO_API_KEY_SECRET": testSecret,
		"USERS_FILE":            users,
		"LISTEN_ADDR":           addr,
	}
	for k, v := range env {
		full[k] = v
	}
	var stdout, stderr syncBuffer
	errc := startRun(t, []string{"serve", "--env-file", filepath.Join(t.TempDir(), ".env")}, full, &stdout, &stderr)
	base := "http://" + addr
	waitReady(t, base, errc)
	return base, &stderr
}

func loginStatus(t *testing.T, base, user, pass string) int {
	resp, _ := postJSON(t, base+"/token", map[string]string{"username": user, "password": pass})
	return resp.StatusCode
}

// TestRunReloadsChangedFile: users added and removed (as `tokend user add`
// and `user del` do) in the file of a running tokend take effect without a
// restart, and the cached login of the removed user stops working.
func TestRunReloadsChangedFile(t *testing.T) {
	users := filepath.Join(t.TempDir(), "users.htpasswd")
	base, logs := startReloadServer(t, users, map[string]string{"USERS_RELOAD_INTERVAL": "100ms"})
	if s := loginStatus(t, base, "alice", "correct horse"); s != http.StatusOK {
		t.Fatalf("alice: %d", s)
	}
	// What `user add` does, at a cost the race detector can afford.
	hash, _ := bcrypt.GenerateFromPassword([]byte("battery staple"), bcrypt.MinCost)
	if err := editUsersFile(users, setUser("bob", hash)); err != nil {
		t.Fatal(err)
	}
	env := mapEnv(map[string]string{"USERS_FILE": users})
	noEnv := filepath.Join(t.TempDir(), ".env")
	var out, errs syncBuffer
	if err := run(context.Background(), []string{"tokend", "user", "del", "--env-file", noEnv, "alice"}, env, time.Now, strings.NewReader(""), &out, &errs); err != nil {
		t.Fatal(err, errs.String())
	}
	// Logins wait for the reload: failed tries would trip the login limits.
	waitFor(t, "the reload", func() bool {
		return strings.Contains(logs.String(), `msg="users reloaded" reason="file changed" file=`+users+` users=1`)
	})
	if s := loginStatus(t, base, "bob", "battery staple"); s != http.StatusOK {
		t.Errorf("bob: %d, want 200", s)
	}
	if s := loginStatus(t, base, "alice", "correct horse"); s != http.StatusUnauthorized {
		t.Errorf("alice: %d, want 401", s)
	}
}

// TestRunDeleteLastUser: `tokend user del` of the last user is applied by
// a running tokend: the user gets 401 and /readyz answers 503.
func TestRunDeleteLastUser(t *testing.T) {
	users := filepath.Join(t.TempDir(), "users.htpasswd")
	base, _ := startReloadServer(t, users, map[string]string{"USERS_RELOAD_INTERVAL": "100ms"})
	if s := loginStatus(t, base, "alice", "correct horse"); s != http.StatusOK {
		t.Fatalf("alice: %d", s)
	}
	env := mapEnv(map[string]string{"USERS_FILE": users})
	var out, errs syncBuffer
	if err := run(context.Background(), []string{"tokend", "user", "del", "--env-file", filepath.Join(t.TempDir(), ".env"), "alice"}, env, time.Now, strings.NewReader(""), &out, &errs); err != nil {
		t.Fatal(err, errs.String())
	}
	if want := "user \"alice\" removed from " + users + "\nno users are left: a running tokend now refuses every login and /readyz answers 503; " +
		"it will not start again until a user is added with `tokend user add NAME`\n"; out.String() != want {
		t.Errorf("stdout: %q\nwant    %q", out.String(), want)
	}
	waitFor(t, "alice is refused", func() bool { return loginStatus(t, base, "alice", "correct horse") == http.StatusUnauthorized })
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if want := `{"type":"urn:tokend:problem:unavailable","title":"Service unavailable","status":503,"detail":"no users are loaded, so no login can succeed; add one with ` + "`tokend user add NAME`" + `"}`; resp.StatusCode != http.StatusServiceUnavailable || strings.TrimSpace(string(body)) != want {
		t.Errorf("/readyz: %d %s\nwant 503 %s", resp.StatusCode, body, want)
	}
}

// TestRunReloadsOnSIGHUP: with polling off, SIGHUP reloads the file.
func TestRunReloadsOnSIGHUP(t *testing.T) {
	users := filepath.Join(t.TempDir(), "users.htpasswd")
	base, logs := startReloadServer(t, users, map[string]string{"USERS_RELOAD_INTERVAL": "0"})
	os.WriteFile(users, []byte(usersFileLines(t, "bob", "battery staple")), 0o600)
	if s := loginStatus(t, base, "bob", "battery staple"); s != http.StatusUnauthorized {
		t.Fatalf("bob before SIGHUP: %d", s)
	}
	// serve has SIGHUP in signal.Notify while it runs, so this reaches it
	// rather than ending the test binary.
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "bob can log in", func() bool { return loginStatus(t, base, "bob", "battery staple") == http.StatusOK })
	if !strings.Contains(logs.String(), `msg="users reloaded" reason=SIGHUP`) {
		t.Errorf("log: %s", logs.String())
	}
}

// TestRunHighCostReloadsAtOnce: a reload to a file with a cost-17 user (the
// most allowed, about 6 s a check) is done at once, since the dummy hash
// costs nothing to make, and a later SIGHUP is still heard; then tokend
// shuts down promptly (startRun's cleanup fails the test if it does not).
func TestRunHighCostReloadsAtOnce(t *testing.T) {
	users := filepath.Join(t.TempDir(), "users.htpasswd")
	base, logs := startReloadServer(t, users, map[string]string{"USERS_RELOAD_INTERVAL": "0"})
	os.WriteFile(users, []byte(usersFileLines(t, "alice", "correct horse")+"slow:"+string(dummyHash(maxBcryptCost))+"\n"), 0o600)
	for i, want := range []string{"users=2", "users=1"} {
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "reload "+want, func() bool {
			return strings.Count(logs.String(), `msg="users reloaded" reason=SIGHUP`) == i+1 && strings.Contains(logs.String(), want+" added=")
		})
		os.WriteFile(users, []byte(usersFileLines(t, "alice", "correct horse")), 0o600)
	}
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz: %d", resp.StatusCode)
	}
}
