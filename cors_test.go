package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCORSOriginsSetting checks how CORS_ALLOWED_ORIGINS is read: exact
// origins in the browser's spelling, "*" only alone, and every malformed
// entry named with its fix.
func TestCORSOriginsSetting(t *testing.T) {
	tests := []struct {
		raw          string
		want         []string
		wantProblems []string
	}{
		{raw: "", want: nil},
		{raw: "https://app.example.com", want: []string{"https://app.example.com"}},
		{raw: " https://app.example.com , http://localhost:5173,,https://App.Example.com ",
			want: []string{"https://app.example.com", "http://localhost:5173"}},
		{raw: "http://127.0.0.1:8081,http://[::1]:3000,https://xn--rsum-bpad.example",
			want: []string{"http://127.0.0.1:8081", "http://[::1]:3000", "https://xn--rsum-bpad.example"}},
		{raw: "*", want: []string{"*"}},
		{raw: "null", wantProblems: []string{`CORS_ALLOWED_ORIGINS: "null" is never allowed: sandboxed iframes, file: pages and redirected requests all send the null origin`}},
		{raw: "*,https://app.example.com", want: []string{"*", "https://app.example.com"},
			wantProblems: []string{`CORS_ALLOWED_ORIGINS is "*,https://app.example.com": * allows every origin, so list it alone or not at all`}},
		{raw: "https://app.example.com/", wantProblems: []string{`CORS_ALLOWED_ORIGINS: "https://app.example.com/" has a path (/): an origin is scheme://host[:port], such as https://app.example.com; drop it`}},
		{raw: "https://app.example.com/login", wantProblems: []string{`CORS_ALLOWED_ORIGINS: "https://app.example.com/login" has a path (/login): an origin is scheme://host[:port], such as https://app.example.com; drop it`}},
		{raw: "app.example.com", wantProblems: []string{`CORS_ALLOWED_ORIGINS: "app.example.com" is not an origin: an origin is scheme://host[:port], such as https://app.example.com`}},
		{raw: "localhost:3000", wantProblems: []string{`CORS_ALLOWED_ORIGINS: "localhost:3000" is not an origin: an origin is scheme://host[:port], such as https://app.example.com`}},
		{raw: "https://*.example.com", wantProblems: []string{`CORS_ALLOWED_ORIGINS: "https://*.example.com" has a wildcard: list each origin exactly, or use * alone to allow every origin`}},
		{raw: "ftp://files.example.com", wantProblems: []string{`CORS_ALLOWED_ORIGINS: "ftp://files.example.com" has the scheme ftp: browser pages have http or https origins`}},
		{raw: "https://app.example.com:443", wantProblems: []string{`CORS_ALLOWED_ORIGINS: "https://app.example.com:443" has the default port 443, which browsers leave out of the Origin header: write https://app.example.com`}},
		{raw: "http://[::1]:80", wantProblems: []string{`CORS_ALLOWED_ORIGINS: "http://[::1]:80" has the default port 80, which browsers leave out of the Origin header: write http://[::1]`}},
		{raw: "http://localhost:70000", wantProblems: []string{`CORS_ALLOWED_ORIGINS: "http://localhost:70000" has the port 70000: use 1 to 65535`}},
		{raw: "http://localhost:", wantProblems: []string{`CORS_ALLOWED_ORIGINS: "http://localhost:" has an empty port: an origin is scheme://host[:port], such as https://app.example.com`}},
		{raw: "https://user@app.example.com", wantProblems: []string{`CORS_ALLOWED_ORIGINS: "https://user@app.example.com" has a user name: an origin is scheme://host[:port], such as https://app.example.com`}},
		{raw: "https://app.example.com?x=1", wantProblems: []string{`CORS_ALLOWED_ORIGINS: "https://app.example.com?x=1" has a query or fragment: an origin is scheme://host[:port], such as https://app.example.com`}},
		{raw: "https://app.example.com#", wantProblems: []string{`CORS_ALLOWED_ORIGINS: "https://app.example.com#" has a query or fragment: an origin is scheme://host[:port], such as https://app.example.com`}},
		{raw: "https://résumé.example", wantProblems: []string{`CORS_ALLOWED_ORIGINS: "https://résumé.example" has a malformed host name "résumé.example": use letters, digits, - and . (xn-- punycode for other letters)`}},
		{raw: "https://app..example.com", wantProblems: []string{`CORS_ALLOWED_ORIGINS: "https://app..example.com" has a malformed host name "app..example.com": use letters, digits, - and . (xn-- punycode for other letters)`}},
		{raw: "http://[0:0::1]:3000", wantProblems: []string{`CORS_ALLOWED_ORIGINS: "http://[0:0::1]:3000" writes its IPv6 address differently from browsers: use [::1]`}},
		{raw: "https://ok.example.com,https://bad.example.com/,null", want: []string{"https://ok.example.com"},
			wantProblems: []string{
				`CORS_ALLOWED_ORIGINS: "https://bad.example.com/" has a path (/): an origin is scheme://host[:port], such as https://app.example.com; drop it`,
				`CORS_ALLOWED_ORIGINS: "null" is never allowed: sandboxed iframes, file: pages and redirected requests all send the null origin`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			s := &settings{lookup: mapEnv(map[string]string{"CORS_ALLOWED_ORIGINS": tt.raw})}
			got := s.origins("CORS_ALLOWED_ORIGINS")
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("origins = %q, want %q", got, tt.want)
			}
			if !reflect.DeepEqual(s.problems, tt.wantProblems) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(s.problems, "\n"), strings.Join(tt.wantProblems, "\n"))
			}
		})
	}
}

// TestRunRefusesMalformedOrigin: a bad origin stops start-up, named in the
// one message that lists every problem.
func TestRunRefusesMalformedOrigin(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"tokend", "serve", "--env-file", filepath.Join(dir, ".env")},
		{"tokend", "serve", "--dev", "--env-file", filepath.Join(dir, ".env")},
	} {
		var stdout, stderr syncBuffer
		err := run(t.Context(), args, mapEnv(map[string]string{
			"TWILIO_ACCOUNT_SID":    testAccountSID,
			"TWILIO_API_KEY_SID":    testAPIKeySID,
			"TWILIO_API_KEY_SECRET": testSecret,
			"USERS_FILE":            filepath.Join(dir, "users"),
			"CORS_ALLOWED_ORIGINS":  "https://app.example.com/",
		}), time.Now, strings.NewReader(""), &stdout, &stderr)
		const want = `  - CORS_ALLOWED_ORIGINS: "https://app.example.com/" has a path (/): an origin is scheme://host[:port], such as https://app.example.com; drop it`
		if err == nil || !strings.Contains(err.Error()+"\n", want+"\n") {
			t.Errorf("%s: err = %v\nwant a line %s", args[2:], err, want)
		}
	}
}

// TestRunWarnsAboutAnyOrigin: * is allowed, but start-up says what it means.
func TestRunWarnsAboutAnyOrigin(t *testing.T) {
	addr := freeAddr(t)
	var stdout, stderr syncBuffer
	errc := startRun(t, []string{"serve", "--dev", "--env-file", filepath.Join(t.TempDir(), ".env")},
		map[string]string{"LISTEN_ADDR": addr, "CORS_ALLOWED_ORIGINS": "*"}, &stdout, &stderr)
	waitReady(t, "http://"+addr, errc)
	const want = `level=WARN msg="CORS_ALLOWED_ORIGINS is *: a page on any web site may ask for tokens with a login it holds; list your apps' origins instead"`
	if !strings.Contains(stderr.String(), want) {
		t.Errorf("log lacks %s:\n%s", want, stderr.String())
	}
}

func newCORSTestServer(t *testing.T, origins []string) http.Handler {
	t.Helper()
	store := testUsers(t, map[string]string{"alice": "correct horse"})
	auth, err := newBcryptAuth(store)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.CORSOrigins = origins
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return NewServer(log, cfg, auth, store, newMetrics(), func() time.Time { return specTime })
}

// TestCORSHeaders checks the CORS headers of every kind of answer: the
// headers named in want must have exactly those values ("" for absent).
func TestCORSHeaders(t *testing.T) {
	const (
		app   = "https://app.example.com"
		other = "https://other.example.com"
		login = `{"username":"alice","password":"correct horse"}`
		wrong = `{"username":"alice","password":"wrong"}`
	)
	preflightVary := "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
	noCORS := map[string]string{"Access-Control-Allow-Origin": "", "Access-Control-Allow-Methods": "", "Access-Control-Allow-Headers": "", "Access-Control-Max-Age": ""}
	with := func(base map[string]string, kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	allowedPreflight := map[string]string{
		"Access-Control-Allow-Origin":  app,
		"Access-Control-Allow-Methods": "POST",
		"Access-Control-Allow-Headers": "authorization,content-type",
		"Access-Control-Max-Age":       "7200",
		"Allow":                        "OPTIONS, POST",
		"Vary":                         preflightVary,
	}
	tests := []struct {
		name             string
		origins          []string
		method, path     string
		origin           string
		acrm, acrh       string
		body             string
		wantStatus       int
		want             map[string]string
		wantBodyContains string
		wantBody         string // exact, when set
	}{
		{name: "preflight from an allowed origin", origins: []string{other, app}, method: "OPTIONS", origin: app, acrm: "POST", acrh: "authorization,content-type",
			wantStatus: 204, want: allowedPreflight},
		{name: "preflight asking for one header", origins: []string{app}, method: "OPTIONS", origin: app, acrm: "POST", acrh: "content-type",
			wantStatus: 204, want: with(allowedPreflight, "Access-Control-Allow-Headers", "content-type")},
		{name: "preflight from another origin", origins: []string{app}, method: "OPTIONS", origin: other, acrm: "POST", acrh: "content-type",
			wantStatus: 403, want: with(noCORS, "Vary", preflightVary),
			wantBody: `{"type":"urn:tokend:problem:forbidden","title":"Forbidden","status":403,"detail":"a page on https://other.example.com may not call tokend: not in CORS_ALLOWED_ORIGINS"}`},
		{name: "preflight for PUT", origins: []string{app}, method: "OPTIONS", origin: app, acrm: "PUT",
			wantStatus: 403, want: with(noCORS, "Vary", preflightVary),
			wantBody: `{"type":"urn:tokend:problem:forbidden","title":"Forbidden","status":403,"detail":"a page may send /token only POST, with no headers but Content-Type and Authorization; this preflight asks for PUT"}`},
		{name: "preflight for another header", origins: []string{app}, method: "OPTIONS", origin: app, acrm: "POST", acrh: "content-type,x-api-key",
			wantStatus: 403, want: with(noCORS, "Vary", preflightVary),
			wantBody: `{"type":"urn:tokend:problem:forbidden","title":"Forbidden","status":403,"detail":"a page may send /token only POST, with no headers but Content-Type and Authorization; this preflight asks for POST with the headers content-type,x-api-key"}`},
		{name: "preflight from the null origin with *", origins: []string{"*"}, method: "OPTIONS", origin: "null", acrm: "POST", acrh: "content-type",
			wantStatus: 204, want: with(noCORS, "Vary", preflightVary)},
		{name: "preflight from any origin with *", origins: []string{"*"}, method: "OPTIONS", origin: other, acrm: "POST", acrh: "content-type",
			wantStatus: 204, want: with(allowedPreflight, "Access-Control-Allow-Origin", "*", "Access-Control-Allow-Headers", "content-type")},
		{name: "preflight to another path fails", origins: []string{app}, method: "OPTIONS", path: "/tokens", origin: app, acrm: "POST",
			wantStatus: 404, wantBodyContains: `"status":404`},
		{name: "token for an allowed origin", origins: []string{app}, method: "POST", origin: app, body: login,
			wantStatus: 200, want: map[string]string{"Access-Control-Allow-Origin": app, "Access-Control-Expose-Headers": "Retry-After", "Vary": "Origin"}, wantBodyContains: `"identity":"alice"`},
		{name: "wrong password: the page can read the problem", origins: []string{app}, method: "POST", origin: app, body: wrong,
			wantStatus: 401, want: map[string]string{"Access-Control-Allow-Origin": app, "Vary": "Origin", "WWW-Authenticate": `Basic realm="tokend"`}, wantBodyContains: `"detail":"the username or password is wrong`},
		{name: "GET /token: the page can read the 405", origins: []string{app}, method: "GET", origin: app,
			wantStatus: 405, want: map[string]string{"Access-Control-Allow-Origin": app, "Vary": "Origin", "Allow": "OPTIONS, POST"}},
		{name: "plain OPTIONS", origins: []string{app}, method: "OPTIONS",
			wantStatus: 204, want: with(noCORS, "Allow", "OPTIONS, POST", "Vary", "Origin")},
		{name: "token for another origin: answered, but not readable", origins: []string{app}, method: "POST", origin: other, body: login,
			wantStatus: 200, want: with(noCORS, "Vary", "Origin", "Access-Control-Expose-Headers", "")},
		{name: "null origin with *", origins: []string{"*"}, method: "POST", origin: "null", body: login,
			wantStatus: 200, want: with(noCORS, "Vary", "Origin")},
		{name: "any origin with *", origins: []string{"*"}, method: "POST", origin: other, body: login,
			wantStatus: 200, want: map[string]string{"Access-Control-Allow-Origin": "*", "Vary": "Origin"}},
		{name: "no Origin: still Vary", origins: []string{app}, method: "GET", path: "/healthz",
			wantStatus: 200, want: with(noCORS, "Vary", "Origin")},
		{name: "404 for an allowed origin", origins: []string{app}, method: "GET", path: "/nope", origin: app,
			wantStatus: 404, want: map[string]string{"Access-Control-Allow-Origin": app, "Vary": "Origin"}},
		{name: "CORS off: no CORS headers", method: "POST", origin: app, body: login,
			wantStatus: 200, want: with(noCORS, "Vary", "Origin")},
		{name: "CORS off: a preflight says so", method: "OPTIONS", origin: app, acrm: "POST",
			wantStatus: 403, want: with(noCORS, "Vary", preflightVary),
			wantBody: `{"type":"urn:tokend:problem:forbidden","title":"Forbidden","status":403,"detail":"a page on https://app.example.com may not call tokend: not in CORS_ALLOWED_ORIGINS, which is empty: CORS is not configured on this server"}`},
		{name: "CORS off: a plain OPTIONS is not allowed", method: "OPTIONS",
			wantStatus: 405, want: with(noCORS, "Vary", "Origin", "Allow", "POST")},
		{name: "CORS off: 405 names POST only", method: "GET",
			wantStatus: 405, want: with(noCORS, "Vary", "Origin", "Allow", "POST")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newCORSTestServer(t, tt.origins)
			path := tt.path
			if path == "" {
				path = "/token"
			}
			req := httptest.NewRequest(tt.method, path, strings.NewReader(tt.body))
			if tt.body != "" {
				req.Header.Set("Content-Type", jsonCT)
			}
			for k, v := range map[string]string{"Origin": tt.origin, "Access-Control-Request-Method": tt.acrm, "Access-Control-Request-Headers": tt.acrh} {
				if v != "" {
					req.Header.Set(k, v)
				}
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d: %s", rec.Code, tt.wantStatus, rec.Body)
			}
			for k, v := range tt.want {
				if got := strings.Join(rec.Header().Values(k), " | "); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			// Listed origins may send the session cookie; with * none may.
			wantCreds := ""
			if rec.Header().Get("Access-Control-Allow-Origin") != "" && !corsAllowsAll(tt.origins) {
				wantCreds = "true"
			}
			if got := strings.Join(rec.Header().Values("Access-Control-Allow-Credentials"), " | "); got != wantCreds {
				t.Errorf("Access-Control-Allow-Credentials = %q, want %q", got, wantCreds)
			}
			if tt.wantBody != "" && strings.TrimSpace(rec.Body.String()) != tt.wantBody {
				t.Errorf("body = %s\nwant   %s", rec.Body, tt.wantBody)
			}
			if !strings.Contains(rec.Body.String(), tt.wantBodyContains) {
				t.Errorf("body = %s, want it to contain %s", rec.Body, tt.wantBodyContains)
			}
		})
	}
}

// TestCORSRefusalsLogged: a request from an origin that is not allowed is
// logged once a minute per origin, at most corsLogsPerMinute origins a
// minute, then a count of the rest; tokend's own origin and allowed ones
// are not logged.
func TestCORSRefusalsLogged(t *testing.T) {
	var logs syncBuffer
	clock := specTime
	refusals := newCORSRefusals(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}})), func() time.Time { return clock })
	h := allowCORS([]string{"https://app.example.com"}, refusals)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	send := func(origin, host string) {
		req := httptest.NewRequest("POST", "/token", nil)
		req.Host = host
		req.Header.Set("Origin", origin)
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	send("https://app.example.com", "tokend.example.com")    // allowed
	send("https://tokend.example.com", "tokend.example.com") // its own page
	send("https://evil.example", "tokend.example.com")
	send("https://evil.example", "tokend.example.com") // again this minute
	send("null", "tokend.example.com")
	for i := range 12 {
		send(fmt.Sprintf("https://x%d.example", i), "tokend.example.com")
	}
	clock = clock.Add(time.Minute)
	send("https://evil.example", "tokend.example.com") // a new minute
	want := `level=WARN msg="request from origin https://evil.example refused: not in CORS_ALLOWED_ORIGINS"
level=WARN msg="request from origin null refused: the null origin (sandboxed iframes, file: pages, redirects) is never allowed"
level=WARN msg="request from origin https://x0.example refused: not in CORS_ALLOWED_ORIGINS"
`
	for i := 1; i < 8; i++ {
		want += fmt.Sprintf("level=WARN msg=\"request from origin https://x%d.example refused: not in CORS_ALLOWED_ORIGINS\"\n", i)
	}
	want += `level=WARN msg="requests from 4 more origins not in CORS_ALLOWED_ORIGINS were refused in the last minute, without a line each"
level=WARN msg="request from origin https://evil.example refused: not in CORS_ALLOWED_ORIGINS"
`
	if logs.String() != want {
		t.Errorf("log:\n%s\nwant:\n%s", logs.String(), want)
	}
}

// TestCORSRefusalWithoutAllowlist: with CORS_ALLOWED_ORIGINS empty, the
// log says CORS is not configured.
func TestCORSRefusalWithoutAllowlist(t *testing.T) {
	var logs syncBuffer
	refusals := newCORSRefusals(slog.New(slog.NewJSONHandler(&logs, nil)), func() time.Time { return specTime })
	h := allowCORS(nil, refusals)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	req := httptest.NewRequest("OPTIONS", "/token", nil)
	req.Header.Set("Origin", "http://localhost:5173")
	req.Header.Set("Access-Control-Request-Method", "POST")
	h.ServeHTTP(httptest.NewRecorder(), req)
	const want = `"msg":"request from origin http://localhost:5173 refused: not in CORS_ALLOWED_ORIGINS, which is empty: CORS is not configured on this server"`
	if !strings.Contains(logs.String(), want) {
		t.Errorf("log:\n%s\nwant %s", logs.String(), want)
	}
}

// TestCORSRefusalsUnderACrowd: 100 requests at once from 100 origins log
// exactly corsLogsPerMinute lines, and the rest are counted for the next.
func TestCORSRefusalsUnderACrowd(t *testing.T) {
	var logs syncBuffer
	var mu sync.Mutex
	clock := specTime
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	refusals := newCORSRefusals(slog.New(slog.NewTextHandler(&logs, nil)), now)
	h := allowCORS([]string{"https://app.example.com"}, refusals)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			req := httptest.NewRequest("POST", "/token", nil)
			req.Header.Set("Origin", fmt.Sprintf("https://c%d.example", i))
			h.ServeHTTP(httptest.NewRecorder(), req)
		})
	}
	wg.Wait()
	if n := strings.Count(logs.String(), "refused: not in CORS_ALLOWED_ORIGINS\""); n != corsLogsPerMinute {
		t.Errorf("%d lines, want %d:\n%s", n, corsLogsPerMinute, logs.String())
	}
	mu.Lock()
	clock = clock.Add(time.Minute)
	mu.Unlock()
	refusals.note("https://late.example", []string{"https://app.example.com"})
	if want := "requests from 90 more origins not in CORS_ALLOWED_ORIGINS were refused in the last minute, without a line each"; !strings.Contains(logs.String(), want) {
		t.Errorf("no %q in:\n%s", want, logs.String())
	}
}
