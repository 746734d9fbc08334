package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// scrape returns the metrics h serves, without the histogram's buckets and
// sums (whose values depend on timing) and without Go's and the process's.
func scrape(t *testing.T, h http.Handler) []string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	var lines []string
	for _, l := range strings.Split(rec.Body.String(), "\n") {
		if strings.HasPrefix(l, "tokend_") && !strings.Contains(l, "_bucket{") && !strings.Contains(l, "_sum{") {
			lines = append(lines, l)
		}
	}
	slices.Sort(lines)
	return lines
}

func serveOne(h http.Handler, method, target, ct, auth, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestMetrics checks what /metrics counts after tokens and failures of each
// kind, and that the reasons operators see never change the 401 clients see.
func TestMetrics(t *testing.T) {
	h := newTestServer(t)
	for _, r := range []struct {
		ct, auth, body string
		status         int
	}{
		{jsonCT, "", `{"username":"alice","password":"correct horse"}`, 200},
		{jsonCT, "", `{"username":"alice","password":"correct horse","grants":["video","sync"]}`, 200},
		{jsonCT, "", `{"username":"alice","password":"correct horse","grants":["conversations"]}`, 200},
		{jsonCT, "", `{"username":"alice","password":"wrong"}`, 401},
		{"", basic("alice", "wrong"), "", 401},
		{jsonCT, "", `{"username":"mallory","password":"correct horse"}`, 401},
		{jsonCT, "", `{"username":"alice"}`, 401},
		{"", "", "", 401},
		{"", "Bearer abc", "", 401},
		{jsonCT, "", `{"username":"alice","password":"correct horse","ttl":0}`, 400},
	} {
		if rec := serveOne(h, "POST", "/token", r.ct, r.auth, r.body); rec.Code != r.status {
			t.Fatalf("%s: %d %s", r.body, rec.Code, rec.Body)
		}
	}
	serveOne(h, "GET", "/no/such/path-8d1f", "", "", "")
	serveOne(h, "GET", "/healthz", "", "", "")

	want := []string{
		`tokend_auth_failures_total{reason="bad_credentials"} 3`,
		`tokend_auth_failures_total{reason="invalid_id_token"} 0`,
		`tokend_auth_failures_total{reason="malformed_authorization"} 1`,
		`tokend_auth_failures_total{reason="missing_credentials"} 2`,
		`tokend_auth_failures_total{reason="no_session"} 0`,
		`tokend_auth_failures_total{reason="other"} 0`,
		`tokend_http_request_duration_seconds_count{route="/",status="404"} 1`,
		`tokend_http_request_duration_seconds_count{route="/healthz",status="200"} 1`,
		`tokend_http_request_duration_seconds_count{route="/token",status="200"} 3`,
		`tokend_http_request_duration_seconds_count{route="/token",status="400"} 1`,
		`tokend_http_request_duration_seconds_count{route="/token",status="401"} 6`,
		`tokend_limits_store_up 1`,
		`tokend_rate_limited_total 0`,
		`tokend_session_store_up 1`,
		`tokend_sessions_ended_total{reason="evicted"} 0`,
		`tokend_sessions_ended_total{reason="logout"} 0`,
		`tokend_sessions_ended_total{reason="password_changed"} 0`,
		`tokend_sessions_ended_total{reason="replaced"} 0`,
		`tokend_sessions_ended_total{reason="revoked"} 0`,
		`tokend_sessions_ended_total{reason="user_removed"} 0`,
		`tokend_sessions_renewed_total 0`,
		`tokend_sessions_started_total 0`,
		`tokend_tokens_issued_total{grant="chat"} 0`,
		`tokend_tokens_issued_total{grant="conversations"} 1`,
		`tokend_tokens_issued_total{grant="sync"} 1`,
		`tokend_tokens_issued_total{grant="video"} 2`,
		`tokend_tokens_issued_total{grant="voice"} 1`,
		`tokend_users_file_stale 0`,
		// Both series exist from the start, Zoom enabled or not.
		`tokend_zoom_tokens_issued_total{role="host"} 0`,
		`tokend_zoom_tokens_issued_total{role="participant"} 0`,
	}
	if got := scrape(t, h); !slices.Equal(got, want) {
		t.Errorf("metrics:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestAuthFailureReasonsShareOneAnswer: the reasons differ in the metrics,
// never in the answer; and the metrics, which a scrape of the public
// listener shows anyone, never tell an unknown user from a wrong password:
// that would undo the single 401 body and the dummy hash.
func TestAuthFailureReasonsShareOneAnswer(t *testing.T) {
	h := newTestServer(t)
	unknown := serveOne(h, "POST", "/token", jsonCT, "", `{"username":"mallory","password":"correct horse"}`)
	wrong := serveOne(h, "POST", "/token", jsonCT, "", `{"username":"alice","password":"wrong"}`)
	missing := serveOne(h, "POST", "/token", "", "", "")
	for _, rec := range []*httptest.ResponseRecorder{wrong, missing} {
		if rec.Code != unknown.Code || rec.Body.String() != unknown.Body.String() {
			t.Errorf("answers differ: %d %q and %d %q", rec.Code, rec.Body, unknown.Code, unknown.Body)
		}
		for k := range unknown.Header() {
			if rec.Header().Get(k) != unknown.Header().Get(k) {
				t.Errorf("header %s differs: %q and %q", k, rec.Header().Get(k), unknown.Header().Get(k))
			}
		}
	}
	got := scrape(t, h)
	for _, want := range []string{
		`tokend_auth_failures_total{reason="missing_credentials"} 1`,
		`tokend_auth_failures_total{reason="bad_credentials"} 2`,
	} {
		if !slices.Contains(got, want) {
			t.Errorf("metrics lack %s:\n%s", want, strings.Join(got, "\n"))
		}
	}
	// A guesser scrapes after each try: the series that moved must be the
	// same whether the name exists or not.
	before := scrape(t, h)
	serveOne(h, "POST", "/token", jsonCT, "", `{"username":"nosuchuser","password":"x"}`)
	afterUnknown := scrape(t, h)
	serveOne(h, "POST", "/token", jsonCT, "", `{"username":"alice","password":"x"}`)
	afterWrong := scrape(t, h)
	if a, b := changed(before, afterUnknown), changed(afterUnknown, afterWrong); !slices.Equal(a, b) {
		t.Errorf("an unknown user moved %v, a wrong password moved %v", a, b)
	}
}

// changed lists the names and labels of the series whose value differs.
func changed(before, after []string) []string {
	var out []string
	for i := range min(len(before), len(after)) {
		if before[i] != after[i] {
			name, _, _ := strings.Cut(after[i], "} ")
			out = append(out, name)
		}
	}
	return out
}

// TestMetricsCountRateLimited: every 429, whichever handler or middleware
// answered it, is counted; and a 401 no one explained is counted as other.
func TestMetricsCountRateLimited(t *testing.T) {
	m := newMetrics()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mux := http.NewServeMux()
	mux.Handle("/token", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("limit") != "" {
			w.Header().Set("Retry-After", "1")
			writeError(w, r, log, Errorf(ETOOMANY, "too many attempts"))
			return
		}
		writeError(w, r, log, errBadCredentials)
	}))
	h := observe(log, m, nil)(recordRoute(mux))
	serveOne(h, "POST", "/token?limit=1", "", "", "")
	serveOne(h, "POST", "/token?limit=1", "", "", "")
	serveOne(h, "POST", "/token", "", "", "")
	got := scrape(t, handleMetrics(log, m))
	for _, want := range []string{
		`tokend_rate_limited_total 2`,
		`tokend_auth_failures_total{reason="other"} 1`,
		`tokend_http_request_duration_seconds_count{route="/token",status="429"} 2`,
	} {
		if !slices.Contains(got, want) {
			t.Errorf("metrics lack %s:\n%s", want, strings.Join(got, "\n"))
		}
	}
}

// TestMetricsPerServer: each server counts in its own registry, so two in
// one process neither collide nor share counts.
func TestMetricsPerServer(t *testing.T) {
	a, b := newTestServer(t), newTestServer(t)
	serveOne(a, "POST", "/token", jsonCT, "", `{"username":"alice","password":"correct horse","grants":"video"}`)
	if got := scrape(t, a); !slices.Contains(got, `tokend_tokens_issued_total{grant="video"} 1`) {
		t.Errorf("a: %s", strings.Join(got, "\n"))
	}
	if got := scrape(t, b); !slices.Contains(got, `tokend_tokens_issued_total{grant="video"} 0`) {
		t.Errorf("b: %s", strings.Join(got, "\n"))
	}
	// Go's and the process's own metrics are there too.
	rec := serveOne(a, "GET", "/metrics", "", "", "")
	for _, name := range []string{"go_goroutines ", "process_resident_memory_bytes "} {
		if !strings.Contains(rec.Body.String(), "\n"+name) {
			t.Errorf("no %s in /metrics", name)
		}
	}
}

// TestReadyz: ready while users are loaded, 503 otherwise; health does not
// depend on them.
func TestReadyz(t *testing.T) {
	const unready = `{"type":"urn:tokend:problem:unavailable","title":"Service unavailable","status":503,"detail":"no users are loaded, so no login can succeed; add one with ` + "`tokend user add NAME`" + `"}`
	cfg := testConfig()
	store := testUsers(t, map[string]string{"alice": "pw"})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	server := func(users *userStore) http.Handler {
		return NewServer(log, cfg, errAuth{}, users, newMetrics(), time.Now)
	}
	h := server(store)
	tests := []struct {
		name       string
		h          http.Handler
		swap       *Users
		wantStatus int
		wantCT     string
		wantBody   string
	}{
		{"users loaded", h, nil, 200, "text/plain; charset=utf-8", "ready\n"},
		{"users file emptied", h, newUsers(map[string][]byte{}), 503, "application/problem+json", unready + "\n"},
		{"no user store", server(nil), nil, 503, "application/problem+json", unready + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.swap != nil {
				store.Store(tt.swap)
			}
			rec := serveOne(tt.h, "GET", "/readyz", "", "", "")
			if rec.Code != tt.wantStatus || rec.Header().Get("Content-Type") != tt.wantCT || rec.Body.String() != tt.wantBody {
				t.Errorf("readyz = %d %s %q\nwant     %d %s %q", rec.Code, rec.Header().Get("Content-Type"), rec.Body, tt.wantStatus, tt.wantCT, tt.wantBody)
			}
			if rec := serveOne(tt.h, "GET", "/healthz", "", "", ""); rec.Code != 200 || rec.Body.String() != "ok\n" {
				t.Errorf("healthz = %d %q", rec.Code, rec.Body)
			}
		})
	}
}
