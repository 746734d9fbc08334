package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// NewServer returns tokend's HTTP handler: every route, wrapped in the
// middleware every response goes through.
func NewServer(log *slog.Logger, cfg *Config, minter *Minter, auth Authenticator, now func() time.Time) http.Handler {
	mux := http.NewServeMux()
	limits := newLoginLimits(cfg.Limits, now)
	addRoutes(mux, log, cfg, minter, limits.guard(auth), limits, now)
	var h http.Handler = mux
	h = withClientAddr(cfg.TrustedProxies)(h)
	h = secureHeaders(h)
	h = recoverPanics(log)(h)
	return h
}

// addRoutes lists the whole API surface in one place.
func addRoutes(mux *http.ServeMux, log *slog.Logger, cfg *Config, minter *Minter, auth Authenticator, limits *loginLimits, now func() time.Time) {
	mux.Handle("/token", limits.limitRequests(log)(handleToken(log, cfg, minter, auth, now)))
	mux.Handle("/healthz", handleHealthz())
	mux.Handle("/", handleNotFound(log))
}

// handleHealthz answers while the process is serving.
func handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprintln(w, "ok")
	})
}

func handleNotFound(log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, log, Errorf(ENOTFOUND, "no such endpoint %s; tokens are issued by POST /token", r.URL.Path))
	})
}

// secureHeaders sets the headers every response of an API that hands out
// credentials should carry.
func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
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

// encode writes v as JSON with status.
func encode[T any](w http.ResponseWriter, status int, v T) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	return nil
}
