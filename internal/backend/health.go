// Package backend says when a backend tokend depends on (the user
// database, a Redis) stops answering and when it answers again: one log
// line and one gauge change each, not one per request.
package backend

import (
	"log/slog"
	"sync/atomic"
)

// Health is whether one backend answered the last call made to it.
type Health struct {
	log        *slog.Logger
	setUp      func(up bool) // its gauge
	down, back string        // the log lines
	up         atomic.Bool
}

// NewHealth returns a backend's health: up, until a call fails, and setUp
// is told so. down is the Error line, with the cause, when the backend
// stops answering; back the Info line when it answers again.
func NewHealth(log *slog.Logger, setUp func(up bool), down, back string) *Health {
	h := &Health{log: log, setUp: setUp, down: down, back: back}
	h.up.Store(true)
	setUp(true)
	return h
}

// Up reports whether the backend answered the last call.
func (h *Health) Up() bool { return h.up.Load() }

// Failed notes a call that err failed, and reports whether it took the
// backend down: only that first failure is logged.
func (h *Health) Failed(err error) bool {
	if !h.up.CompareAndSwap(true, false) {
		return false
	}
	h.setUp(false)
	h.log.Error(h.down, "err", err)
	return true
}

// Answered notes a call that the backend answered.
func (h *Health) Answered() {
	if h.up.CompareAndSwap(false, true) {
		h.setUp(true)
		h.log.Info(h.back)
	}
}
