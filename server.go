package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// NewServer returns tokend's HTTP handler: every route, wrapped in the
// middleware every response goes through. auth checks passwords (the login
// limits go around it here, where the client address is known); users is
// what /readyz checks; m collects the metrics. opts add ways of logging in
// beside passwords.
func NewServer(log *slog.Logger, cfg *Config, auth Authenticator, users readiness, m *metrics, now func() time.Time, opts ...loginOption) http.Handler {
	minter := NewMinter(cfg.AccountSID, cfg.APIKeySID, cfg.APIKeySecret, cfg.Region)
	mux := http.NewServeMux()
	// An auth stack brings the limits it charges; any other auth gets its own.
	var limits *loginLimits
	if s, ok := auth.(*authStack); ok && s != nil {
		limits = s.limits
	} else {
		limits = newLoginLimits(cfg.Limits, now)
	}
	logins := &signIn{limits: limits}
	if auth != nil {
		logins.auth = limits.guard(auth, cfg.BcryptMaxWait)
	}
	for _, opt := range opts {
		opt(logins)
	}
	addRoutes(mux, log, cfg, minter, logins, limits, users, m, now)
	return withMiddleware(mux, log, cfg, m)
}

// withMiddleware wraps mux in what every response goes through, outermost
// last: security headers, CORS, panic recovery, and the request log and
// metrics (which also works out the client address for the limits).
func withMiddleware(mux *http.ServeMux, log *slog.Logger, cfg *Config, m *metrics) http.Handler {
	h := recordRoute(mux)
	h = secureHeaders(h)
	h = allowCORS(cfg.CORSOrigins, newCORSRefusals(log, time.Now))(h)
	h = recoverPanics(log)(h)
	h = observe(log, m, cfg.TrustedProxies)(h)
	return h
}

// addRoutes lists the whole API surface in one place. With METRICS_ADDR set,
// /metrics is served there instead (serve), away from /token.
func addRoutes(mux *http.ServeMux, log *slog.Logger, cfg *Config, minter *Minter, logins *signIn, limits *loginLimits, users readiness, m *metrics, now func() time.Time) {
	mux.Handle("/token", limits.limitRequests(log)(handleToken(log, cfg, minter, logins, now)))
	mux.Handle("/zoom/token", limits.limitRequests(log)(handleZoomToken(log, cfg, newZoomMinter(cfg.Zoom), logins, now)))
	if logins.sessions != nil {
		mux.Handle("/logout", limits.limitRequests(log)(handleLogout(log, logins.sessions, http.MethodPost)))
		mux.Handle("/session", limits.limitRequests(log)(handleLogout(log, logins.sessions, http.MethodDelete)))
	}
	mux.Handle("/healthz", handleHealthz())
	mux.Handle("/readyz", handleReadyz(log, users, logins.auth != nil, logins.oidc, logins.sessions, limits))
	if cfg.MetricsAddr == "" {
		mux.Handle("/metrics", handleMetrics(log, m))
	}
	if cfg.DemoPage {
		mux.Handle("/{$}", handleDemoPage(log, cfg.Dev, cfg.OIDC != nil))
	}
	mux.Handle("/", handleNotFound(log))
}

// recordRoute notes in the request's log record the pattern mux matched,
// which names the route in metrics: a small, fixed set of values, where raw
// paths are not. The mux sets r.Pattern when it picks a handler, so the
// route costs no second match; it is noted even when the handler panics.
func recordRoute(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if rl := requestLogFrom(r.Context()); rl != nil {
				rl.route = r.Pattern
			}
		}()
		mux.ServeHTTP(w, r)
	})
}

// handleHealthz answers while the process is serving.
func handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprintln(w, "ok")
	})
}

// handleReadyz answers 200 while tokend can issue tokens: its configuration
// is valid (it would not have started otherwise), users are loaded when
// passwords are on, and with OIDC on, the identity provider's keys have
// been fetched once. Otherwise 503, so a load balancer sends logins
// elsewhere; with a user database, "users are loaded" means it answers.
// A provider that goes down later does not make tokend unready:
// tokens signed by the keys it holds keep working.
//
// A session store that does not answer is said in the body but keeps the
// 200: password logins still work, and every replica shares the one Redis,
// so a 503 would take them all out of the balancer for what only sessions
// need.
func handleReadyz(log *slog.Logger, users readiness, passwords bool, idp *oidcLogin, sess *sessions, limits *loginLimits) http.Handler {
	if users == nil {
		users = (*userStore)(nil)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if idp != nil {
			if why := idp.ready(); why != "" {
				writeError(w, r, log, Errorf(EUNAVAILABLE, "%s", why))
				return
			}
		}
		if passwords && idp == nil {
			if err := users.Ready(r.Context()); err != nil {
				writeError(w, r, log, err)
				return
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprintln(w, "ready")
		if sess != nil && sess.ping(r.Context()) != nil {
			fmt.Fprintln(w, "sessions: unavailable: the session store (REDIS_URL) is not answering; password logins work, session renewals get 503")
		}
		if limits != nil && limits.store != nil && !limits.store.Check(r.Context(), limits.pingStore) {
			fmt.Fprintln(w, "limits: local: the login limits store (REDIS_URL) is not answering; each replica enforces its own login budgets")
		}
	})
}

func handleNotFound(log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, log, Errorf(ENOTFOUND, "no such endpoint %s; tokens are issued by POST /token", r.URL.Path))
	})
}

// secureHeaders sets the headers every response of an API that hands out
// credentials should carry. The values are made once and shared by every
// response (net/http only reads them), which saves three allocations a
// request on the hot path.
func secureHeaders(next http.Handler) http.Handler {
	nosniff, noReferrer, deny := []string{"nosniff"}, []string{"no-referrer"}, []string{"DENY"}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["X-Content-Type-Options"] = nosniff
		h["Referrer-Policy"] = noReferrer
		h["X-Frame-Options"] = deny
		next.ServeHTTP(w, r)
	})
}

// recoverPanics turns a panic in a handler into a logged internal error and
// a problem+json 500, so no input shows a stack trace to the client.
func recoverPanics(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					writeError(w, r, log, fmt.Errorf("panic: %v", v))
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}
