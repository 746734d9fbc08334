package main

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

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
func allowCORS(origins []string) func(http.Handler) http.Handler {
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
		return refuseNullOrigin(c.Handler(next))
	}
}

// refuseNullOrigin hides the "null" origin from the CORS layer, so even
// CORS_ALLOWED_ORIGINS=* never lets it read an answer: sandboxed iframes,
// file: pages and cross-origin redirects all send it, so trusting it
// trusts every one of them.
//
// The request remembers that it came from the null origin (sentNullOrigin),
// so the session cookie is refused to it rather than taken for same-origin.
func refuseNullOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Origin") == "null" {
			r = r.Clone(context.WithValue(r.Context(), nullOriginKey{}, true))
			r.Header.Del("Origin")
		}
		next.ServeHTTP(w, r)
	})
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
