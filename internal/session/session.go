// Package session keeps tokend's login sessions: the server-side records
// that let a browser renew its access token with an HttpOnly cookie instead
// of the password.
//
// A session is known by the SHA-256 of its secret (Key), never by the
// secret itself: a memory dump, a Redis dump or a log line leaks nothing a
// client could present. Each backend (MemoryStore, RedisStore) implements
// Store and passes the one conformance suite in sessiontest.
package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"time"
)

// Errors a Store returns. Any other error means the store could not be
// asked (Redis down): the caller answers 503, not 401.
var (
	// ErrNotFound: no session has this key, or it has ended.
	ErrNotFound = errors.New("session: not found")
)

// Session is what a store keeps for one login. It never holds the secret.
type Session struct {
	// ID is the short, non-secret name of the session, for logs and
	// operators: the first 16 hex digits of its key.
	ID   string
	User string
	// Credential is a fingerprint of the user's password hash at login,
	// so a password change ends the session (CredentialOf).
	Credential string
	Created    time.Time
	LastSeen   time.Time
	// IdleUntil is when the session ends unless renewed before;
	// EndsAt is when it ends whatever happens. IdleUntil <= EndsAt.
	IdleUntil time.Time
	EndsAt    time.Time
}

// endedAt reports whether s has ended at now: at its idle deadline or at
// EndsAt, whichever comes first. Every backend's Touch and List go by it
// (the Redis store's touchScript says the same in Lua).
func (s Session) endedAt(now time.Time) bool {
	return !now.Before(s.IdleUntil) || !now.Before(s.EndsAt)
}

// byCreated is List's order, oldest first, for slices.SortStableFunc.
func byCreated(a, b Session) int { return a.Created.Compare(b.Created) }

// Store keeps sessions. Every method is safe for concurrent use, and Touch
// is atomic: two renewals at once never revive an ended session.
type Store interface {
	// Create stores s under key, then ends the user's oldest sessions
	// beyond perUser. It returns how many sessions it ended to make room.
	Create(ctx context.Context, key string, s Session, perUser int) (evicted int, err error)
	// Touch renews the session with key at now: if it has not ended
	// (now is before both deadlines), its IdleUntil becomes the earlier
	// of idleUntil and EndsAt and it is returned. Otherwise ErrNotFound,
	// and an ended session is deleted.
	Touch(ctx context.Context, key string, now, idleUntil time.Time) (Session, error)
	// Delete ends the session with key; ErrNotFound when there is none.
	Delete(ctx context.Context, key string) error
	// List returns the sessions of user (every user's when user is "")
	// that have not ended at now, oldest first.
	List(ctx context.Context, user string, now time.Time) ([]Session, error)
	// DeleteUser ends every session of user and returns how many.
	DeleteUser(ctx context.Context, user string) (int, error)
	// DeleteID ends the session whose ID is id; ErrNotFound when none.
	DeleteID(ctx context.Context, id string) error
	// Ping reports whether the store answers.
	Ping(ctx context.Context) error
}

// secretBytes is the session secret's size: 256 random bits, twice what
// ASVS 7.2.3 asks for.
const secretBytes = 32

// NewSecret returns a new session secret, the cookie's value, and the key
// the store knows it by.
func NewSecret() (secret, key string) {
	b := make([]byte, secretBytes)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	secret = base64.RawURLEncoding.EncodeToString(b)
	return secret, Key(secret)
}

// Key is the store key of secret: its SHA-256 in hex. A fast hash is
// enough: the secret has 256 random bits, so there is nothing to guess.
func Key(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// IDLen is the length of a session's ID, a prefix of its key.
const IDLen = 16

// IDOf returns the session ID of key.
func IDOf(key string) string {
	if len(key) < IDLen {
		return key
	}
	return key[:IDLen]
}

// ValidID reports whether id has the shape IDOf gives, IDLen lowercase hex
// digits: an ID of any other shape names no session, costs no lookup, and
// brings no glob character to Redis's SCAN MATCH.
func ValidID(id string) bool {
	if len(id) != IDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// ValidSecret reports whether s has the shape NewSecret gives, so a forged
// cookie of any other shape costs no store lookup.
func ValidSecret(s string) bool {
	if len(s) != base64.RawURLEncoding.EncodedLen(secretBytes) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil
}

// CredentialOf is the fingerprint of a password hash kept in a session: it
// changes when the hash does, and tells nothing about the hash.
func CredentialOf(hash []byte) string {
	sum := sha256.Sum256(append([]byte("tokend session credential\x00"), hash...))
	return hex.EncodeToString(sum[:8])
}
