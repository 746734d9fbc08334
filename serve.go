package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

type serveOptions struct {
	dev      bool
	envFile  string
	envFound bool
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
	var (
		cfg    *Config
		users  *Users
		banner string
		err    error
	)
	if opt.dev {
		cfg, users, banner, err = devSetup(lookup)
	} else {
		cfg, users, err = loadAll(lookup)
		err = withEnvFileHint(err, opt.envFile, opt.envFound)
	}
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	if corsAllowsAll(cfg.CORSOrigins) {
		log.Warn("CORS_ALLOWED_ORIGINS is *: a page on any web site may ask for tokens with a login it holds; list your apps' origins instead")
	}
	if cfg.Zoom != nil {
		for _, warning := range cfg.Zoom.warnings() {
			log.Warn(warning)
		}
	}
	auth, err := newAuthStack(cfg, users, bcryptSlots(cfg), opt.now)
	if err != nil {
		return err
	}
	log.Info("login guard", "bcrypt_slots", bcryptSlots(cfg), "auth_cache_ttl", cfg.AuthCacheTTL.String(),
		"users_reload_interval", cfg.UsersReloadInterval.String(), "trusted_proxies", len(cfg.TrustedProxies))
	// SIGHUP reloads the users file, as daemons do; the file is watched too.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	stopReloads := newUsersReloader(log, cfg.UsersFile, auth).start(ctx, hup, cfg.UsersReloadInterval)
	defer stopReloads()
	m := newMetrics()
	handler := NewServer(log, cfg, auth, auth.store, m, opt.now)

	api := newHTTPServer(handler, log)
	if cfg.TLSCert != nil {
		api.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*cfg.TLSCert}}
	}
	servers := []*listening{{setting: "LISTEN_ADDR", addr: cfg.ListenAddr, srv: api}}
	if cfg.MetricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", handleMetrics(log, m))
		servers = append(servers, &listening{setting: "METRICS_ADDR", addr: cfg.MetricsAddr, srv: newHTTPServer(mux, log)})
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
	attrs := []any{"addr", servers[0].ln.Addr().String(), "tls", cfg.TLSCert != nil, "users", users.Len(),
		"default_grants", cfg.DefaultGrants.String(), "enabled_grants", cfg.EnabledGrants.String(), "dev", cfg.Dev}
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
// errors (TLS handshakes, malformed requests) go to log as warnings.
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
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
