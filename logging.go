package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// newLogger returns the logger for LOG_FORMAT and LOG_LEVEL, writing to w.
// In JSON a duration is a number of milliseconds, named so
// ("duration_ms":358.1); text shows it as Go writes it (duration=358.1ms).
func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		opts.ReplaceAttr = durationsInMilliseconds
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// durationsInMilliseconds turns a duration attribute into KEY_ms, a float
// of milliseconds: slog's JSON handler would write nanoseconds with no
// unit in the name.
func durationsInMilliseconds(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.Float64(a.Key+"_ms", float64(a.Value.Duration())/float64(time.Millisecond))
	}
	return a
}

// requestLog is what a request's handlers add to its log line and metrics.
// observe puts one in each request's context and reads it when the handler
// returns, so handlers report what only they know (who logged in, why a login
// failed) without response headers or a logger of their own. Only the
// request's own goroutine touches it.
//
// It also carries the client address, worked out once by observe, so the
// log and the limits agree on it, and its limiter key, made at most once.
type requestLog struct {
	route       string     // the mux pattern matched (recordRoute); "" for none
	client      netip.Addr // clientAddr, with the trusted proxies
	clientKey   string     // addrKey(client), once the limits asked (clientKeyFrom)
	identity    string     // on success: the token's identity
	grants      grantSet   // on success: the token's grants
	jti         string     // on success: the token's ID
	session     string     // the login session's short, non-secret ID, when one was used or started
	zoomRole    string     // on success at /zoom/token: host or participant
	zoomSession string     // on success at /zoom/token: the session name
	authFailure string     // on a 401: why, as a metrics label (authFailureReasons)
	problem     string     // on an error answer: its code
	detail      string     // on an error answer: what the client was told; logged at debug only
}

type requestLogKey struct{}

// requestLogFrom returns the request's log record, or nil outside observe.
func requestLogFrom(ctx context.Context) *requestLog {
	rl, _ := ctx.Value(requestLogKey{}).(*requestLog)
	return rl
}

// noteAuthFailure records why a login failed, for operators only: the client
// gets the same 401 whatever the reason.
func noteAuthFailure(ctx context.Context, reason string) {
	if rl := requestLogFrom(ctx); rl != nil {
		rl.authFailure = reason
	}
}

// observe logs one line per request and records its metrics. The line has
// the method, the path (never the query, which could carry a password), the
// status, the duration and the client address; on success the identity,
// grants and token ID; on an error the problem code (for a 401, why), and at
// debug level the detail the client was told. No header and nothing of the
// body is logged.
//
// The route, a bounded metrics label where the raw path is not, comes from
// recordRoute. The client address is worked out once here, with the
// trusted proxies, and travels in the log record for the limits too.
func observe(log *slog.Logger, m *metrics, trusted []netip.Prefix) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			// The log record and the status writer live as long as the
			// request: one allocation for both.
			st := &struct {
				rl requestLog
				sw statusWriter
			}{rl: requestLog{client: clientAddr(r, trusted)}, sw: statusWriter{ResponseWriter: w}}
			rl, sw := &st.rl, &st.sw
			next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), requestLogKey{}, rl)))
			status := sw.status
			if status == 0 {
				status = http.StatusOK // the handler wrote nothing: net/http answers 200
			}
			// An answer of known length (every /token answer) is sent
			// now, so that a connection that cannot carry it (its write
			// timeout passed, the client left) is known before it is
			// logged and counted: net/http's own flush comes after
			// this, and its error is never seen. Others would turn
			// chunked if flushed early; their writes are checked.
			if sw.err == nil && w.Header().Get("Content-Length") != "" {
				sw.err = flush(w)
			}
			elapsed := time.Since(start)
			route := rl.route
			if route == "" {
				route = "unmatched"
			}
			statusAttr, msg, level := slog.Int("status", status), "request", slog.LevelInfo
			if status >= 500 {
				level = slog.LevelError
			}
			if sw.err != nil {
				statusAttr, msg, level = slog.Int("unsent_status", status), "request not delivered", slog.LevelWarn
			}
			m.observe(route, status, elapsed, rl, sw.err == nil)

			// At LOG_LEVEL=error a success logs nothing: the line is
			// not even built (it cost 5 allocations a request).
			if !log.Enabled(r.Context(), level) {
				return
			}
			attrs := []slog.Attr{
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				statusAttr,
				slog.Duration("duration", elapsed),
				slog.String("client", rl.client.String()),
			}
			switch {
			case rl.zoomRole != "":
				attrs = append(attrs, slog.String("identity", rl.identity), slog.String("zoom_role", rl.zoomRole), slog.String("zoom_session", rl.zoomSession))
			case rl.identity != "":
				attrs = append(attrs, slog.String("identity", rl.identity), slog.String("grants", rl.grants.String()), slog.String("jti", rl.jti))
			}
			if rl.session != "" {
				attrs = append(attrs, slog.String("session", rl.session))
			}
			if rl.problem != "" {
				attrs = append(attrs, slog.String("problem", rl.problem))
			}
			if rl.authFailure != "" {
				attrs = append(attrs, slog.String("auth_failure", rl.authFailure))
			}
			if rl.detail != "" && log.Enabled(r.Context(), slog.LevelDebug) {
				attrs = append(attrs, slog.String("detail", rl.detail))
			}
			if sw.err != nil {
				attrs = append(attrs, slog.String("error", sw.err.Error()))
			}
			log.LogAttrs(r.Context(), level, msg, attrs...)
		})
	}
}

// flush sends what w holds and reports whether the connection took it.
// net/http's own writer has FlushError, which http.ResponseController
// looks for too; called directly it costs no allocation on every answer.
func flush(w http.ResponseWriter) error {
	if f, ok := w.(interface{ FlushError() error }); ok {
		return f.FlushError()
	}
	return http.NewResponseController(w).Flush()
}

// statusWriter remembers the status a handler answered with, and the first
// error writing the answer.
type statusWriter struct {
	http.ResponseWriter
	status int
	err    error
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	if err != nil && w.err == nil {
		w.err = err
	}
	return n, err
}

// Unwrap lets http.ResponseController reach the connection underneath.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// serverErrorInterval is how often at most serverErrors logs one kind of
// error of the HTTP servers.
const serverErrorInterval = time.Minute

// serverErrors is where tokend's HTTP servers log their own errors: failed
// TLS handshakes, malformed requests, queries with semicolons. Anyone on the
// internet causes these at any rate (a scanner makes thousands of failed
// handshakes a minute), so each kind is logged at most once an interval as
// a warning, with how many there were since its last line and the text of
// the latest. Nothing in them comes from a request's body or headers.
type serverErrors struct {
	log      *slog.Logger
	now      func() time.Time
	interval time.Duration

	mu    sync.Mutex
	kinds map[string]*errorKind
}

type errorKind struct {
	logged time.Time // when a line last said this kind
	since  int       // errors of this kind not yet logged
}

// maxErrorKinds bounds the kinds remembered; past it, the rest share one.
const maxErrorKinds = 64

func newServerErrors(log *slog.Logger, now func() time.Time, interval time.Duration) *serverErrors {
	return &serverErrors{log: log, now: now, interval: interval, kinds: map[string]*errorKind{}}
}

// Write takes one line of the servers' log.Logger.
func (s *serverErrors) Write(p []byte) (int, error) {
	msg := strings.TrimRight(string(p), "\n")
	kind := errorKindOf(msg)
	s.mu.Lock()
	k := s.kinds[kind]
	if k == nil {
		if len(s.kinds) >= maxErrorKinds {
			kind = "other"
		}
		if k = s.kinds[kind]; k == nil {
			k = &errorKind{}
			s.kinds[kind] = k
		}
	}
	k.since++
	now := s.now()
	if !k.logged.IsZero() && now.Sub(k.logged) < s.interval {
		s.mu.Unlock()
		return len(p), nil
	}
	count := k.since
	k.logged, k.since = now, 0
	s.mu.Unlock()
	s.log.Warn("http server error", "kind", kind, "count", count, "per", s.interval.String(), "last", msg)
	return len(p), nil
}

// errorKindOf names the kind of a net/http server error: its text up to the
// client address or the first detail, such as "http: TLS handshake error".
func errorKindOf(msg string) string {
	if i := strings.Index(msg, " from "); i >= 0 {
		msg = msg[:i]
	}
	skip := len("http: ")
	if !strings.HasPrefix(msg, "http: ") {
		skip = 0
	}
	if i := strings.IndexAny(msg[skip:], ":;,"); i >= 0 {
		msg = msg[:skip+i]
	}
	return msg
}
