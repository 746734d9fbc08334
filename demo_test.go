package main

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDemoPage checks when GET / serves the demo page and with which headers.
func TestDemoPage(t *testing.T) {
	const notFound = `{"type":"urn:tokend:problem:not-found","title":"Not found","status":404,"detail":"no such endpoint /; tokens are issued by POST /token"}`
	tests := []struct {
		name        string
		demo, dev   bool
		method      string
		path        string
		wantStatus  int
		wantType    string
		wantBody    string // exact, for problems
		wantBanner  bool
		wantHeaders map[string]string
	}{
		{name: "off by default", method: "GET", path: "/", wantStatus: 404, wantType: "application/problem+json", wantBody: notFound},
		{name: "DEMO_PAGE=true", demo: true, method: "GET", path: "/", wantStatus: 200, wantType: "text/html; charset=utf-8",
			wantHeaders: map[string]string{"Cache-Control": "no-cache", "X-Frame-Options": "DENY", "Vary": "Origin"}},
		{name: "development mode shows the banner", demo: true, dev: true, method: "GET", path: "/", wantStatus: 200, wantType: "text/html; charset=utf-8", wantBanner: true},
		{name: "HEAD", demo: true, method: "HEAD", path: "/", wantStatus: 200, wantType: "text/html; charset=utf-8"},
		{name: "POST /", demo: true, method: "POST", path: "/", wantStatus: 405, wantType: "application/problem+json",
			wantBody:    `{"type":"urn:tokend:problem:method-not-allowed","title":"Method not allowed","status":405,"detail":"POST is not allowed here: the demo page is GET /; tokens are issued by POST /token"}`,
			wantHeaders: map[string]string{"Allow": "GET, HEAD"}},
		{name: "only / itself", demo: true, method: "GET", path: "/index.html", wantStatus: 404, wantType: "application/problem+json",
			wantBody: `{"type":"urn:tokend:problem:not-found","title":"Not found","status":404,"detail":"no such endpoint /index.html; tokens are issued by POST /token"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.DemoPage, cfg.Dev = tt.demo, tt.dev
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			store := testUsers(t, map[string]string{"alice": "correct horse"})
			auth, err := newBcryptAuth(store)
			if err != nil {
				t.Fatal(err)
			}
			h := NewServer(log, cfg, auth, store, newMetrics(), time.Now)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			if got := rec.Header().Get("Content-Type"); got != tt.wantType {
				t.Errorf("Content-Type = %q, want %q", got, tt.wantType)
			}
			for k, v := range tt.wantHeaders {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			body := rec.Body.String()
			if tt.wantType != "text/html; charset=utf-8" {
				if got := strings.TrimSpace(body); got != tt.wantBody {
					t.Errorf("body = %s\nwant   %s", got, tt.wantBody)
				}
				return
			}
			if tt.method == "HEAD" {
				return // the recorder keeps what net/http drops for HEAD
			}
			if want := demoCSP(demoHTML); rec.Header().Get("Content-Security-Policy") != want {
				t.Errorf("Content-Security-Policy = %q, want %q", rec.Header().Get("Content-Security-Policy"), want)
			}
			if got := strings.Contains(body, `id="dev-banner"`) && strings.Contains(body, "FAKE credentials"); got != tt.wantBanner {
				t.Errorf("dev banner shown = %v, want %v", got, tt.wantBanner)
			}
			if strings.Contains(body, devBannerMarker) == tt.wantBanner {
				t.Errorf("the banner marker was not handled: %v", tt.wantBanner)
			}
		})
	}
}

// TestDemoCSP: the policy allows exactly the page's own inline script and
// style, by hash, and nothing from anywhere else.
func TestDemoCSP(t *testing.T) {
	page := "<html><style>b{}</style><p>x</p><script>x</script><script>\nlet a = 1;\n</script></html>"
	const want = "default-src 'none'; " +
		"script-src 'sha256-LXEWQrcmsEQBYnyp+6wy9chTD7GQPMTbAiWHF5IaSIE=' 'sha256-wCpX6PRaV2tYabHPuD0EVrhGyeiYQpOhQOJ8OhOtDwA='; " +
		"style-src 'sha256-7yqHVAesot11p6HczDsgKRipvI5UPgs97z80zNXlans='; " +
		"connect-src 'self'; img-src data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
	if got := demoCSP(page); got != want {
		t.Errorf("demoCSP = %s\nwant       %s", got, want)
	}
	if got := demoCSP("<p>no script</p>"); !strings.Contains(got, "script-src 'none'; style-src 'none';") {
		t.Errorf("a page without script or style: %s", got)
	}
	// The real page has one script and one style element, each hashed.
	csp := demoCSP(demoHTML)
	if n := strings.Count(csp, "'sha256-"); n != 2 || strings.Contains(csp, "unsafe") {
		t.Errorf("demo page CSP = %s", csp)
	}
}

// TestDemoPageIsSelfContained: the page loads nothing from elsewhere (no
// external script, style, font or image), so it works offline and its CSP
// can forbid everything else.
func TestDemoPageIsSelfContained(t *testing.T) {
	for _, m := range regexp.MustCompile(`(?i)\b(src|href|action)\s*=\s*"([^"]*)"`).FindAllStringSubmatch(demoHTML, -1) {
		switch ref := m[2]; {
		case strings.HasPrefix(ref, "data:"), m[1] == "action" && ref == "token":
		default:
			t.Errorf("the demo page refers to %s=%q", m[1], ref)
		}
	}
	for _, bad := range []string{"@import", "url(", "@font-face", "<iframe", " style="} {
		if strings.Contains(demoHTML, bad) {
			t.Errorf("the demo page has %q, which loads from elsewhere or which its CSP forbids", bad)
		}
	}
	if m := regexp.MustCompile(`\son[a-z]+\s*=`).FindString(demoHTML); m != "" {
		t.Errorf("the demo page has an inline event handler (%s), which its CSP forbids", m)
	}
	if n := strings.Count(demoHTML, "<script"); n != 1 {
		t.Errorf("%d script elements: the CSP hashes only <script> without attributes", n)
	}
}
