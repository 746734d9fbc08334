package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/cors"
)

// corsMaxAge is how long, in seconds, a browser may reuse a preflight
// answer: Chromium's own ceiling. A long cache costs nothing in safety,
// because every actual answer still needs its own Access-Control-Allow-Origin;
// removing an origin from the list takes effect at once.
const corsMaxAge = 7200

// allOrigins is the one value of CORS_ALLOWED_ORIGINS that is not an origin.
const allOrigins = "*"

// allowCORS lets the browser pages of the allowed origins call tokend.
// Listed origins may send the session cookie (Access-Control-Allow-Credentials:
// true); "*" never may, as the CORS standard forbids credentials with it.
//
// Every answer carries Vary: Origin, whatever the setting, so a cache in
// front of tokend never hands one origin's answer to another. Preflights
// pass through to the routes, so only /token answers them with 204; the
// library has already set the CORS headers for an allowed origin by then.
//
// A request from an origin that is not allowed (other than tokend's own) is
// noted in refusals, which logs it for the operator; nil logs nothing.
func allowCORS(origins []string, refusals *corsRefusals) func(http.Handler) http.Handler {
	opt := cors.Options{
		AllowedMethods: []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodDelete},
		AllowedHeaders: []string{"Content-Type", "Authorization"},
		// A page must be able to read how long a 429 or 503 asks it
		// to wait; Retry-After is not a CORS-safelisted header.
		ExposedHeaders:     []string{"Retry-After"},
		MaxAge:             corsMaxAge,
		OptionsPassthrough: true,
	}
	switch {
	case len(origins) == 0:
		// rs/cors reads an empty list as "every origin": say "none" instead.
		opt.AllowOriginFunc = func(string) bool { return false }
	case corsAllowsAll(origins):
		opt.AllowedOrigins = origins
	default:
		opt.AllowedOrigins = origins
		opt.AllowCredentials = true
	}
	c := cors.New(opt)
	return func(next http.Handler) http.Handler {
		h := c.Handler(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			origin := r.Header.Get("Origin") // read once: every request passes here
			if origin != "" && refusals != nil &&
				(origin == "null" || !c.OriginAllowed(r)) && !sameOrigin(origin, r) {
				refusals.note(origin, origins)
			}
			if origin == "null" {
				r = hideNullOrigin(r)
			}
			h.ServeHTTP(w, r)
		})
	}
}

// sameOrigin reports whether origin is the host the request was sent to:
// a page tokend serves itself (the demo page) sends its own origin with a
// POST, and needs no CORS.
func sameOrigin(origin string, r *http.Request) bool {
	_, host, ok := strings.Cut(origin, "://")
	return ok && strings.EqualFold(host, r.Host)
}

// corsRefusal says why a browser page on origin may not call tokend, for
// the log and for the answer to its preflight.
func corsRefusal(origin string, origins []string) string {
	switch {
	case origin == "null":
		return "the null origin (sandboxed iframes, file: pages, redirects) is never allowed"
	case len(origins) == 0:
		return "not in CORS_ALLOWED_ORIGINS, which is empty: CORS is not configured on this server"
	}
	return "not in CORS_ALLOWED_ORIGINS"
}

// corsPreflightProblem is the answer to a preflight the CORS layer did not
// allow: a 403 whose detail, shown in the browser's network panel, says
// why, instead of a 204 without CORS headers that says nothing. The CORS
// layer has set Access-Control-Allow-Origin on w when it allowed it.
func corsPreflightProblem(w http.ResponseWriter, r *http.Request, origins []string) error {
	origin := r.Header.Get("Origin")
	if r.Method != http.MethodOptions || origin == "" || r.Header.Get("Access-Control-Request-Method") == "" || w.Header().Get("Access-Control-Allow-Origin") != "" {
		return nil // not a preflight, or an allowed one
	}
	allowedOrigin := origin != "null" && (corsAllowsAll(origins) || slices.Contains(origins, strings.ToLower(origin)))
	if allowedOrigin {
		asks := clip(r.Header.Get("Access-Control-Request-Method"))
		if h := r.Header.Get("Access-Control-Request-Headers"); h != "" {
			asks += " with the headers " + clip(h)
		}
		return Errorf(EFORBIDDEN, "a page may send /token only POST, with no headers but Content-Type and Authorization; this preflight asks for %s", asks)
	}
	return Errorf(EFORBIDDEN, "a page on %s may not call tokend: %s", clip(origin), corsRefusal(origin, origins))
}

// clip shortens a value a client sent, for a message or the log.
func clip(s string) string {
	const most = 200
	if len(s) > most {
		return s[:most] + "…"
	}
	return s
}

// corsRefusals logs requests from origins that are not allowed, so that an
// operator sees why a browser app gets "Failed to fetch": each origin at
// most once a minute, and at most corsLogsPerMinute origins a minute, so
// a client sending random origins cannot flood the log.
type corsRefusals struct {
	log        *slog.Logger
	now        func() time.Time
	mu         sync.Mutex
	window     time.Time       // when the current minute began
	logged     map[string]bool // origins logged in it
	suppressed int             // refusals not logged in it, past the cap
}

const corsLogsPerMinute = 10

func newCORSRefusals(log *slog.Logger, now func() time.Time) *corsRefusals {
	return &corsRefusals{log: log, now: now, logged: map[string]bool{}}
}

// note logs that a request from origin was refused, unless it was already
// logged this minute or the minute's lines are used up.
func (c *corsRefusals) note(origin string, origins []string) {
	origin = clip(origin)
	c.mu.Lock()
	now := c.now()
	suppressed := 0
	if now.Sub(c.window) >= time.Minute {
		suppressed = c.suppressed
		c.window, c.logged, c.suppressed = now, map[string]bool{}, 0
	}
	log := !c.logged[origin] && len(c.logged) < corsLogsPerMinute
	switch {
	case log:
		c.logged[origin] = true
	case !c.logged[origin]:
		c.suppressed++
	}
	c.mu.Unlock()
	if suppressed > 0 {
		c.log.Warn(fmt.Sprintf("requests from %d more origins not in CORS_ALLOWED_ORIGINS were refused in the last minute, without a line each", suppressed))
	}
	if log {
		c.log.Warn(fmt.Sprintf("request from origin %s refused: %s", origin, corsRefusal(origin, origins)))
	}
}

// hideNullOrigin returns r, sent with Origin: null, without it, to hide the
// "null" origin from the CORS layer, so even CORS_ALLOWED_ORIGINS=* never
// lets it read an answer: sandboxed iframes, file: pages and cross-origin
// redirects all send it, so trusting it trusts every one of them.
//
// The request remembers that it came from the null origin (sentNullOrigin),
// so the session cookie is refused to it rather than taken for same-origin.
func hideNullOrigin(r *http.Request) *http.Request {
	r = r.Clone(context.WithValue(r.Context(), nullOriginKey{}, true))
	r.Header.Del("Origin")
	return r
}

type nullOriginKey struct{}

// sentNullOrigin reports whether the request came with Origin: null.
func sentNullOrigin(r *http.Request) bool {
	null, _ := r.Context().Value(nullOriginKey{}).(bool)
	return null
}

// corsAllowsAll reports whether origins is the explicit "*".
func corsAllowsAll(origins []string) bool {
	return len(origins) == 1 && origins[0] == allOrigins
}

// origins reads a comma-separated list of exact origins, or "*" alone, and
// returns them as browsers write them in the Origin header.
func (s *settings) origins(key string) []string {
	raw := s.str(key, "")
	if raw == "" {
		return nil
	}
	var list []string
	seen := map[string]bool{}
	for _, item := range strings.Split(raw, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		origin, err := parseOrigin(item)
		if err != nil {
			s.problemf("%s: %q %v", key, item, err)
			continue
		}
		if !seen[origin] {
			seen[origin] = true
			list = append(list, origin)
		}
	}
	if seen[allOrigins] && len(seen) > 1 {
		s.problemf("%s is %q: * allows every origin, so list it alone or not at all", key, raw)
	}
	return list
}

// parseOrigin checks that s is exactly an origin, scheme://host[:port], in
// the form a browser sends it; an entry with a path, a default port or a
// wildcard would silently never match, so each is refused with the fix.
func parseOrigin(s string) (string, error) {
	switch {
	case s == allOrigins:
		return s, nil
	case strings.EqualFold(s, "null"):
		return "", fmt.Errorf("is never allowed: sandboxed iframes, file: pages and redirected requests all send the null origin")
	case strings.Contains(s, "*"):
		return "", fmt.Errorf("has a wildcard: list each origin exactly, or use * alone to allow every origin")
	}
	const shape = "an origin is scheme://host[:port], such as https://app.example.com"
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || u.Host == "" {
		return "", fmt.Errorf("is not an origin: %s", shape)
	}
	scheme := strings.ToLower(u.Scheme)
	switch {
	case scheme != "http" && scheme != "https":
		return "", fmt.Errorf("has the scheme %s: browser pages have http or https origins", u.Scheme)
	case u.User != nil:
		return "", fmt.Errorf("has a user name: %s", shape)
	case u.Path != "" || u.RawPath != "":
		return "", fmt.Errorf("has a path (%s): %s; drop it", u.EscapedPath(), shape)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.HasSuffix(s, "#"):
		return "", fmt.Errorf("has a query or fragment: %s", shape)
	case strings.HasSuffix(u.Host, ":"):
		return "", fmt.Errorf("has an empty port: %s", shape)
	}
	host := strings.ToLower(u.Hostname())
	if port := u.Port(); port != "" {
		n, err := strconv.Atoi(port)
		switch {
		case err != nil || n < 1 || n > 65535:
			return "", fmt.Errorf("has the port %s: use 1 to 65535", port)
		case scheme == "http" && n == 80, scheme == "https" && n == 443:
			return "", fmt.Errorf("has the default port %s, which browsers leave out of the Origin header: write %s://%s", port, scheme, u.Host[:len(u.Host)-len(port)-1])
		}
	}
	if strings.Contains(u.Host, "[") {
		addr, err := netip.ParseAddr(host)
		if err != nil || !addr.Is6() || addr.Zone() != "" {
			return "", fmt.Errorf("has a malformed IPv6 address: %s", shape)
		}
		if addr.String() != host {
			return "", fmt.Errorf("writes its IPv6 address differently from browsers: use [%s]", addr)
		}
	} else if !validHostname(host) {
		return "", fmt.Errorf("has a malformed host name %q: use letters, digits, - and . (xn-- punycode for other letters)", u.Hostname())
	}
	return scheme + "://" + strings.ToLower(u.Host), nil
}

// validHostname reports whether h is a DNS name or dotted IPv4 address in
// ASCII, as the Origin header carries it.
func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
