package main

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"tokend/internal/session"
)

// newSessionStore returns the store sessions are kept in: Redis when
// REDIS_URL is set (shared by every replica), otherwise this process's
// memory, capped at SESSION_MAX.
func newSessionStore(cfg *Config, rdb *redis.Client) session.Store {
	if rdb != nil {
		return session.NewRedisStore(rdb, cfg.RedisPrefix)
	}
	return session.NewMemoryStore(cfg.Sessions.MaxSessions)
}

func sessionStoreName(rdb *redis.Client) string {
	if rdb != nil {
		return "redis"
	}
	return "memory"
}

func sameSiteName(s http.SameSite) string {
	switch s {
	case http.SameSiteLaxMode:
		return "lax"
	case http.SameSiteNoneMode:
		return "none"
	}
	return "strict"
}

// sessionInfo is one session as the admin endpoints show it: its short ID,
// never its secret or key.
type sessionInfo struct {
	ID            string `json:"id"`
	User          string `json:"user"`
	Created       string `json:"created"`
	LastSeen      string `json:"last_seen"`
	IdleExpiresAt string `json:"idle_expires_at"`
	ExpiresAt     string `json:"expires_at"`
}

// listOf is how the admin endpoints and `tokend session list` show list.
func listOf(list []session.Session) sessionList {
	out := sessionList{Sessions: []sessionInfo{}}
	for _, sess := range list {
		out.Sessions = append(out.Sessions, sessionInfo{
			ID: sess.ID, User: sess.User,
			Created:       sess.Created.UTC().Format(time.RFC3339),
			LastSeen:      sess.LastSeen.UTC().Format(time.RFC3339),
			IdleExpiresAt: sess.IdleUntil.UTC().Format(time.RFC3339),
			ExpiresAt:     sess.EndsAt.UTC().Format(time.RFC3339),
		})
	}
	return out
}

// sessionList is the body of GET /admin/sessions.
type sessionList struct {
	Sessions []sessionInfo `json:"sessions"`
}

// revokeResult is the body of DELETE /admin/sessions.
type revokeResult struct {
	Ended int `json:"ended"`
}

// addAdminRoutes adds the operators' session endpoints to the METRICS_ADDR
// listener, which is private (it is never the public /token listener):
//
//	GET    /admin/sessions[?user=NAME]   list live sessions
//	DELETE /admin/sessions?user=NAME     end every session of a user
//	DELETE /admin/sessions/{id}          end one session
func addAdminRoutes(mux *http.ServeMux, log *slog.Logger, s *sessions) {
	mux.Handle("GET /admin/sessions", refuseBrowsers(log, handleAdminListSessions(log, s)))
	mux.Handle("DELETE /admin/sessions", refuseBrowsers(log, handleAdminRevokeUser(log, s)))
	mux.Handle("DELETE /admin/sessions/{id}", refuseBrowsers(log, handleAdminRevokeID(log, s)))
}

// refuseBrowsers keeps web pages away from the admin endpoints: a page
// that reaches the private listener (DNS rebinding to 127.0.0.1, or an
// operator's browser on the internal network) sends Sec-Fetch-Mode or an
// Origin; `tokend session` and scripts send neither.
func refuseBrowsers(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Sec-Fetch-Mode") != "" || r.Header.Get("Origin") != "" {
			writeError(w, r, log, Errorf(EFORBIDDEN, "the session admin endpoints are for `tokend session` and scripts, not web pages"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func handleAdminListSessions(log *slog.Logger, s *sessions) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		list, err := s.store.List(r.Context(), r.URL.Query().Get("user"), s.now())
		if err != nil {
			writeError(w, r, log, s.storeErr(err))
			return
		}
		writeJSON(w, listOf(list))
	})
}

func handleAdminRevokeUser(log *slog.Logger, s *sessions) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user := r.URL.Query().Get("user")
		if user == "" {
			writeError(w, r, log, invalidFields(map[string]string{"user": "is required: DELETE /admin/sessions?user=NAME ends that user's sessions; DELETE /admin/sessions/ID ends one"}))
			return
		}
		n, err := s.store.DeleteUser(r.Context(), user)
		if err != nil {
			writeError(w, r, log, s.storeErr(err))
			return
		}
		s.m.sessionsEnded.WithLabelValues(endRevoked).Add(float64(n))
		log.InfoContext(r.Context(), "sessions revoked", "user", user, "ended", n)
		writeJSON(w, revokeResult{Ended: n})
	})
}

func handleAdminRevokeID(log *slog.Logger, s *sessions) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		switch err := s.store.DeleteID(r.Context(), id); {
		case errors.Is(err, session.ErrNotFound):
			writeError(w, r, log, Errorf(ENOTFOUND, "no live session has the ID %q; list them with GET /admin/sessions", id))
			return
		case err != nil:
			writeError(w, r, log, s.storeErr(err))
			return
		}
		s.m.sessionsEnded.WithLabelValues(endRevoked).Inc()
		log.InfoContext(r.Context(), "session revoked", "session", id)
		writeJSON(w, revokeResult{Ended: 1})
	})
}
