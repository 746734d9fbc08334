package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"tokend/internal/backend"
	"tokend/internal/passhash"
	userstore "tokend/internal/users"
)

// dbRetryAfter is the wait a 503 for a database outage suggests: a restart
// or failover takes seconds.
const dbRetryAfter = 5 * time.Second

// maxDBPasswordBytes is the longest password a login with a user database
// may send: its formats read every byte (bcrypt's own hashes still refuse
// past 72), and a kilobyte is more than any passphrase while it bounds
// the work a request can ask of PBKDF2 and friends.
const maxDBPasswordBytes = 1024

// maxUnusableLogged bounds the users whose unusable hash has been logged,
// so a table full of them cannot grow the set without end.
const maxUnusableLogged = 10000

// storeHealth says once, in the log and a metric, when the user store stops
// answering and when it is back, instead of once per login; and once per
// user that a hash cannot be checked.
type storeHealth struct {
	log *slog.Logger
	db  *backend.Health // one log line each way, and tokend_users_store_up

	upGauge        prometheus.Gauge
	errors         prometheus.Counter
	unusableHashes prometheus.Counter

	mu     sync.Mutex
	logged map[string]bool // users whose unusable hash was logged
}

func newStoreHealth(log *slog.Logger) *storeHealth {
	h := &storeHealth{
		log: log, logged: map[string]bool{},
		upGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tokend_users_store_up",
			Help: "1 while the user store answers lookups, 0 while it does not (logins then get 503).",
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tokend_users_store_errors_total",
			Help: "User lookups that failed because the user store did not answer (each answered 503).",
		}),
		unusableHashes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tokend_users_unusable_hashes_total",
			Help: "Users found with a password hash tokend cannot check (unknown format, malformed, or above the limits); counted once per user.",
		}),
	}
	h.db = backend.NewHealth(log, gaugeSetter(h.upGauge),
		"user database unavailable: logins get 503 until it answers again", "user database available again")
	return h
}

// collectors are the metrics to register with the server's.
func (h *storeHealth) collectors() []prometheus.Collector {
	return []prometheus.Collector{h.upGauge, h.errors, h.unusableHashes}
}

// down is the answer to a login whose user could not be looked up: 503 with
// Retry-After, not a failed login (the limits charge nothing for it).
func (h *storeHealth) down(err error) error {
	h.errors.Inc()
	h.db.Failed(err)
	return retryLater(EUNAVAILABLE, dbRetryAfter, "the user database is unavailable, so the password cannot be checked")
}

// up notes that the store answered.
func (h *storeHealth) up() { h.db.Answered() }

// unusable logs, once per user, that name's hash cannot be checked: its
// format's prefix and why, never the hash.
func (h *storeHealth) unusable(name, hash string, why error) {
	h.mu.Lock()
	first := !h.logged[name] && len(h.logged) < maxUnusableLogged
	if first {
		h.logged[name] = true
	}
	h.mu.Unlock()
	if !first {
		return
	}
	h.unusableHashes.Inc()
	h.log.Warn("a user's password hash cannot be checked; that user cannot log in until it is rehashed",
		"user", name, "format", passhash.Prefix(hash), "why", why.Error())
}

// readiness is what /readyz asks: nil while logins can be checked.
type readiness interface {
	Ready(ctx context.Context) error
}

// Ready: the users file has users.
func (s *userStore) Ready(context.Context) error {
	if s == nil || s.Load() == nil || s.Load().Len() == 0 {
		return Errorf(EUNAVAILABLE, "no users are loaded, so no login can succeed; add one with `tokend user add NAME`")
	}
	return nil
}

// storeReadiness asks the user database: its query runs, for a name no one
// has. A failure also marks the store down (and a success up), so the log
// and metric follow the database even when no one logs in. /readyz is
// public, so probes that arrive while a check runs share its answer: a
// flood of them costs the database one query at a time.
type storeReadiness struct {
	store   userstore.Store
	health  *storeHealth
	timeout time.Duration

	mu       sync.Mutex
	inflight *readyCall
}

// readyCall is one check that several probes wait for.
type readyCall struct {
	done    chan struct{}
	err     error
	waiters int // probes that asked, under storeReadiness.mu
}

func (r *storeReadiness) Ready(ctx context.Context) error {
	r.mu.Lock()
	c := r.inflight
	if c == nil {
		c = &readyCall{done: make(chan struct{})}
		r.inflight = c
		// Not the first prober's context: its leaving must not fail
		// the others.
		go r.check(context.WithoutCancel(ctx), c)
	}
	c.waiters++
	r.mu.Unlock()
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return Errorf(ECANCELED, "the client closed the request while the user database was checked")
	}
}

func (r *storeReadiness) check(ctx context.Context, c *readyCall) {
	if r.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.timeout)
		defer cancel()
	}
	if err := r.store.Check(ctx); err != nil {
		c.err = r.health.down(err)
	} else {
		r.health.up()
	}
	r.mu.Lock()
	r.inflight = nil
	r.mu.Unlock()
	close(c.done)
}

// openUsersDB opens the user database of cfg, reads a sample of its hashes
// for the dummy hash, and says in the log whether it answers. A database
// that is down at start-up does not stop tokend: it starts not ready
// (/readyz 503, logins 503) and recovers when the database does.
func openUsersDB(ctx context.Context, log *slog.Logger, cfg *Config, health *storeHealth) (*userstore.Postgres, []string, error) {
	db, err := cfg.UsersDB.open()
	if err != nil {
		return nil, nil, err
	}
	if err := (&storeReadiness{store: db, health: health, timeout: cfg.UsersDB.QueryTimeout}).Ready(ctx); err != nil {
		log.Warn("starting without the user database: not ready until it answers")
		return db, nil, nil
	}
	sample, err := db.Sample(ctx, 1000)
	if err != nil {
		log.Warn("USERS_SAMPLE_QUERY failed; the dummy hash for unknown users is bcrypt", "err", err)
	}
	formats := map[string]int{}
	for _, h := range sample {
		formats[passhash.Prefix(h)]++
	}
	log.Info("user database", "query_timeout", cfg.UsersDB.QueryTimeout.String(), "sampled_hashes", len(sample), "formats", formats)
	return db, sample, nil
}

// usersSummary is where the users are, for the start-up log line.
func usersSummary(cfg *Config, users *Users) any {
	if cfg.UsersDB.URL != "" {
		return "in the user database (USERS_DATABASE_URL)"
	}
	return users.Len()
}
