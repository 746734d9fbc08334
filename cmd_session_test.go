package main

import (
	"net/http/httptest"
	"strings"
	"testing"

	"tokend/internal/session"
)

// TestSessionCommands: `tokend session list` and `revoke` against a running
// tokend's admin endpoints, found through METRICS_ADDR.
func TestSessionCommands(t *testing.T) {
	s := newSessionServer(t, session.NewMemoryStore(100), nil)
	a1 := s.login()
	s.login()
	bob := cookieOf(s.do(req{body: `{"username":"bob","password":"battery staple"}`})).Value
	srv := httptest.NewServer(s.admin)
	defer srv.Close()
	env := map[string]string{"METRICS_ADDR": strings.TrimPrefix(srv.URL, "http://")}
	noEnv := t.TempDir() + "/none.env"

	out, _, err := runTokend(t, env, specTime, "", "session", "list", "--env-file", noEnv, "alice")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err != nil || len(lines) != 3 || !strings.HasPrefix(lines[0], "ID  ") || !strings.Contains(lines[1], " alice ") ||
		!strings.Contains(lines[1], "2026-11-27T13:32:11Z") {
		t.Fatalf("session list alice: %v\n%s", err, out)
	}
	id := session.IDOf(session.Key(a1))
	out, _, err = runTokend(t, env, specTime, "", "session", "revoke", "--env-file", noEnv, id)
	if err != nil || out != "session "+id+": 1 session(s) ended\n" {
		t.Errorf("revoke ID: %v %q", err, out)
	}
	out, _, err = runTokend(t, env, specTime, "", "session", "revoke", "--env-file", noEnv, "alice")
	if err != nil || out != "user \"alice\": 1 session(s) ended\n" {
		t.Errorf("revoke user: %v %q", err, out)
	}
	if _, _, err = runTokend(t, env, specTime, "", "session", "revoke", "--env-file", noEnv, id); err == nil ||
		err.Error() != `tokend answered 404: no live session has the ID "`+id+`"; list them with GET /admin/sessions` {
		t.Errorf("revoke a gone ID: %v", err)
	}
	out, _, err = runTokend(t, env, specTime, "", "session", "list", "--env-file", noEnv)
	if err != nil || strings.Count(out, "\n") != 2 || !strings.Contains(out, " bob ") {
		t.Errorf("list all after revoking alice: %v\n%s", err, out)
	}
	if s.do(req{cookie: bob, ct: "json"}).Code != 200 {
		t.Error("bob's session ended")
	}
	if _, _, err := runTokend(t, map[string]string{}, specTime, "", "session", "list", "--env-file", noEnv); err == nil ||
		!strings.Contains(err.Error(), "and neither is set") {
		t.Errorf("without METRICS_ADDR: %v", err)
	}
	if _, stderr, err := runTokend(t, env, specTime, "", "session", "revoke", "--env-file", noEnv); err != errUsage || !strings.Contains(stderr, "tokend session revoke: want 1 argument, got 0") {
		t.Errorf("revoke with no argument: %v %s", err, stderr)
	}
}

func TestAdminBase(t *testing.T) {
	for in, want := range map[string]string{":9090": "http://127.0.0.1:9090", "0.0.0.0:9090": "http://127.0.0.1:9090",
		"[::]:9090": "http://127.0.0.1:9090", "10.0.0.5:9090": "http://10.0.0.5:9090", "[::1]:9090": "http://[::1]:9090"} {
		if got, err := adminBase(in); got != want || err != nil {
			t.Errorf("adminBase(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
