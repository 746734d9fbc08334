package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"
)

type serveOptions struct {
	dev      bool
	envFile  string
	envFound bool
}

// serve loads the configuration and users, then serves until ctx is done.
func serve(ctx context.Context, lookup func(string) string, opt serveOptions, stdout, stderr io.Writer) error {
	log := slog.New(slog.NewTextHandler(stderr, nil))
	var (
		cfg   *Config
		users *Users
		err   error
	)
	if opt.dev {
		cfg, users, err = devSetup(lookup, stdout)
	} else {
		cfg, users, err = loadAll(lookup)
		var cerr *ConfigError
		if errors.As(err, &cerr) && !opt.envFound {
			cerr.Problems = append(cerr.Problems, fmt.Sprintf("no %s file was found: copy .env.example to .env and fill it in, or try development mode with `tokend serve --dev` (what `make run` starts on a fresh clone)", opt.envFile))
		}
	}
	if err != nil {
		return err
	}
	auth, err := newAuthStack(cfg, users, bcryptSlots(cfg), time.Now)
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
	minter := NewMinter(cfg.AccountSID, cfg.APIKeySID, cfg.APIKeySecret, cfg.Region)
	handler := NewServer(log, cfg, minter, auth, time.Now)

	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("listen on LISTEN_ADDR %s: %w", cfg.ListenAddr, err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("tokend listening", "addr", ln.Addr().String(), "users", users.Len(),
		"default_grants", cfg.DefaultGrants.String(), "enabled_grants", cfg.EnabledGrants.String(), "dev", cfg.Dev)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// loadAll reads the configuration and the users file, and reports every
// problem with either in one error.
func loadAll(lookup func(string) string) (*Config, *Users, error) {
	cfg, err := loadConfig(lookup)
	var cerr *ConfigError
	if err != nil && !errors.As(err, &cerr) {
		return nil, nil, err
	}
	usersFile := lookup("USERS_FILE")
	if cfg != nil {
		usersFile = cfg.UsersFile
	} else if usersFile == "" {
		usersFile = "users.htpasswd"
	}
	users, uerr := loadUsers(usersFile)
	if uerr != nil {
		if cerr == nil {
			cerr = &ConfigError{}
		}
		cerr.Problems = append(cerr.Problems, fmt.Sprintf("USERS_FILE: %v (add users with `tokend user add NAME`)", uerr))
	} else if users.Len() == 0 {
		if cerr == nil {
			cerr = &ConfigError{}
		}
		cerr.Problems = append(cerr.Problems, fmt.Sprintf("USERS_FILE %s has no users: add one with `tokend user add NAME`", usersFile))
	}
	if cerr != nil {
		return nil, nil, cerr
	}
	return cfg, users, nil
}

// The development mode's throw-away credentials: obviously fake, so that
// nobody mistakes them for real ones, and rejected by Twilio.
const (
	devAccountSID       = "ACdeadbeefdeadbeefdeadbeefdeadbeef"
	devAPIKeySID        = "SKdeadbeefdeadbeefdeadbeefdeadbeef"
	devTwiMLAppSID      = "APdeadbeefdeadbeefdeadbeefdeadbeef"
	devConversationsSID = "ISdeadbeefdeadbeefdeadbeefdeadbee1"
	devSyncSID          = "ISdeadbeefdeadbeefdeadbeefdeadbee2"
	devUser             = "demo"
)

// devSetup builds development mode: fake credentials, every grant, one
// demo user with a random password shown once, and a loopback listener.
func devSetup(lookup func(string) string, stdout io.Writer) (*Config, *Users, error) {
	port := "8080"
	if addr := lookup("LISTEN_ADDR"); addr != "" {
		_, p, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, nil, fmt.Errorf("LISTEN_ADDR %q: %w", addr, err)
		}
		port = p
	}
	cfg := &Config{
		AccountSID:              devAccountSID,
		APIKeySID:               devAPIKeySID,
		APIKeySecret:            rand.Text(),
		TwiMLAppSID:             devTwiMLAppSID,
		VoiceIncoming:           true,
		ConversationsServiceSID: devConversationsSID,
		SyncServiceSID:          devSyncSID,
		EnabledGrants:           grantBit(grantVideo) | grantBit(grantVoice) | grantBit(grantConversations) | grantBit(grantSync),
		TTL:                     time.Hour,
		MaxTTL:                  maxTokenTTL,
		ListenAddr:              net.JoinHostPort("127.0.0.1", port),
		Dev:                     true,
	}
	// The limits, cache and reload settings apply as in real use; there
	// is no users file to reload.
	s := &settings{lookup: lookup}
	s.guard(cfg)
	if err := s.err(); err != nil {
		return nil, nil, err
	}
	cfg.DefaultGrants = cfg.EnabledGrants
	password := rand.Text()[:16]
	hash, err := bcrypt.GenerateFromPassword([]byte(password), userCost)
	if err != nil {
		return nil, nil, err
	}
	users := &Users{hashes: map[string][]byte{devUser: hash}}
	banner := []string{
		"DEVELOPMENT MODE: no .env is in use.",
		"Tokens are signed with FAKE credentials: Twilio will REJECT them.",
		"Listening on 127.0.0.1 only.",
		"",
		"Demo user: " + devUser,
		"Password:  " + password + "   (random, shown only now)",
		"",
		"Try:  http POST :" + port + "/token username=" + devUser + " password=" + password,
		"  or  curl -s -u " + devUser + ":" + password + " -X POST http://127.0.0.1:" + port + "/token",
		"",
		"For real use: cp .env.example .env, fill it in, add users with",
		"`tokend user add NAME`, and start without --dev.",
	}
	line := strings.Repeat("*", 72)
	fmt.Fprintln(stdout, line)
	for _, l := range banner {
		fmt.Fprintln(stdout, "*  "+l)
	}
	fmt.Fprintln(stdout, line)
	return cfg, users, nil
}
