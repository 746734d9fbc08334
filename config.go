package main

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/joho/godotenv"

	"github.com/redis/go-redis/v9"
	"tokend/internal/passhash"
)

// Config is everything tokend reads from the environment and .env.
type Config struct {
	AccountSID   string
	APIKeySID    string
	APIKeySecret string // never printed

	TwiMLAppSID             string
	VoiceIncoming           bool
	PushCredentialSID       string // Voice
	ChatPushCredentialSID   string // Chat and Conversations
	ConversationsServiceSID string
	ChatServiceSID          string
	SyncServiceSID          string
	Region                  string
	VideoRoom               string

	// EnabledGrants are the grants a request may ask for; DefaultGrants,
	// a subset, are those a token carries when the request names none.
	EnabledGrants grantSet
	DefaultGrants grantSet

	TTL    time.Duration
	MaxTTL time.Duration

	UsersFile  string
	ListenAddr string

	// Operation: how tokend logs, where it serves /metrics, how long it
	// lets requests finish on shutdown, and its TLS certificate.
	LogFormat       string // "text" or "json"
	LogLevel        slog.Level
	MetricsAddr     string // empty: /metrics is served on ListenAddr
	ShutdownTimeout time.Duration
	TLSCertFile     string
	TLSKeyFile      string
	TLSCert         *tls.Certificate // loaded at start-up; nil: plain HTTP
	// CORSOrigins are the origins whose pages may call /token from a
	// browser, exactly as browsers send them, or just "*".
	CORSOrigins []string
	// DemoPage serves the demo page at GET /.
	DemoPage bool
	// Guessing and load limits, the verification cache and users reloads:
	// see the README's "Limits, cache and reloads".
	Limits              Limits
	TrustedProxies      []netip.Prefix
	AuthCacheTTL        time.Duration
	AuthCacheSize       int
	BcryptSlots         int // 0: one fewer than the CPUs (bcryptSlots)
	BcryptMaxWait       time.Duration
	UsersReloadInterval time.Duration
	// UsersDB reads users from PostgreSQL (config_users.go); HashLimits
	// bound the work one password check may do.
	UsersDB    UsersDBConfig
	HashLimits passhash.Limits

	// Sessions: see the README's "Sessions". RedisURL, when set, keeps
	// them in Redis (shared by replicas) under RedisPrefix.
	Sessions    SessionConfig
	RedisURL    string // may hold a password: never printed
	RedisPrefix string
	// OIDC is the identity provider login; nil when OIDC_ISSUER is unset.
	OIDC *OIDCConfig
	// Zoom enables POST /zoom/token; nil when it is off.
	Zoom *ZoomConfig

	// Dev marks development mode: fake credentials, loopback only.
	Dev bool
}

// ConfigError lists every problem found in the configuration at once, so an
// operator fixes them in one pass.
type ConfigError struct {
	Problems []string
}

func (e *ConfigError) Error() string {
	return "invalid configuration:\n  - " + strings.Join(e.Problems, "\n  - ")
}

// envLookup returns a lookup in which real environment variables win over
// the values of the env file at path. A missing file is not an error; found
// reports whether it existed.
func envLookup(path string, getenv func(string) string) (lookup func(string) string, found bool, err error) {
	file := map[string]string{}
	if path != "" {
		src, err := os.ReadFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, false, fmt.Errorf("read %s: %w", path, err)
		default:
			found = true
			if file, err = godotenv.UnmarshalBytes(src); err != nil {
				// godotenv's message quotes the file from the bad line
				// on, secrets included: never show it.
				return nil, false, fmt.Errorf("%s %s", path, envFileProblem(src))
			}
		}
	}
	return func(key string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return file[key]
	}, found, nil
}

// envFileProblem says where and why godotenv refused src, without quoting
// any of it. It follows godotenv's grammar: NAME=value (or NAME: value),
// optionally after "export"; a value in quotes may span lines; # starts a
// comment line.
func envFileProblem(src []byte) string {
	const fix = "; write NAME=value"
	if bytes.HasPrefix(src, []byte("\uFEFF")) {
		return "line 1: the file starts with a byte-order mark; save it as UTF-8 without one"
	}
	line, i := 1, 0
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r' }
	for i < len(src) {
		// A statement starts at the next non-space; comment lines are skipped.
		for ; i < len(src) && (isSpace(src[i]) || src[i] == '\n'); i++ {
			if src[i] == '\n' {
				line++
			}
		}
		if i == len(src) {
			break
		}
		if src[i] == '#' {
			for i < len(src) && src[i] != '\n' {
				i++
			}
			continue
		}
		if rest := src[i:]; bytes.HasPrefix(rest, []byte("export")) && len(rest) > 6 && isSpace(rest[6]) {
			i += 6
		}
		lineStart := bytes.LastIndexByte(src[:i], '\n') + 1
	name:
		for ; ; i++ {
			if i == len(src) {
				return fmt.Sprintf("line %d: a name with no = after it%s", line, fix)
			}
			switch c := src[i]; {
			case c == '=' || c == ':':
				i++
				break name
			case c == '\n':
				return fmt.Sprintf("line %d: a name with no = after it%s", line, fix)
			case isSpace(c) || c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			default:
				col := utf8.RuneCount(src[lineStart:i]) + 1
				return fmt.Sprintf("line %d: the name has a character other than a letter, digit, _ or . (column %d)%s", line, col, fix)
			}
		}
		for i < len(src) && isSpace(src[i]) {
			i++
		}
		if i < len(src) && (src[i] == '"' || src[i] == '\'') {
			quote, open := src[i], line
			for i++; ; i++ {
				if i == len(src) {
					return fmt.Sprintf("line %d: the value's opening %c is never closed; close it or remove it", open, quote)
				}
				if src[i] == '\n' {
					line++
				}
				if src[i] == quote && src[i-1] != '\\' {
					i++
					break
				}
			}
			continue // as godotenv: what follows the quote starts a statement
		}
		for i < len(src) && src[i] != '\n' {
			i++
		}
	}
	return "is not a valid env file (the parser's message is not shown, as it may quote values); write one NAME=value a line"
}

// usersFile is the path of the users file: USERS_FILE, or users.htpasswd.
func usersFile(lookup func(string) string) string {
	if v := strings.TrimSpace(lookup("USERS_FILE")); v != "" {
		return v
	}
	return "users.htpasswd"
}

// settings reads typed values and collects a problem for each bad one.
type settings struct {
	lookup   func(string) string
	problems []string
}

func (s *settings) problemf(format string, args ...any) {
	s.problems = append(s.problems, fmt.Sprintf(format, args...))
}

func (s *settings) str(key, def string) string {
	if v := strings.TrimSpace(s.lookup(key)); v != "" {
		return v
	}
	return def
}

var sidPattern = regexp.MustCompile(`^[A-Z]{2}[0-9a-f]{32}$`)

// sid reads a Twilio SID with the given two-letter prefix.
func (s *settings) sid(key, prefix, what string, required bool) string {
	v := s.str(key, "")
	switch {
	case v == "" && required:
		s.problemf("%s is not set: the %s (%s followed by 32 hex digits)", key, what, prefix)
	case v == "":
	case !sidPattern.MatchString(v) || !strings.HasPrefix(v, prefix):
		shown := strconv.Quote(v)
		if !sidLike.MatchString(v) || v == strings.TrimSpace(s.lookup("TWILIO_API_KEY_SECRET")) {
			// Most likely the secret, pasted in the wrong place.
			shown = fmt.Sprintf("not a SID (%d characters, not shown in case it is a secret)", utf8.RuneCountInString(v))
		}
		s.problemf("%s is %s: the %s must be %s followed by 32 lowercase hex digits%s", key, shown, what, prefix, sidKindHint(v))
	}
	return v
}

// sidLike matches what is worth quoting back in an error about a SID: two
// letters and hex digits. An API key secret (32 letters and digits of any
// kind) all but never does.
var sidLike = regexp.MustCompile(`^[A-Za-z]{2}[0-9a-fA-F]*$`)

func (s *settings) boolean(key string, def bool) bool {
	v := s.str(key, "")
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		s.problemf("%s is %q: use true or false", key, v)
		return def
	}
	return b
}

// seconds reads a whole number of seconds in [lo, hi].
func (s *settings) seconds(key string, def, lo, hi int) time.Duration {
	v := s.str(key, "")
	if v == "" {
		return time.Duration(def) * time.Second
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		s.problemf("%s is %q: use a whole number of seconds from %d to %d", key, v, lo, hi)
		return time.Duration(def) * time.Second
	}
	return time.Duration(n) * time.Second
}

// integer reads a whole number in [lo, hi].
func (s *settings) integer(key string, def, lo, hi int) int {
	v := s.str(key, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		s.problemf("%s is %q: use a whole number from %d to %d", key, v, lo, hi)
		return def
	}
	return n
}

// duration reads a Go duration ("5m", "1.5s") or a whole number of
// seconds, either 0 (when zeroOK) or in [lo, hi].
func (s *settings) duration(key string, def, lo, hi time.Duration, zeroOK bool) time.Duration {
	v := s.str(key, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		n, nerr := strconv.Atoi(v)
		d, err = time.Duration(n)*time.Second, nerr
	}
	if err != nil || (d != 0 || !zeroOK) && (d < lo || d > hi) {
		zero := ""
		if zeroOK {
			zero = "0 (off) or "
		}
		example := "90s or 5m"
		if hi < 5*time.Minute {
			example = "500ms or 2s"
		}
		s.problemf("%s is %q: use %sa duration from %s to %s, such as %s", key, v, zero, lo, hi, example)
		return def
	}
	return d
}

var regionPattern = regexp.MustCompile(`^[a-z]{2}[0-9]$`)

// loadConfig reads and validates the configuration. The error, a
// *ConfigError, names every problem; the secret's value is never in it.
func loadConfig(lookup func(string) string) (*Config, error) {
	s := &settings{lookup: lookup}
	c := &Config{
		AccountSID: s.sid("TWILIO_ACCOUNT_SID", "AC", "Account SID", true),
		APIKeySID:  s.sid("TWILIO_API_KEY_SID", "SK", "API key SID", true),

		TwiMLAppSID:             s.sid("TWILIO_TWIML_APP_SID", "AP", "TwiML app SID", false),
		VoiceIncoming:           s.boolean("TWILIO_VOICE_INCOMING", true),
		PushCredentialSID:       s.sid("TWILIO_PUSH_CREDENTIAL_SID", "CR", "push credential SID", false),
		ChatPushCredentialSID:   s.sid("TWILIO_CHAT_PUSH_CREDENTIAL_SID", "CR", "push credential SID", false),
		ConversationsServiceSID: s.sid("TWILIO_CONVERSATIONS_SERVICE_SID", "IS", "Conversations service SID", false),
		ChatServiceSID:          s.sid("TWILIO_CHAT_SERVICE_SID", "IS", "Chat service SID", false),
		SyncServiceSID:          s.sid("TWILIO_SYNC_SERVICE_SID", "IS", "Sync service SID", false),
		Region:                  s.str("TWILIO_REGION", ""),
		VideoRoom:               s.str("VIDEO_ROOM", ""),

		MaxTTL:     s.seconds("TOKEN_MAX_TTL", 86400, 1, 86400),
		UsersFile:  usersFile(lookup),
		ListenAddr: s.str("LISTEN_ADDR", ":8080"),

		CORSOrigins: s.origins("CORS_ALLOWED_ORIGINS"),
		DemoPage:    s.boolean("DEMO_PAGE", false),
	}
	// The default lifetime follows a lower ceiling, so that setting
	// TOKEN_MAX_TTL alone never blames a TOKEN_TTL nobody set.
	c.TTL = s.seconds("TOKEN_TTL", min(3600, int(c.MaxTTL/time.Second)), 1, 86400)
	if c.TTL > c.MaxTTL {
		s.problemf("TOKEN_TTL (%d) is above TOKEN_MAX_TTL (%d)", c.TTL/time.Second, c.MaxTTL/time.Second)
	}
	if secret := strings.TrimSpace(lookup("TWILIO_API_KEY_SECRET")); secret == "" {
		s.problemf("TWILIO_API_KEY_SECRET is not set: the secret shown once when the API key was created")
	} else {
		c.APIKeySecret = secret
	}
	if c.Region != "" && !regionPattern.MatchString(c.Region) {
		s.problemf("TWILIO_REGION is %q: use a Twilio region such as us1, ie1 or au1", c.Region)
	}
	if utf8.RuneCountInString(c.VideoRoom) > maxVideoRoom {
		s.problemf("VIDEO_ROOM is longer than %d characters, the most Twilio Video allows", maxVideoRoom)
	}
	c.EnabledGrants, c.DefaultGrants = s.grants(c)
	c.Zoom = s.zoom()
	s.operation(c)
	s.addresses(c)
	s.guard(c)
	s.usersDatabase(c)
	s.sessions(c)
	c.OIDC = s.oidc()
	if err := s.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// oidc reads the OIDC_ settings, or returns nil when OIDC_ISSUER is unset.
func (s *settings) oidc() *OIDCConfig {
	issuer := s.str("OIDC_ISSUER", "")
	if issuer == "" {
		// Every other OIDC_ setting means nothing without the issuer:
		// taken from knownSettings, so that a new one is checked too.
		for _, key := range allSettings() {
			if strings.HasPrefix(key, "OIDC_") && key != "OIDC_ISSUER" && s.str(key, "") != "" {
				s.problemf("%s is set but OIDC_ISSUER is not: set OIDC_ISSUER to turn on ID token logins, or remove %s", key, key)
			}
		}
		return nil
	}
	c := &OIDCConfig{
		Issuer:        issuer,
		Audience:      s.str("OIDC_AUDIENCE", ""),
		IdentityClaim: s.str("OIDC_IDENTITY_CLAIM", "sub"),
		IdentityMap:   strings.ToLower(s.str("OIDC_IDENTITY_MAP", "none")),
		ClockSkew:     s.duration("OIDC_CLOCK_SKEW", time.Minute, 0, 5*time.Minute, true),
		JWKSRefresh:   s.duration("OIDC_JWKS_REFRESH", 15*time.Minute, time.Minute, 24*time.Hour, false),
	}
	if u, err := url.Parse(issuer); err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" ||
		(u.Scheme != "https" && !(u.Scheme == "http" && isLoopbackHost(u.Hostname()))) {
		s.problemf("OIDC_ISSUER is %q: use the provider's issuer URL exactly as its ID tokens' iss claim says it, with https (http only for a loopback host)", issuer)
	}
	if c.Audience == "" {
		s.problemf("OIDC_AUDIENCE is not set: the app's client ID at the identity provider; ID tokens for other apps are refused")
	}
	if c.IdentityMap != "none" && c.IdentityMap != "escape" {
		s.problemf("OIDC_IDENTITY_MAP is %q: use none (refuse identities Twilio does not accept) or escape (map them, see the README)", c.IdentityMap)
	}
	if raw := s.str("OIDC_REQUIRED_CLAIMS", ""); raw != "" {
		for _, part := range strings.Split(raw, ",") {
			name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
			if !ok || name == "" || value == "" {
				s.problemf("OIDC_REQUIRED_CLAIMS has %q: use NAME=VALUE pairs separated by commas, such as email_verified=true,groups=twilio", part)
				continue
			}
			c.RequiredClaims = append(c.RequiredClaims, requiredClaim{name: strings.TrimSpace(name), value: strings.TrimSpace(value)})
		}
	}
	if raw := s.str("OIDC_ALLOWED_IDENTITIES", ""); raw != "" {
		c.AllowedIdentities = map[string]bool{}
		for _, id := range strings.Split(raw, ",") {
			if id = strings.TrimSpace(id); id != "" {
				c.AllowedIdentities[id] = true
			}
		}
	}
	c.Algorithms = asymmetricAlgorithms
	if raw := s.str("OIDC_ALGORITHMS", ""); raw != "" {
		c.Algorithms = nil
		for _, a := range strings.Split(raw, ",") {
			a = strings.TrimSpace(a)
			if !slices.Contains(asymmetricAlgorithms, a) {
				s.problemf("OIDC_ALGORITHMS has %q: use asymmetric JWS algorithms (%s); HMAC and none are never accepted", a, strings.Join(asymmetricAlgorithms, ", "))
				continue
			}
			c.Algorithms = append(c.Algorithms, a)
		}
	}
	return c
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// grants works out which grants the configuration supports and which a
// token carries by default, and checks TOKEN_GRANTS against them.
func (s *settings) grants(c *Config) (enabled, def grantSet) {
	// Video needs nothing; every other grant needs the settings it draws on.
	needs := map[grantName]string{}
	enabled = grantBit(grantVideo)
	def = grantBit(grantVideo)
	if c.TwiMLAppSID != "" || c.VoiceIncoming {
		enabled |= grantBit(grantVoice)
	} else {
		needs[grantVoice] = "TWILIO_TWIML_APP_SID or TWILIO_VOICE_INCOMING=true"
	}
	if c.TwiMLAppSID != "" {
		def |= grantBit(grantVoice)
	}
	for _, g := range []struct {
		name grantName
		sid  string
		key  string
	}{
		{grantConversations, c.ConversationsServiceSID, "TWILIO_CONVERSATIONS_SERVICE_SID"},
		{grantChat, c.ChatServiceSID, "TWILIO_CHAT_SERVICE_SID"},
		{grantSync, c.SyncServiceSID, "TWILIO_SYNC_SERVICE_SID"},
	} {
		if g.sid == "" {
			needs[g.name] = g.key
			continue
		}
		enabled |= grantBit(g.name)
		// A token has one chat key: when both services are set,
		// Conversations is the default and chat must be asked for.
		if g.name != grantChat || !def.has(grantConversations) {
			def |= grantBit(g.name)
		}
	}
	raw := s.str("TOKEN_GRANTS", "")
	if raw == "" {
		return enabled, def
	}
	set, err := parseGrantNames(strings.Split(raw, ","))
	if err != nil {
		s.problemf("TOKEN_GRANTS is %q: %v", raw, err)
		return enabled, def
	}
	if set == 0 {
		s.problemf("TOKEN_GRANTS is %q: it names no grant; leave it empty for the default (%s)", raw, def)
		return enabled, def
	}
	for _, g := range allGrantNames {
		if set.has(g) && !enabled.has(g) {
			s.problemf("TOKEN_GRANTS includes %s, which needs %s", g, needs[g])
		}
	}
	return enabled, set
}

// operation reads the settings of logs, metrics, shutdown and TLS, which
// development mode honours too. The certificate is loaded now, so that a
// bad one stops start-up instead of failing the first handshake.
func (s *settings) operation(c *Config) {
	c.LogFormat = strings.ToLower(s.str("LOG_FORMAT", "text"))
	if c.LogFormat != "text" && c.LogFormat != "json" {
		s.problemf("LOG_FORMAT is %q: use text or json", c.LogFormat)
	}
	if v := s.str("LOG_LEVEL", "info"); c.LogLevel.UnmarshalText([]byte(v)) != nil {
		s.problemf("LOG_LEVEL is %q: use debug, info, warn or error", v)
	}
	c.MetricsAddr = s.str("METRICS_ADDR", "") // checked with LISTEN_ADDR (addresses)
	c.ShutdownTimeout = s.seconds("SHUTDOWN_TIMEOUT", 15, 1, 600)
	c.TLSCertFile, c.TLSKeyFile = s.str("TLS_CERT_FILE", ""), s.str("TLS_KEY_FILE", "")
	switch {
	case c.TLSCertFile == "" && c.TLSKeyFile == "":
	case c.TLSCertFile == "" || c.TLSKeyFile == "":
		s.problemf("TLS_CERT_FILE and TLS_KEY_FILE go together: set both to serve HTTPS, or neither")
	default:
		cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
		if err != nil {
			s.problemf("TLS_CERT_FILE and TLS_KEY_FILE: %v", err)
			return
		}
		c.TLSCert = &cert
	}
}

func (s *settings) err() error {
	if len(s.problems) == 0 {
		return nil
	}
	return &ConfigError{Problems: s.problems}
}

// withEnvFileHint adds to a configuration error that the env file was not
// found, the usual cause on a fresh clone. Start-up, `tokend check` and
// `tokend mint` all say it, in the same words.
func withEnvFileHint(err error, envFile string, found bool) error {
	var cerr *ConfigError
	if errors.As(err, &cerr) && !found {
		cerr.Problems = append(cerr.Problems, fmt.Sprintf("no %s file was found: copy .env.example to .env and fill it in, or try development mode with `tokend serve --dev` (what `make run` starts on a fresh clone)", envFile))
	}
	return err
}

// maxBcryptWait is the longest BCRYPT_MAX_WAIT: half the servers' write
// timeout, which runs from the end of the request's headers. A login that
// waited longer would still check its hash and mint, but its answer would
// meet a closed connection: the client gets nothing, and a token is spent.
const maxBcryptWait = writeTimeout / 2

// guard reads the login limits, the verification cache and reload settings.
func (s *settings) guard(c *Config) {
	c.Limits = Limits{
		UserFailures:          s.integer("LIMIT_USER_FAILURES", 10, 1, 100000),
		UserFailuresPerHour:   float64(s.integer("LIMIT_USER_FAILURES_PER_HOUR", 90, 1, 1000000)),
		AddrFailures:          s.integer("LIMIT_ADDR_FAILURES", 30, 1, 100000),
		AddrFailuresPerHour:   float64(s.integer("LIMIT_ADDR_FAILURES_PER_HOUR", 300, 1, 1000000)),
		AddrRequests:          s.integer("LIMIT_ADDR_REQUESTS", 30, 1, 1000000),
		AddrRequestsPerSecond: float64(s.integer("LIMIT_ADDR_REQUESTS_PER_SECOND", 10, 1, 1000000)),
		MaxKeys:               s.integer("LIMIT_MAX_KEYS", 50000, 100, 10000000),
	}
	proxies, err := parseTrustedProxies(s.str("TRUSTED_PROXIES", ""))
	if err != nil {
		s.problemf("TRUSTED_PROXIES: %v", err)
	}
	c.TrustedProxies = proxies
	c.AuthCacheTTL = s.duration("AUTH_CACHE_TTL", 5*time.Minute, time.Second, 24*time.Hour, true)
	c.AuthCacheSize = s.integer("AUTH_CACHE_SIZE", 10000, 1, 10000000)
	c.BcryptSlots = s.integer("BCRYPT_SLOTS", 0, 1, runtime.GOMAXPROCS(0))
	c.BcryptMaxWait = s.duration("BCRYPT_MAX_WAIT", 2*time.Second, 10*time.Millisecond, maxBcryptWait, false)
	c.UsersReloadInterval = s.duration("USERS_RELOAD_INTERVAL", 2*time.Second, 100*time.Millisecond, time.Hour, true)
}

// sessions reads the login sessions' settings and where they are kept.
func (s *settings) sessions(c *Config) {
	c.Sessions = SessionConfig{
		IdleTimeout: s.duration("SESSION_IDLE_TIMEOUT", 2*time.Hour, time.Minute, 30*24*time.Hour, false),
		MaxAge:      s.duration("SESSION_MAX_AGE", 12*time.Hour, time.Minute, 30*24*time.Hour, false),
		PerUser:     s.integer("SESSION_MAX_PER_USER", 10, 1, 1000),
		MaxSessions: s.integer("SESSION_MAX", 10000, 1, 10000000),
		SameSite:    http.SameSiteStrictMode,
	}
	if c.Sessions.IdleTimeout > c.Sessions.MaxAge {
		s.problemf("SESSION_IDLE_TIMEOUT (%s) is above SESSION_MAX_AGE (%s): a session ends at SESSION_MAX_AGE whatever its use", c.Sessions.IdleTimeout, c.Sessions.MaxAge)
	}
	switch v := strings.ToLower(s.str("SESSION_SAMESITE", "strict")); v {
	case "strict":
	case "lax":
		c.Sessions.SameSite = http.SameSiteLaxMode
	case "none":
		c.Sessions.SameSite = http.SameSiteNoneMode
		if len(c.CORSOrigins) == 0 || corsAllowsAll(c.CORSOrigins) {
			s.problemf("SESSION_SAMESITE is none, which sends the session cookie from pages of other sites: only for apps on another site, so list their origins in CORS_ALLOWED_ORIGINS (not *), or use strict (the default) or lax")
		}
	default:
		s.problemf("SESSION_SAMESITE is %q: use strict (the default), lax, or none", v)
	}
	c.RedisURL = s.str("REDIS_URL", "")
	if c.RedisURL != "" {
		// The parser's error may quote the URL, and with it a password.
		if _, err := redis.ParseURL(c.RedisURL); err != nil {
			s.problemf("REDIS_URL is not a Redis URL: use redis://[:PASSWORD@]HOST:PORT[/DB], or rediss:// for TLS")
		}
	}
	c.RedisPrefix = s.str("REDIS_PREFIX", defaultRedisPrefix)
}

// loadAll reads the configuration and the users file, and reports every
// problem with either in one error. The users are nil when no users file
// is read: the users are in the user database, or passwords are off.
func loadAll(lookup func(string) string) (*Config, *Users, error) {
	cfg, err := loadConfig(lookup)
	var cerr *ConfigError
	if err != nil && !errors.As(err, &cerr) {
		return nil, nil, err
	}
	if strings.TrimSpace(lookup("USERS_DATABASE_URL")) != "" {
		// The users are in the database: the users file is not read.
		if cerr != nil {
			return nil, nil, cerr
		}
		return cfg, nil, nil
	}
	path := usersFile(lookup)
	users, uerr := loadUsers(path)
	if cfg != nil && cfg.OIDC != nil && errors.Is(uerr, fs.ErrNotExist) && strings.TrimSpace(lookup("USERS_FILE")) == "" {
		// IdP-only: with OIDC on and no users file, passwords are off.
		return cfg, nil, nil
	}
	if cfg != nil && cfg.OIDC != nil && uerr == nil && users.Len() == 0 {
		// Passwords on, with no users yet: ID tokens work meanwhile.
		return cfg, users, nil
	}
	if uerr != nil {
		if cerr == nil {
			cerr = &ConfigError{}
		}
		cerr.Problems = append(cerr.Problems, "USERS_FILE: "+uerr.Error()+usersFileAdvice(uerr, path))
	} else if users.Len() == 0 {
		if cerr == nil {
			cerr = &ConfigError{}
		}
		cerr.Problems = append(cerr.Problems, fmt.Sprintf("USERS_FILE %s has no users: add one with `tokend user add NAME`", path))
	}
	if cerr != nil {
		return nil, nil, cerr
	}
	return cfg, users, nil
}

// defaultRedisPrefix starts tokend's Redis keys when REDIS_PREFIX is unset;
// tokend session, which talks to Redis without loading the whole
// configuration, must use the same.
const defaultRedisPrefix = "tokend:"
