package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

type serveOptions struct {
	dev      bool
	envFile  string
	envFound bool
	environ  []string // the process environment's names, for warnings
	pprof    bool     // Go's profiler at /debug/pprof/ on METRICS_ADDR
	now      func() time.Time
}

// Limits of every HTTP server tokend runs. A token request is a few
// hundred bytes and its answer a few KiB; the slowest work is one bcrypt
// check, well under a second.
const (
	readHeaderTimeout = 5 * time.Second  // a client that trickles its headers is cut off early
	readTimeout       = 10 * time.Second // the whole request, body included
	writeTimeout      = 10 * time.Second // from the end of the headers to the end of the answer
	idleTimeout       = 60 * time.Second // keep-alive between requests
	maxHeaderBytes    = 16 << 10
)

// serve loads the configuration and users, then serves until ctx is done;
// then it stops accepting and lets requests in flight finish, for at most
// SHUTDOWN_TIMEOUT.
func serve(ctx context.Context, lookup func(string) string, opt serveOptions, stdout, stderr io.Writer) error {
	// SIGHUP reloads the users file, as daemons do; the file is watched
	// too. The handler goes in first: start-up hashes at the users' bcrypt
	// cost, which takes a while, and SIGHUP's default action would end
	// tokend (exit 129) if one came meanwhile, as logrotate's or a
	// deploy script's can. One that does is a reload once serving.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var (
		cfg      *Config
		users    *Users
		banner   string
		warnings []string
		err      error
	)
	if opt.dev {
		cfg, users, banner, err = devSetup(lookup)
		if err == nil {
			warnings = configWarnings(cfg, opt.envFile, opt.envFound, opt.environ)
		}
	} else {
		cfg, users, warnings, err = loadChecked(lookup, opt.envFile, opt.envFound, opt.environ)
	}
	if err != nil {
		return err
	}
	if opt.pprof && cfg.MetricsAddr == "" {
		return errors.New("--pprof serves the profiler on the METRICS_ADDR listener, never beside /token: set METRICS_ADDR")
	}
	log := newLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	for _, w := range warnings {
		log.Warn(w)
	}
	if !opt.dev && users != nil {
		for _, w := range costWarnings(users, cfg.UsersFile) {
			log.Warn(w)
		}
	}
	if cfg.Zoom != nil {
		for _, warning := range cfg.Zoom.warnings() {
			log.Warn(warning)
		}
	}
	var (
		passwords Authenticator // nil: IdP-only, no users file
		auth      *authStack
		ready     readiness
		sess      *sessions // nil: no sessions (IdP-only: they start from password logins)
		logins    []loginOption
	)
	m := newMetrics()
	health := newStoreHealth(log)
	m.registry.MustRegister(health.collectors()...)
	// One Redis client for everything kept in Redis, made here and
	// passed to each user of it.
	var rdb *redis.Client
	if cfg.RedisURL != "" {
		if rdb, err = newRedisClient(cfg.RedisURL); err != nil {
			return err
		}
		defer rdb.Close()
	}
	if cfg.UsersDB.URL != "" {
		db, sample, err := openUsersDB(ctx, log, cfg, health)
		if err != nil {
			return err
		}
		defer db.Close()
		if auth, err = newDBAuthStack(cfg, db, sample, health, bcryptSlots(cfg), opt.now); err != nil {
			return err
		}
		logins = append(logins, withMaxPassword(maxDBPasswordBytes))
		// A renewal looks the user up in the database: a changed
		// password, a disabled or deleted user ends the session there.
		sess = startSessions(ctx, log, cfg, rdb, auth, m, opt.now)
		sess.users = storeCredentials(db, health)
		logins = append(logins, withSessions(sess))
	} else if users != nil {
		if auth, err = newAuthStack(cfg, users, bcryptSlots(cfg), opt.now); err != nil {
			return err
		}
		sess = startSessions(ctx, log, cfg, rdb, auth, m, opt.now)
		logins = append(logins, withSessions(sess))
		// SIGHUP (hup, installed above) reloads the users file, as
		// daemons do; the file is watched too.
		reloader := newUsersReloader(log, cfg.UsersFile, auth)
		reloader.onChange = sess.endUsers
		reloader.stale = gaugeSetter(m.usersFileStale)
		stopReloads := reloader.start(ctx, hup, cfg.UsersReloadInterval)
		defer stopReloads()
	}
	if auth != nil {
		passwords, ready = auth, auth.ready
		if rdb != nil {
			// The login budgets are shared through the same client;
			// Redis's clock decides (now is nil).
			auth.limits.useRedis(rdb, cfg.RedisPrefix, limitsSecret(cfg.APIKeySecret), cfg.Limits, nil, log,
				gaugeSetter(m.limitsStoreUp))
		}
		log.Info("login guard", "bcrypt_slots", bcryptSlots(cfg), "auth_cache_ttl", cfg.AuthCacheTTL.String(),
			"users_reload_interval", cfg.UsersReloadInterval.String(), "trusted_proxies", len(cfg.TrustedProxies))
	}
	if cfg.OIDC != nil {
		// Discovery and keys in the background: tokend serves (and
		// /readyz says not ready) while the provider is unreachable.
		idp := newOIDCLogin(cfg.OIDC, log, nil, opt.now)
		m.withOIDCMetrics()
		idp.keys.onFetch = m.noteKeyFetch
		oidcCtx, stopOIDC := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { idp.run(oidcCtx) })
		defer wg.Wait()
		defer stopOIDC()
		logins = append(logins, withOIDC(idp))
		log.Info("ID token logins on", "issuer", cfg.OIDC.Issuer, "identity_claim", cfg.OIDC.IdentityClaim, "passwords", passwords != nil)
	}
	handler := NewServer(log, cfg, passwords, ready, m, opt.now, logins...)

	errs := newServerErrors(log, opt.now, serverErrorInterval)
	api := newHTTPServer(handler, errs)
	if cfg.TLSCert != nil {
		api.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*cfg.TLSCert}}
	}
	servers := []*listening{{setting: "LISTEN_ADDR", addr: cfg.ListenAddr, srv: api}}
	if cfg.MetricsAddr != "" {
		var limits *loginLimits
		if auth != nil {
			limits = auth.limits
		}
		mux := adminRoutes(log, m, limits, opt.pprof)
		if sess != nil {
			addAdminRoutes(mux, log, sess)
		}
		servers = append(servers, &listening{setting: "METRICS_ADDR", addr: cfg.MetricsAddr, srv: newHTTPServer(mux, errs)})
	}
	for i, l := range servers {
		if l.ln, err = net.Listen("tcp", l.addr); err != nil {
			for _, opened := range servers[:i] {
				opened.ln.Close()
			}
			return fmt.Errorf("listen on %s %s: %w", l.setting, l.addr, err)
		}
	}
	// Only now: a banner with a password for a server that failed to
	// start would mislead.
	fmt.Fprint(stdout, banner)
	attrs := []any{"addr", servers[0].ln.Addr().String(), "tls", cfg.TLSCert != nil, "users", usersSummary(cfg, users), "oidc", cfg.OIDC != nil,
		"default_grants", cfg.DefaultGrants.String(), "enabled_grants", cfg.EnabledGrants.String(),
		"cors_allowed_origins", corsSummary(cfg.CORSOrigins), "dev", cfg.Dev}
	if len(servers) > 1 {
		attrs = append(attrs, "metrics_addr", servers[1].ln.Addr().String())
	}
	if cfg.TLSCert != nil && cfg.TLSCert.Leaf != nil {
		attrs = append(attrs, "tls_expires", cfg.TLSCert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	log.Info("tokend listening", attrs...)

	errc := make(chan error, len(servers))
	for _, l := range servers {
		go func() {
			if l.srv.TLSConfig != nil {
				errc <- l.srv.ServeTLS(l.ln, "", "")
			} else {
				errc <- l.srv.Serve(l.ln)
			}
		}()
	}
	var serveErr error
	select {
	case serveErr = <-errc:
		serveErr = fmt.Errorf("serve: %w", serveErr)
	case <-ctx.Done():
	}
	log.Info("shutting down: no new connections; waiting for requests in flight", "timeout", cfg.ShutdownTimeout.String())
	if err := shutdown(servers, cfg.ShutdownTimeout); err != nil {
		return errors.Join(serveErr, err)
	}
	if serveErr == nil {
		log.Info("stopped")
	}
	return serveErr
}

// listening is one of tokend's HTTP servers: the main one, and the one
// METRICS_ADDR asks for.
type listening struct {
	setting, addr string
	srv           *http.Server
	ln            net.Listener
}

// newHTTPServer returns an http.Server with tokend's limits; its own
// errors (TLS handshakes, malformed requests) go to errs, which logs them
// as warnings, throttled.
func newHTTPServer(h http.Handler, errs *serverErrors) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          stdlog.New(errs, "", 0),
	}
}

// shutdown stops every server at once: they close their listeners and idle
// connections, and wait for requests in flight. Those still running after
// timeout are cut off, which is an error: their clients got no answer.
func shutdown(servers []*listening, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(servers))
	for i, l := range servers {
		wg.Go(func() { errs[i] = l.srv.Shutdown(ctx) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, l := range servers {
			l.srv.Close()
		}
		return fmt.Errorf("shutdown: requests still in flight after SHUTDOWN_TIMEOUT (%s) were cut off: %w", timeout, err)
	}
	return nil
}

// startSessions makes the login sessions (in Redis with REDIS_URL, else in
// memory) and says how they are set up.
func startSessions(ctx context.Context, log *slog.Logger, cfg *Config, rdb *redis.Client, auth *authStack, m *metrics, now func() time.Time) *sessions {
	sess := newSessions(newSessionStore(cfg, rdb), cfg.Sessions, cfg.CORSOrigins, auth.store, log, m, now)
	log.Info("login sessions", "store", sessionStoreName(rdb), "idle_timeout", cfg.Sessions.IdleTimeout.String(),
		"max_age", cfg.Sessions.MaxAge.String(), "samesite", sameSiteName(cfg.Sessions.SameSite))
	if rdb != nil {
		if err := sess.ping(ctx); err != nil {
			log.Warn("starting anyway: password logins work without Redis, and sessions start once it answers")
		}
	}
	return sess
}
