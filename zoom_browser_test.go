package main

import (
	"net/url"
	"testing"

	"github.com/chromedp/chromedp"
)

// zoomAppPage asks tokend for a Zoom token as the README's snippet does
// (Basic auth, the sample's camelCase body) and writes what the page
// would pass to client.join, or the problem, or the fetch error's name.
const zoomAppPage = `<!doctype html>
<title>zoom app</title>
<pre id="result">pending</pre>
<script>
const q = new URLSearchParams(location.search);
const out = document.getElementById('result');
(async () => {
  try {
    const r = await fetch(q.get('tokend') + '/zoom/token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: 'Basic ' + btoa(q.get('user') + ':' + q.get('pass')) },
      body: JSON.stringify({ sessionName: q.get('session'), role: Number(q.get('role')) }),
    });
    const b = await r.json();
    out.textContent = r.ok ? r.status + ' ' + b.session + ' ' + b.role_type + ' ' + (b.signature === b.token) : r.status + ' ' + b.detail;
  } catch (e) {
    out.textContent = e.name;
  }
  out.dataset.done = 'yes';
})();
</script>`

// TestBrowserZoom: in a real Chromium, a page on an allowed origin gets a
// Zoom token with the README's snippet and reads a 403's detail; a page
// on another origin is blocked by the browser.
func TestBrowserZoom(t *testing.T) {
	browser := newBrowser(t)
	allowedApp, otherApp := serveApp(t, zoomAppPage), serveApp(t, zoomAppPage)
	env := testEnv(t)
	env["CORS_ALLOWED_ORIGINS"] = allowedApp
	env["ZOOM_VIDEO_SDK_KEY"], env["ZOOM_VIDEO_SDK_SECRET"], env["ZOOM_SESSIONS"] = testZoomKey, testZoomSecret, "standup"
	var stdout, stderr syncBuffer
	errc := startRun(t, []string{"serve", "--env-file", "testdata/zoom/no.env"}, env, &stdout, &stderr)
	tokend := "http://" + env["LISTEN_ADDR"]
	waitReady(t, tokend, errc)

	for _, tt := range []struct{ name, app, role, want string }{
		{"allowed origin", allowedApp, "0", "200 standup 0 true"},
		{"allowed origin reads why it may not host", allowedApp, "1",
			`403 role 1 (host) is only for the identities in ZOOM_HOSTS, and "alice" is not one of them; ask for role 0 (participant), or ask the operator to add you`},
		{"other origin", otherApp, "0", "TypeError"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := newTab(t, browser)
			q := url.Values{"tokend": {tokend}, "user": {"alice"}, "pass": {"alice password"}, "session": {"standup"}, "role": {tt.role}}
			if err := chromedp.Do(ctx, chromedp.Navigate(tt.app+"/?"+q.Encode()), chromedp.WaitReady(chromedp.CSS(`#result[data-done]`))); err != nil {
				t.Fatal(err)
			}
			if got := text(t, ctx, "#result"); got != tt.want {
				t.Errorf("the page shows %q, want %q", got, tt.want)
			}
		})
	}
}
