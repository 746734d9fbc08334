package main

import (
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Why a login failed, as the log names it. The client never learns which:
// every one of them gets the same 401 body.
const (
	authMissingCredentials     = "missing_credentials"     // no username or no password
	authMalformedAuthorization = "malformed_authorization" // an Authorization header that is not valid HTTP Basic
	authUnknownUser            = "unknown_user"
	authWrongPassword          = "wrong_password"
	authInvalidIDToken         = "invalid_id_token" // a bearer token that is not a valid ID token for this server
	authOther                  = "other"            // a 401 whose handler gave no reason
	authNoSession              = "no_session"       // a session cookie of no live session
)

// authBadCredentials is the metrics' one reason for an unknown user and a
// wrong password. /metrics may be public (beside /token when METRICS_ADDR is
// unset) and a guesser can scrape it after each try: two reasons would tell
// whether the name just tried exists, undoing the single 401 body and the
// dummy hash. The log, which only operators read, keeps them apart.
const authBadCredentials = "bad_credentials"

// authFailureReasons lists every reason the metrics show, so that each series
// exists from the start and a rate() over it works before the first failure.
var authFailureReasons = []string{authMissingCredentials, authMalformedAuthorization, authBadCredentials, authInvalidIDToken, authNoSession, authOther}

// metrics are one server's Prometheus metrics, in a registry of their own:
// nothing is registered globally, so servers (and tests) never share or
// collide over counters.
type metrics struct {
	registry        *prometheus.Registry
	tokensIssued    *prometheus.CounterVec
	tokensByGrant   []prometheus.Counter // tokensIssued's series, in allGrantNames order: no label lookup per token
	zoomTokens      *prometheus.CounterVec
	authFailures    *prometheus.CounterVec
	rateLimited     prometheus.Counter
	requestDuration *prometheus.HistogramVec
	// durations holds requestDuration's series by durationKey, each
	// looked up once: hashing and checking the labels on every request
	// cost as much as the rest of observe.
	durations       sync.Map
	usersFileStale  prometheus.Gauge
	sessionsStarted prometheus.Counter
	sessionsRenewed prometheus.Counter
	sessionsEnded   *prometheus.CounterVec
	sessionStoreUp  prometheus.Gauge
	limitsStoreUp   prometheus.Gauge
	oidcKeyFetches  *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		tokensIssued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokend_tokens_issued_total",
			Help: "Access tokens issued, by grant; a token with several grants counts once for each.",
		}, []string{"grant"}),
		zoomTokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokend_zoom_tokens_issued_total",
			Help: "Zoom Video SDK tokens issued, by role (host or participant).",
		}, []string{"role"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokend_auth_failures_total",
			Help: "Refused logins (401 answers), by reason.",
		}, []string{"reason"}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tokend_rate_limited_total",
			Help: "Requests refused with 429 Too Many Requests.",
		}),
		oidcKeyFetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokend_oidc_key_fetches_total",
			Help: "Fetches of the identity provider's key set (JWKS), by result: at start-up, every OIDC_JWKS_REFRESH, and on an unknown kid (at most one per 30s).",
		}, []string{"result"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tokend_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route (the matched pattern, not the raw path) and status.",
			Buckets: prometheus.DefBuckets, // 5ms to 10s: spans a bcrypt check at any sane cost
		}, []string{"route", "status"}),
		usersFileStale: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tokend_users_file_stale",
			Help: "1 while the users file cannot be read or parsed, so the last good users still serve; alert on it.",
		}),
		sessionsStarted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tokend_sessions_started_total",
			Help: "Login sessions started (browser logins, or logins that asked for one).",
		}),
		sessionsRenewed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tokend_sessions_renewed_total",
			Help: "Tokens issued on a session cookie instead of a password.",
		}),
		sessionsEnded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokend_sessions_ended_total",
			Help: "Login sessions ended, by reason, as this replica saw them; sessions that time out unused are not counted.",
		}, []string{"reason"}),
		sessionStoreUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tokend_session_store_up",
			Help: "1 while the session store (Redis with REDIS_URL) answers, 0 while it does not.",
		}),
		limitsStoreUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tokend_limits_store_up",
			Help: "1 while the login limits store (Redis with REDIS_URL) answers or there is none, 0 while each replica falls back to its own budgets.",
		}),
	}
	// Up with no store at all: nothing is down.
	m.sessionStoreUp.Set(1)
	m.limitsStoreUp.Set(1)
	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.tokensIssued, m.zoomTokens, m.authFailures, m.rateLimited, m.requestDuration, m.usersFileStale,
		m.sessionsStarted, m.sessionsRenewed, m.sessionsEnded, m.sessionStoreUp, m.limitsStoreUp,
	)
	for _, r := range sessionEndReasons {
		m.sessionsEnded.WithLabelValues(r)
	}
	for _, g := range allGrantNames {
		m.tokensByGrant = append(m.tokensByGrant, m.tokensIssued.WithLabelValues(string(g)))
	}
	for _, role := range []int{zoomHost, zoomParticipant} {
		m.zoomTokens.WithLabelValues(zoomRoleName(role))
	}
	for _, r := range authFailureReasons {
		m.authFailures.WithLabelValues(r)
	}
	return m
}

// gaugeSetter sets g to 1 for true and 0 for false: how a yes-or-no gauge
// (a store that answers, a stale users file) follows its state.
func gaugeSetter(g prometheus.Gauge) func(bool) {
	return func(on bool) {
		if on {
			g.Set(1)
		} else {
			g.Set(0)
		}
	}
}

// noteKeyFetch counts one fetch of the identity provider's keys. The
// series exists only when OIDC is on (serve registers it then).
func (m *metrics) noteKeyFetch(err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.oidcKeyFetches.WithLabelValues(result).Inc()
}

// withOIDCMetrics registers the OIDC series, with both results at zero.
func (m *metrics) withOIDCMetrics() {
	m.registry.MustRegister(m.oidcKeyFetches)
	m.oidcKeyFetches.WithLabelValues("ok")
	m.oidcKeyFetches.WithLabelValues("error")
}

// observe records one answered request. Counting 429s here, from the status,
// counts every one of them whichever limiter answered, with nothing to wire.
// An answer the connection did not carry (delivered false) is timed under
// status "undelivered" and issued no token; its refused login or 429 still
// counts, as the attempt was made: a guesser who drops each connection
// must not vanish from the metrics.
func (m *metrics) observe(route string, status int, elapsed time.Duration, rl *requestLog, delivered bool) {
	m.duration(route, status, delivered).Observe(elapsed.Seconds())
	switch {
	case rl.identity != "" && !delivered:
	case rl.zoomRole != "":
		m.zoomTokens.WithLabelValues(rl.zoomRole).Inc()
	case rl.identity != "":
		for i, g := range allGrantNames {
			if rl.grants.has(g) {
				m.tokensByGrant[i].Inc()
			}
		}
	case status == http.StatusUnauthorized:
		reason := rl.authFailure
		switch reason {
		case "":
			reason = authOther
		case authUnknownUser, authWrongPassword:
			reason = authBadCredentials
		}
		m.authFailures.WithLabelValues(reason).Inc()
	case status == http.StatusTooManyRequests:
		m.rateLimited.Inc()
	}
}

// durationKey names a series of requestDuration: a route and a status, or
// 0 for an answer that was not delivered.
type durationKey struct {
	route  string
	status int
}

// duration returns the series of requestDuration for one kind of answer.
// Routes and statuses are few, so the cache stays small.
func (m *metrics) duration(route string, status int, delivered bool) prometheus.Observer {
	k, label := durationKey{route, 0}, "undelivered"
	if delivered {
		k.status = status
	}
	if o, ok := m.durations.Load(k); ok {
		return o.(prometheus.Observer)
	}
	if delivered {
		label = strconv.Itoa(status)
	}
	o := m.requestDuration.WithLabelValues(route, label)
	m.durations.Store(k, o)
	return o
}

// handleMetrics serves the metrics in the Prometheus text format.
func handleMetrics(log *slog.Logger, m *metrics) http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError),
	})
}
