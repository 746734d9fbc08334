package main

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"strings"
)

// demoHTML is the demo page: one file with its script and style inline,
// so the binary serves it with nothing else to fetch.
//
//go:embed static/demo.html
var demoHTML string

// devBanner replaces devBannerMarker in development mode, so that nobody
// takes the page's tokens for real ones.
const (
	devBannerMarker = "<!-- dev-banner -->"
	// With OIDC on, oidcField replaces oidcFieldMarker: an ID token may be
	// pasted instead of a username and password.
	oidcFieldMarker = "<!-- oidc-field -->"
	oidcField       = `<label for="id_token">or an ID token</label>` +
		`<textarea id="id_token" name="id_token" rows="3" autocomplete="off" spellcheck="false" placeholder="paste your identity provider's ID token (eyJ…)"></textarea>`
	devBanner = `<p class="banner" id="dev-banner"><strong>Development mode.</strong> Tokens are signed with FAKE credentials: Twilio will reject them. Log in as <code>demo</code> with the password tokend printed when it started.</p>`
)

// handleDemoPage serves the demo page, the page a new user opens to see
// tokend work from a browser.
func handleDemoPage(log *slog.Logger, dev, oidc bool) http.Handler {
	page := demoHTML
	if dev {
		page = strings.Replace(page, devBannerMarker, devBanner, 1)
	}
	if oidc {
		page = strings.Replace(page, oidcFieldMarker, oidcField, 1)
	}
	csp := demoCSP(demoHTML)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, r, log, Errorf(EMETHOD, "%s is not allowed here: the demo page is GET /; tokens are issued by POST /token", r.Method))
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", csp)
		h.Set("Cache-Control", "no-cache")
		io.WriteString(w, page)
	})
}

// demoCSP allows the page its own inline script and style, by hash, and
// nothing else: no other script, style, font or frame, and requests only
// to tokend itself. Hashes rather than 'unsafe-inline' mean that an
// injected script would not run.
func demoCSP(page string) string {
	return "default-src 'none'; " +
		"script-src " + inlineHashes(page, "script") + "; " +
		"style-src " + inlineHashes(page, "style") + "; " +
		"connect-src 'self'; img-src data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
}

// inlineHashes returns the CSP source expression for the contents of every
// <tag>...</tag> element in page, as browsers hash them.
func inlineHashes(page, tag string) string {
	open, end := "<"+tag+">", "</"+tag+">"
	var sources []string
	for {
		_, rest, ok := strings.Cut(page, open)
		if !ok {
			break
		}
		body, after, ok := strings.Cut(rest, end)
		if !ok {
			break
		}
		sum := sha256.Sum256([]byte(body))
		sources = append(sources, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
		page = after
	}
	if len(sources) == 0 {
		return "'none'"
	}
	return strings.Join(sources, " ")
}
