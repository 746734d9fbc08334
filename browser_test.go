package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath is where Debian's chromium package installs the browser.
const chromiumPath = "/usr/bin/chromium"

// newBrowser starts a headless Chromium for the test and stops it when the
// test ends. Without Chromium the test skips, except in CI, where a missing
// browser is a broken CI machine.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no browser at %s: install Debian's chromium package (.ci/run does)", chromiumPath)
		}
		t.Skipf("no browser at %s: install Debian's chromium package (apt-get install chromium) to run the browser tests", chromiumPath)
	}
	// Made first, so it is removed after the browser has exited.
	profile := t.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox, // the tests may run as root, where Chromium's sandbox refuses to start
		chromedp.DisableGPU,
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(900, 1100),
		// Keep the browser off the network but for the pages under test.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
	)
	// The browser lives no longer than this, whatever happens in the test.
	life, endLife := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(endLife)
	allocCtx, stopAlloc := chromedp.NewExecAllocator(life, opts...)
	t.Cleanup(stopAlloc)
	browser, stopBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(stopBrowser)
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	return browser
}

// newTab opens a tab; every action in it fails after a minute.
func newTab(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	tab, closeTab := chromedp.NewContext(browser)
	t.Cleanup(closeTab)
	// chromedp ties a tab to the context of its first action: open it
	// without a deadline, then give the actions one.
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	ctx, cancel := context.WithTimeout(tab, time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// appPage is a browser app on another origin than tokend: it asks tokend
// for a token as its query string says, and writes the outcome into the
// page, where a failed fetch shows as the error's name (TypeError is how a
// browser reports a response that CORS does not let the page read).
const appPage = `<!doctype html>
<title>app</title>
<pre id="result">pending</pre>
<script>
const q = new URLSearchParams(location.search);
const out = document.getElementById('result');
(async () => {
  const init = { method: 'POST', credentials: q.get('credentials') || 'same-origin' };
  switch (q.get('send')) {
  case 'renew': // the session cookie alone
    init.headers = { 'Content-Type': 'application/json' };
    init.body = '{}';
    break;
  case 'renew-form': // the cookie with a form: no preflight
    init.body = new URLSearchParams({ grants: 'video' });
    break;
  case 'json':
    init.headers = { 'Content-Type': 'application/json' };
    init.body = JSON.stringify({ username: q.get('user'), password: q.get('pass') });
    break;
  case 'form': // a "simple" request: no preflight, the browser only hides the answer
    init.body = new URLSearchParams({ username: q.get('user'), password: q.get('pass') });
    break;
  case 'basic':
    init.headers = { 'Authorization': 'Basic ' + btoa(q.get('user') + ':' + q.get('pass')) };
    break;
  }
  try {
    const resp = await fetch(q.get('tokend') + '/token', init);
    const body = await resp.json();
    out.textContent = resp.status + ' ' + (resp.ok ? body.identity : body.detail);
  } catch (e) {
    out.textContent = e.name;
    out.title = e.message;
  }
  out.dataset.done = 'yes';
})();
</script>`

// serveApp serves page (appPage, zoomAppPage) from a new origin,
// http://127.0.0.1:PORT.
func serveApp(t *testing.T, page string) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(page))
	}))
	srv.Config.ReadHeaderTimeout = 5 * time.Second
	srv.Config.WriteTimeout = 10 * time.Second
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestBrowserCORS: in a real Chromium, a page from an allowed origin gets
// a token from tokend, and the browser blocks a page from any other origin.
func TestBrowserCORS(t *testing.T) {
	browser := newBrowser(t)
	allowedApp, otherApp := serveApp(t, appPage), serveApp(t, appPage)

	env := testEnv(t)
	env["CORS_ALLOWED_ORIGINS"] = "https://app.example.com, " + allowedApp
	var stdout, stderr syncBuffer
	errc := startRun(t, []string{"serve", "--env-file", filepath.Join(t.TempDir(), ".env")}, env, &stdout, &stderr)
	tokend := "http://" + env["LISTEN_ADDR"]
	waitReady(t, tokend, errc)

	const unauthorized = "401 the username or password is wrong, or none was sent; send them as JSON {\"username\", \"password\"}, a form, or HTTP Basic auth"
	tests := []struct {
		name, app, send, pass, want string
	}{
		{"allowed origin, JSON body (preflighted)", allowedApp, "json", "alice password", "200 alice"},
		{"allowed origin, Basic auth (preflighted)", allowedApp, "basic", "alice password", "200 alice"},
		{"allowed origin, form body (no preflight)", allowedApp, "form", "alice password", "200 alice"},
		{"allowed origin reads the problem of a wrong password", allowedApp, "json", "wrong", unauthorized},
		{"other origin: the preflight fails", otherApp, "json", "alice password", "TypeError"},
		{"other origin: the answer is hidden", otherApp, "form", "alice password", "TypeError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := newTab(t, browser)
			q := url.Values{"tokend": {tokend}, "send": {tt.send}, "user": {"alice"}, "pass": {tt.pass}}
			err := chromedp.Do(ctx,
				chromedp.Navigate(tt.app+"/?"+q.Encode()),
				chromedp.WaitReady(chromedp.CSS(`#result[data-done]`)),
			)
			if err != nil {
				t.Fatal(err)
			}
			got, detail := text(t, ctx, "#result"), eval[string](t, ctx, `document.getElementById('result').title`)
			if got != tt.want {
				t.Errorf("the page shows %q (%s), want %q", got, detail, tt.want)
			}
		})
	}
}

// TestBrowserDemoPage walks the demo page as a new user does after
// `make run`: a wrong password, a login that shows the decoded token, and
// a short-lived token that the page renews before it expires.
func TestBrowserDemoPage(t *testing.T) {
	browser := newBrowser(t)
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	var stdout, stderr syncBuffer
	errc := startRun(t, []string{"serve", "--dev", "--env-file", filepath.Join(t.TempDir(), ".env")},
		map[string]string{"LISTEN_ADDR": ":" + port}, &stdout, &stderr)
	base := "http://127.0.0.1:" + port
	waitReady(t, base, errc)
	m := regexp.MustCompile(`Password:  (\S+)`).FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("no password in the banner:\n%s", stdout.String())
	}
	password := m[1]
	ctx := newTab(t, browser)

	steps(t, ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#login`)),
	)
	if banner := text(t, ctx, "#dev-banner"); !strings.Contains(banner, "FAKE credentials") {
		t.Errorf("dev banner = %q", banner)
	}
	// The inline style applies only if its CSP hash matches.
	if color := eval[string](t, ctx, `getComputedStyle(document.getElementById('dev-banner')).backgroundColor`); color != "rgb(255, 241, 194)" {
		t.Errorf("the banner's background is %q: the page's style did not apply", color)
	}

	steps(t, ctx,
		chromedp.SendKeys(chromedp.CSS(`#username`), "demo"),
		chromedp.SendKeys(chromedp.CSS(`#password`), "wrong"),
		chromedp.Click(chromedp.CSS(`#submit`)),
		chromedp.WaitVisible(chromedp.CSS(`#error`)),
	)
	if got, want := text(t, ctx, "#error"), "Wrong username or password."; got != want {
		t.Errorf("a wrong password shows %q, want %q", got, want)
	}

	eval[string](t, ctx, `document.getElementById('password').value = ''`)
	steps(t, ctx,
		chromedp.SendKeys(chromedp.CSS(`#password`), password),
		chromedp.Click(chromedp.CSS(`#submit`)),
		chromedp.WaitVisible(chromedp.CSS(`#session`)),
	)
	if got := text(t, ctx, "#identity"); got != "demo" {
		t.Errorf("identity = %q", got)
	}
	if got := canonicalJSON(t, text(t, ctx, "#header")); got != `{"alg":"HS256","cty":"twilio-fpa;v=1","typ":"JWT"}` {
		t.Errorf("header = %s", got)
	}
	const devGrants = `{"chat":{"service_sid":"ISdeadbeefdeadbeefdeadbeefdeadbee1"},"data_sync":{"service_sid":"ISdeadbeefdeadbeefdeadbeefdeadbee2"},"identity":"demo","video":{},"voice":{"incoming":{"allow":true},"outgoing":{"application_sid":"APdeadbeefdeadbeefdeadbeefdeadbeef"}}}`
	if got := canonicalJSON(t, text(t, ctx, "#grants-json")); got != devGrants {
		t.Errorf("grants = %s\nwant     %s", got, devGrants)
	}
	if claims := text(t, ctx, "#claims"); claimTimes(t, claims).Exp-claimTimes(t, claims).Iat != 3600 {
		t.Errorf("claims = %s: want the development TTL, 3600 s", claims)
	}
	if countdown := text(t, ctx, "#countdown"); !regexp.MustCompile(`^(59|60):[0-5][0-9]$`).MatchString(countdown) {
		t.Errorf("countdown = %q, want about an hour", countdown)
	}
	// The page keeps no password: not in the form, not in what it sends to
	// renew, and the session cookie is out of the page's reach.
	if kept := eval[bool](t, ctx, `document.getElementById('password').value !== '' || JSON.stringify(wanted).includes(`+jsString(password)+`) || document.cookie !== ''`); kept {
		t.Errorf("the page keeps the password or can read the cookie (wanted = %s)", eval[string](t, ctx, `JSON.stringify(wanted)`))
	}
	if ends := text(t, ctx, "#session-ends"); !strings.Contains(ends, "if not renewed before") {
		t.Errorf("session ends = %q, want the end and the idle deadline", ends)
	}
	if path := os.Getenv("TOKEND_SCREENSHOT"); path != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// A ten-second token: the page hears tokenWillExpire and renews the
	// token with updateToken. When the renewal lands depends on how busy
	// the machine is, so the test checks that it happens and what it
	// returns, not that it beats the clock.
	steps(t, ctx,
		chromedp.Click(chromedp.CSS(`#logout`)),
		chromedp.WaitVisible(chromedp.CSS(`#login`)),
		chromedp.SendKeys(chromedp.CSS(`#password`), password),
		chromedp.SendKeys(chromedp.CSS(`#ttl`), "10"),
		chromedp.Click(chromedp.CSS(`#submit`)),
		chromedp.WaitVisible(chromedp.CSS(`#session`)),
	)
	claims := text(t, ctx, "#claims")
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById('refreshes').textContent === 'once'`, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("the token was not renewed: %v (events: %s)", err, text(t, ctx, "#events"))
	}
	renewedClaims, events := text(t, ctx, "#claims"), text(t, ctx, "#events")
	first, renewed := claimTimes(t, claims), claimTimes(t, renewedClaims)
	if first.Exp-first.Iat != 10 || renewed.Exp-renewed.Iat != 10 || renewed.Iat <= first.Iat {
		t.Errorf("first token %s, renewed %s: want a second, later 10-second token", claims, renewedClaims)
	}
	for _, want := range []string{"logged in as demo", "tokenWillExpire: fetching a new token", "updateToken: renewed, identity demo"} {
		if !strings.Contains(events, want) {
			t.Errorf("events lack %q:\n%s", want, events)
		}
	}
	if strings.Index(events, "tokenWillExpire") > strings.Index(events, "updateToken") || !eval[bool](t, ctx, `document.getElementById('refresh-error').hidden`) {
		t.Errorf("the renewal did not follow tokenWillExpire, or failed (%s):\n%s", eval[string](t, ctx, `document.getElementById('refresh-error').textContent`), events)
	}

	// Log out ends the session on the server: a renewal with whatever
	// cookie the browser still had is refused.
	steps(t, ctx,
		chromedp.Click(chromedp.CSS(`#logout`)),
		chromedp.WaitVisible(chromedp.CSS(`#login`)),
	)
	const renew = `fetch('token', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{}'}).then((r) => r.status)`
	if status, err := chromedp.Run(ctx, chromedp.Evaluate[int](renew, chromedp.EvalAwaitPromise)); err != nil || status != 401 {
		t.Errorf("a renewal after logging out: %d, %v; want 401", status, err)
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestBrowserSessionCORS: in a real Chromium, a page of an allowed origin
// on the same site (another port of 127.0.0.1) logs in, then renews with
// the session cookie alone (credentials: 'include'); a page of an origin
// not listed can use the cookie in no way, preflighted or not.
func TestBrowserSessionCORS(t *testing.T) {
	browser := newBrowser(t)
	allowedApp, otherApp := serveApp(t, appPage), serveApp(t, appPage)
	env, metricsAddr := testEnv(t), freeAddr(t)
	env["METRICS_ADDR"], env["CORS_ALLOWED_ORIGINS"] = metricsAddr, allowedApp
	var stdout, stderr syncBuffer
	errc := startRun(t, []string{"serve", "--env-file", filepath.Join(t.TempDir(), ".env")}, env, &stdout, &stderr)
	tokend := "http://" + env["LISTEN_ADDR"]
	waitReady(t, tokend, errc)
	renewed := func() string {
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return regexp.MustCompile(`(?m)^tokend_sessions_renewed_total (\d+)$`).FindStringSubmatch(string(body))[1]
	}

	ctx := newTab(t, browser)
	load := func(app string, q url.Values) string {
		t.Helper()
		q.Set("tokend", tokend)
		steps(t, ctx,
			chromedp.Navigate(app+"/?"+q.Encode()),
			chromedp.WaitReady(chromedp.CSS(`#result[data-done]`)),
		)
		return text(t, ctx, "#result")
	}
	for _, step := range []struct {
		name, app string
		q         url.Values
		want      string
		renewed   string
	}{
		{"no session yet", allowedApp, url.Values{"send": {"renew"}, "credentials": {"include"}}, "401 " + "the username or password is wrong, or none was sent; send them as JSON {\"username\", \"password\"}, a form, or HTTP Basic auth", "0"},
		{"login", allowedApp, url.Values{"send": {"json"}, "credentials": {"include"}, "user": {"alice"}, "pass": {"alice password"}}, "200 alice", "0"},
		{"renew with the cookie alone", allowedApp, url.Values{"send": {"renew"}, "credentials": {"include"}}, "200 alice", "1"},
		{"renew without sending the cookie", allowedApp, url.Values{"send": {"renew"}, "credentials": {"omit"}}, "401 " + "the username or password is wrong, or none was sent; send them as JSON {\"username\", \"password\"}, a form, or HTTP Basic auth", "1"},
		{"other origin: the preflight fails", otherApp, url.Values{"send": {"renew"}, "credentials": {"include"}}, "TypeError", "1"},
		{"other origin: a form is refused", otherApp, url.Values{"send": {"renew-form"}, "credentials": {"include"}}, "TypeError", "1"},
		{"allowed origin: a form is refused too", allowedApp, url.Values{"send": {"renew-form"}, "credentials": {"include"}}, "403 a request that uses the session cookie must be sent with Content-Type: application/json (a cross-site form cannot send it)", "1"},
		{"still renews", allowedApp, url.Values{"send": {"renew"}, "credentials": {"include"}}, "200 alice", "2"},
	} {
		if got := load(step.app, step.q); got != step.want {
			t.Errorf("%s: the page shows %q, want %q", step.name, got, step.want)
		}
		if got := renewed(); got != step.renewed {
			t.Errorf("%s: %s renewals, want %s", step.name, got, step.renewed)
		}
	}
}

// steps runs actions in the tab and stops the test at the first failure.
func steps(t *testing.T, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatal(err)
	}
}

// text is the visible text of the element that selector finds.
func text(t *testing.T, ctx context.Context, selector string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(selector)))
	if err != nil {
		t.Fatalf("text of %s: %v", selector, err)
	}
	return s
}

// eval is the value of a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// canonicalJSON re-encodes s with sorted keys and no spaces.
func canonicalJSON(t *testing.T, s string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%q is not JSON: %v", s, err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

type times struct{ Iat, Exp int64 }

func claimTimes(t *testing.T, s string) times {
	t.Helper()
	var c times
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		t.Fatalf("claims %q: %v", s, err)
	}
	return c
}

// TestBrowserDemoPageIDToken: with OIDC on, the demo page takes a pasted
// ID token instead of a password, and shows a refusal's detail.
func TestBrowserDemoPageIDToken(t *testing.T) {
	browser := newBrowser(t)
	idp := newTestIdP(t)
	s := newOIDCServer(t, idp, nil, true)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	ctx := newTab(t, browser)
	steps(t, ctx,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#id_token`)),
	)
	expired := idp.claims(s.clock.now(), "user_42")
	expired["exp"] = s.clock.now().Add(-time.Hour).Unix()
	bad := signIDToken(t, idp.key("key-1"), "key-1", expired)
	eval[string](t, ctx, `document.getElementById('id_token').value = `+strconvQuote(bad)+`; ''`)
	steps(t, ctx,
		chromedp.Click(chromedp.CSS(`#submit`)),
		chromedp.WaitVisible(chromedp.CSS(`#error`)),
	)
	if got := text(t, ctx, "#error"); !strings.HasPrefix(got, "the ID token expired at ") {
		t.Errorf("an expired ID token shows %q", got)
	}
	good := signIDToken(t, idp.key("key-1"), "key-1", idp.claims(s.clock.now(), "user_42"))
	eval[string](t, ctx, `document.getElementById('id_token').value = `+strconvQuote(good)+`; ''`)
	steps(t, ctx,
		chromedp.Click(chromedp.CSS(`#submit`)),
		chromedp.WaitVisible(chromedp.CSS(`#session`)),
	)
	if got := text(t, ctx, "#identity"); got != "user_42" {
		t.Errorf("identity = %q", got)
	}
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
