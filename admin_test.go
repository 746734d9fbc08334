package main

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestAdminUnlock: POST /admin/unlock lifts the lock of a username or of a
// client address at once, and only that one; bad calls get problem+json.
func TestAdminUnlock(t *testing.T) {
	cfg := testConfig()
	cfg.Limits = Limits{UserFailures: 2, UserFailuresPerHour: 90, AddrFailures: 3, AddrFailuresPerHour: 60,
		AddrRequests: 100, AddrRequestsPerSecond: 1, MaxKeys: 100}
	g := newGuardedServer(t, cfg, map[string]string{"alice": "correct horse", "bob": "battery staple"})
	admin := adminRoutes(slog.New(slog.NewTextHandler(io.Discard, nil)), newMetrics(), g.auth.limits, false)
	call := func(method, target string) (int, string) {
		rec := httptest.NewRecorder()
		admin.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
		return rec.Code, strings.TrimSpace(rec.Body.String())
	}
	// Two failures lock alice, a third (for bob) locks addrA.
	g.login(addrA, "alice", "wrong 1")
	g.login(addrB, "alice", "wrong 2")
	g.login(addrA, "bob", "wrong")
	g.login(addrA, "carol", "wrong")
	if status, _, _ := g.login(addrB, "alice", "correct horse"); status != 429 {
		t.Fatalf("alice not locked: %d", status)
	}
	steps := []struct {
		method, target string
		wantStatus     int
		wantBody       string
	}{
		{"POST", "/admin/unlock?username=alice", 200, `{"username":"alice","was_locked":true}`},
		{"POST", "/admin/unlock?username=alice", 200, `{"username":"alice","was_locked":false}`},
		{"POST", "/admin/unlock?address=198.51.100.7", 200, `{"address":"198.51.100.7","was_locked":true}`},
		{"POST", "/admin/unlock?address=::ffff:198.51.100.7", 200, `{"address":"198.51.100.7","was_locked":false}`},
		{"POST", "/admin/unlock?address=2001:db8:1:2:3:4:5:6", 200, `{"address":"2001:db8:1:2::/64","was_locked":false}`},
		{"GET", "/admin/unlock?username=alice", 405, problemBody(EMETHOD, "Method not allowed", 405, "use POST /admin/unlock?username=NAME or ?address=ADDR")},
		{"POST", "/admin/unlock", 400, problemBody(EINVALID, "Invalid request", 400, "name exactly one lock: POST /admin/unlock?username=NAME or ?address=ADDR")},
		{"POST", "/admin/unlock?username=alice&address=198.51.100.7", 400, problemBody(EINVALID, "Invalid request", 400, "name exactly one lock: POST /admin/unlock?username=NAME or ?address=ADDR")},
		{"POST", "/admin/unlock?username=alice&username=bob", 400, problemBody(EINVALID, "Invalid request", 400, "name exactly one lock: POST /admin/unlock?username=NAME or ?address=ADDR")},
		{"POST", "/admin/unlock?username=", 400, problemBody(EINVALID, "Invalid request", 400, "name exactly one lock: POST /admin/unlock?username=NAME or ?address=ADDR")},
	}
	for i, s := range steps {
		if status, body := call(s.method, s.target); status != s.wantStatus || body != s.wantBody {
			t.Errorf("%d: %s %s: %d %s\nwant %d %s", i, s.method, s.target, status, body, s.wantStatus, s.wantBody)
		}
	}
	if status, body := call("POST", "/admin/unlock?address=not-an-address"); status != 400 || !strings.Contains(body, `"invalid_params":[{"name":"address","reason":"is not an IP address such as 198.51.100.7 or 2001:db8::1"}]`) {
		t.Errorf("bad address: %d %s", status, body)
	}
	// Both locks are gone: alice logs in from addrA.
	if status, _, body := g.login(addrA, "alice", "correct horse"); status != 200 {
		t.Errorf("after unlock: %d %s", status, body)
	}
	// The public handler has no /admin.
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, httptest.NewRequest("POST", "/admin/unlock?username=alice", nil))
	if rec.Code != 404 {
		t.Errorf("/admin/unlock on the public handler: %d", rec.Code)
	}
}
