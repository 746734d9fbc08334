package main

import (
	"crypto/rand"
	"fmt"
	"net"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
)

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
// demo user with a random password, a loopback listener, and the banner
// that shows the password once.
func devSetup(lookup func(string) string) (*Config, *Users, string, error) {
	port := "8080"
	if addr := lookup("LISTEN_ADDR"); addr != "" {
		_, p, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, nil, "", fmt.Errorf("LISTEN_ADDR %q: %w", addr, err)
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
		DemoPage:                true,
		Dev:                     true,
	}
	cfg.DefaultGrants = cfg.EnabledGrants
	// Logging, metrics, TLS, the limits and the cache apply as in real
	// use; there is no users file to reload.
	s := &settings{lookup: lookup}
	s.operation(cfg)
	s.guard(cfg)
	// A front end on its own dev server (another port) needs CORS here too.
	cfg.CORSOrigins = s.origins("CORS_ALLOWED_ORIGINS")
	s.addresses(cfg)
	s.sessions(cfg) // the demo page renews through a session, kept in Redis too with REDIS_URL
	// So is a real identity provider, to try ID token logins beside the
	// demo user's password.
	cfg.OIDC = s.oidc()
	if err := s.err(); err != nil {
		return nil, nil, "", err
	}
	if cfg.MetricsAddr != "" { // loopback only, like the main listener
		_, p, _ := net.SplitHostPort(cfg.MetricsAddr) // checked by addresses
		cfg.MetricsAddr = net.JoinHostPort("127.0.0.1", p)
	}
	// 16 random base32 characters are 80 bits: no guessing reaches them,
	// so the demo user's hash needs no stretching and bcrypt's lowest cost
	// keeps start-up and logins (and the dummy hash, which follows the
	// users' cost) fast, even under the race detector on a busy machine.
	password := rand.Text()[:16]
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		return nil, nil, "", err
	}
	users := newUsers(map[string][]byte{devUser: hash})
	banner := []string{
		"DEVELOPMENT MODE: no .env is in use.",
		"Tokens are signed with FAKE credentials: Twilio will REJECT them.",
		"Listening on 127.0.0.1 only.",
		"",
		"Demo user: " + devUser,
		"Password:  " + password + "   (random, shown only now)",
		"",
		"Demo page:  http://127.0.0.1:" + port + "/",
		"",
		"Try:  http POST :" + port + "/token username=" + devUser + " password=" + password,
		"  or  curl -s -u " + devUser + ":" + password + " -X POST http://127.0.0.1:" + port + "/token",
		"",
		"For real use: cp .env.example .env, fill it in, add users with",
		"`tokend user add NAME`, and start without --dev.",
	}
	var b strings.Builder
	line := strings.Repeat("*", 72) + "\n"
	b.WriteString(line)
	for _, l := range banner {
		b.WriteString(strings.TrimRight("*  "+l, " ") + "\n")
	}
	b.WriteString(line)
	return cfg, users, b.String(), nil
}
