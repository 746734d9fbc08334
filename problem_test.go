package main

import (
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestProblemKind pins the one table from code to status and title, and
// what an unknown code becomes.
func TestProblemKind(t *testing.T) {
	tests := []struct {
		code   string
		status int
		title  string
		ok     bool
	}{
		{EINVALID, 400, "Invalid request", true},
		{EUNAUTHORIZED, 401, "Unauthorized", true},
		{EFORBIDDEN, 403, "Forbidden", true},
		{ENOTFOUND, 404, "Not found", true},
		{EMETHOD, 405, "Method not allowed", true},
		{ETOOLARGE, 413, "Request body too large", true},
		{EMEDIATYPE, 415, "Unsupported media type", true},
		{ETOOMANY, 429, "Too many requests", true},
		{ECANCELED, 499, "Client closed request", true},
		{EUNAVAILABLE, 503, "Service unavailable", true},
		{EINTERNAL, 500, "Internal error", true},
		{"no-such-code", 500, "Internal error", false},
	}
	for _, tt := range tests {
		status, title, ok := problemKind(tt.code)
		if status != tt.status || title != tt.title || ok != tt.ok {
			t.Errorf("problemKind(%q) = %d, %q, %v; want %d, %q, %v", tt.code, status, title, ok, tt.status, tt.title, tt.ok)
		}
	}
}

// TestWriteErrorRetryAfter: an error that asks the client to wait says so
// in Retry-After, in whole seconds; an internal error says nothing of its cause.
func TestWriteErrorRetryAfter(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tests := []struct {
		err        error
		wantStatus int
		wantRetry  string
		wantBody   string
	}{
		{retryLater(ETOOMANY, 1500*time.Millisecond, "slow down"), 429, "2",
			`{"type":"urn:tokend:problem:too-many-requests","title":"Too many requests","status":429,"detail":"slow down; try again in 2 seconds"}`},
		{retryLater(EUNAVAILABLE, 0, "busy"), 503, "1",
			`{"type":"urn:tokend:problem:unavailable","title":"Service unavailable","status":503,"detail":"busy; try again in 1 second"}`},
		{errors.New("database password is hunter2"), 500, "",
			`{"type":"urn:tokend:problem:internal","title":"Internal error","status":500,"detail":"internal error"}`},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		writeError(rec, httptest.NewRequest("POST", "/token", nil), log, tt.err)
		if rec.Code != tt.wantStatus || rec.Header().Get("Retry-After") != tt.wantRetry || strings.TrimSpace(rec.Body.String()) != tt.wantBody {
			t.Errorf("%v: %d, Retry-After %q, %s", tt.err, rec.Code, rec.Header().Get("Retry-After"), rec.Body)
		}
	}
}

// TestChallenge: browser pages' 401s carry no Basic challenge, which would
// make the browser ask for a password in a dialog of its own; API clients
// and Basic-auth users are told Basic works.
func TestChallenge(t *testing.T) {
	const basicChallenge, cookieChallenge = `Basic realm="tokend"`, `Cookie realm="tokend", cookie-name="__Host-tokend_session"`
	for _, tt := range []struct {
		mode, auth, want string
	}{
		{"", "", basicChallenge},
		{"navigate", "", basicChallenge},
		{"cors", "", cookieChallenge},
		{"same-origin", "", cookieChallenge},
		{"no-cors", "", cookieChallenge},
		{"cors", "Basic YTpi", basicChallenge},
	} {
		r := httptest.NewRequest("POST", "/token", nil)
		if tt.mode != "" {
			r.Header.Set("Sec-Fetch-Mode", tt.mode)
		}
		if tt.auth != "" {
			r.Header.Set("Authorization", tt.auth)
		}
		rec := httptest.NewRecorder()
		writeError(rec, r, slog.New(slog.DiscardHandler), errBadCredentials)
		if got := rec.Header().Get("WWW-Authenticate"); got != tt.want {
			t.Errorf("Sec-Fetch-Mode %q, Authorization %q: WWW-Authenticate %q, want %q", tt.mode, tt.auth, got, tt.want)
		}
	}
}
