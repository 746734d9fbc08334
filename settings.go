package main

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/joho/godotenv"
)

// knownSettings is every setting tokend reads, in the order `tokend help`
// lists them: the one table that the unknown-setting warning, the help and
// the tests (which check it against what loadConfig reads, .env.example and
// the README) all use. A new setting goes here.
var knownSettings = [][]string{
	{"TWILIO_ACCOUNT_SID", "TWILIO_API_KEY_SID", "TWILIO_API_KEY_SECRET"},
	{"TWILIO_TWIML_APP_SID", "TWILIO_VOICE_INCOMING", "TWILIO_PUSH_CREDENTIAL_SID"},
	{"TWILIO_CHAT_PUSH_CREDENTIAL_SID"},
	{"TWILIO_CONVERSATIONS_SERVICE_SID", "TWILIO_CHAT_SERVICE_SID", "TWILIO_SYNC_SERVICE_SID"},
	{"TWILIO_REGION", "VIDEO_ROOM", "TOKEN_GRANTS", "TOKEN_TTL", "TOKEN_MAX_TTL"},
	{"USERS_FILE", "LISTEN_ADDR", "CORS_ALLOWED_ORIGINS", "DEMO_PAGE"},
	{"LOG_FORMAT", "LOG_LEVEL", "METRICS_ADDR", "SHUTDOWN_TIMEOUT", "TLS_CERT_FILE", "TLS_KEY_FILE"},
	{"TRUSTED_PROXIES", "LIMIT_USER_FAILURES", "LIMIT_USER_FAILURES_PER_HOUR"},
	{"LIMIT_ADDR_FAILURES", "LIMIT_ADDR_FAILURES_PER_HOUR", "LIMIT_ADDR_REQUESTS"},
	{"LIMIT_ADDR_REQUESTS_PER_SECOND", "LIMIT_MAX_KEYS", "AUTH_CACHE_TTL", "AUTH_CACHE_SIZE"},
	{"BCRYPT_SLOTS", "BCRYPT_MAX_WAIT", "USERS_RELOAD_INTERVAL"},
	{"USERS_DATABASE_URL", "USERS_QUERY", "USERS_SAMPLE_QUERY", "USERS_QUERY_TIMEOUT", "HASH_MEMORY_MIB"},
	{"SESSION_IDLE_TIMEOUT", "SESSION_MAX_AGE", "SESSION_SAMESITE", "SESSION_MAX_PER_USER"},
	{"SESSION_MAX", "REDIS_URL", "REDIS_PREFIX"},
	{"OIDC_ISSUER", "OIDC_AUDIENCE", "OIDC_IDENTITY_CLAIM", "OIDC_IDENTITY_MAP"},
	{"OIDC_REQUIRED_CLAIMS", "OIDC_ALLOWED_IDENTITIES", "OIDC_ALGORITHMS", "OIDC_CLOCK_SKEW"},
	{"OIDC_JWKS_REFRESH"},
	{"ZOOM_VIDEO_SDK_KEY", "ZOOM_VIDEO_SDK_SECRET", "ZOOM_HOSTS", "ZOOM_SESSIONS", "ZOOM_SESSION"},
	{"ZOOM_TTL", "ZOOM_MAX_TTL"},
}

// settingPrefixes are the prefixes of names that look meant for tokend: a
// name with one of them that tokend does not know is most likely a typo
// (CORS_ALLOWED_ORIGIN) or a setting of another tool put in the wrong
// place: the first word of every known setting.
func settingPrefixes() []string {
	var prefixes []string
	for _, name := range allSettings() {
		if p, _, ok := strings.Cut(name, "_"); ok && !slices.Contains(prefixes, p+"_") {
			prefixes = append(prefixes, p+"_")
		}
	}
	return prefixes
}

// allSettings is knownSettings as one list.
func allSettings() []string {
	return slices.Concat(knownSettings...)
}

// settingHints are names other Twilio and Zoom tools use, with what tokend
// calls them: closer than any spelling distance can tell.
var settingHints = map[string]string{
	"TWILIO_API_KEY":    "tokend calls it TWILIO_API_KEY_SID",
	"TWILIO_API_SECRET": "tokend calls it TWILIO_API_KEY_SECRET",
	"TWILIO_AUTH_TOKEN": "tokend does not read it: tokens are signed with an API key (TWILIO_API_KEY_SID and TWILIO_API_KEY_SECRET), never the Auth Token",
	// Many Zoom apps' names, often for Meeting SDK credentials.
	"ZOOM_SDK_KEY":    "tokend calls it ZOOM_VIDEO_SDK_KEY (a Video SDK app's key: a Meeting SDK key does not work)",
	"ZOOM_SDK_SECRET": "tokend calls it ZOOM_VIDEO_SDK_SECRET (a Video SDK app's secret: a Meeting SDK secret does not work)",
}

// unknownSettings returns a warning for each name in names that has one of
// tokend's prefixes but is not a setting tokend knows, with the closest
// known name. from says where the names were found (".env", "the
// environment").
func unknownSettings(names []string, from string) []string {
	known := allSettings()
	prefixes := settingPrefixes()
	var warnings []string
	for _, name := range slices.Sorted(slices.Values(names)) {
		if slices.Contains(known, name) || !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(name, p) }) {
			continue
		}
		w := fmt.Sprintf("%s in %s is not a tokend setting and is ignored", name, from)
		if hint, ok := settingHints[name]; ok {
			w += ": " + hint
		} else if near := closestSetting(name, known); near != "" {
			w += "; did you mean " + near + "?"
		} else {
			w += " (`tokend help` lists the settings)"
		}
		warnings = append(warnings, w)
	}
	return warnings
}

// closestSetting returns the known name nearest to name, if it is near
// enough to be a typo: at most a third of its letters differ.
func closestSetting(name string, known []string) string {
	best, bestDist := "", len(name)/3+1
	for _, k := range known {
		if d := editDistance(name, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes
// (setting names are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// environKey carries the process environment's names in run's context.
type environKey struct{}

// withEnviron gives run the names in the process environment, in
// os.Environ's form, so that it can warn about those it does not know;
// getenv alone can only look names up. main passes os.Environ().
func withEnviron(ctx context.Context, environ []string) context.Context {
	return context.WithValue(ctx, environKey{}, environNames(environ))
}

// environFrom returns the names withEnviron put in ctx, or none.
func environFrom(ctx context.Context) []string {
	names, _ := ctx.Value(environKey{}).([]string)
	return names
}

// envFileNames returns the names the env file at path sets; envLookup has
// reported any error in it already.
func envFileNames(path string, found bool) []string {
	if !found {
		return nil
	}
	file, err := godotenv.Read(path)
	if err != nil {
		return nil
	}
	return slices.Collect(maps.Keys(file))
}

// environNames returns the names in an os.Environ-style list.
func environNames(environ []string) []string {
	names := make([]string, 0, len(environ))
	for _, kv := range environ {
		if name, _, ok := strings.Cut(kv, "="); ok && name != "" {
			names = append(names, name)
		}
	}
	return names
}

// sidKinds names what each SID prefix identifies, so that a SID in the
// wrong setting is called what it is.
var sidKinds = map[string]string{
	"AC": "an Account SID",
	"SK": "an API key SID",
	"AP": "a TwiML app SID",
	"IS": "a service SID (Conversations, Chat or Sync)",
	"CR": "a push credential SID",
	"PN": "a phone number SID",
	"MG": "a Messaging service SID",
	"VA": "a Verify service SID",
}

// sidKindHint says what a well-formed SID with the wrong prefix is, or "".
func sidKindHint(v string) string {
	if !sidPattern.MatchString(v) {
		return ""
	}
	if kind, ok := sidKinds[v[:2]]; ok {
		return "; this is " + kind
	}
	return ""
}

var (
	// An API key secret is 32 letters and digits, upper and lower case.
	apiKeySecretShape = regexp.MustCompile(`^[A-Za-z0-9]{32}$`)
	// An Auth Token is 32 lowercase hex digits: an API key secret has
	// upper-case letters and letters past f, so one of this shape is
	// almost surely an Auth Token pasted in the wrong place.
	authTokenShape = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

// secretWarnings checks the shape of the API key secret, which Twilio
// alone can verify: a wrong one only shows when every token is refused.
func secretWarnings(secret string) []string {
	switch {
	case secret == "":
		return nil
	case authTokenShape.MatchString(secret):
		return []string{"TWILIO_API_KEY_SECRET looks like an Auth Token (32 lowercase hex digits): Twilio refuses tokens signed with one (\"signature does not match\"); use the secret shown when the API key was created, 32 letters and digits"}
	case sidPattern.MatchString(secret):
		return []string{fmt.Sprintf("TWILIO_API_KEY_SECRET looks like a SID (%s…), not a secret: use the secret shown when the API key was created, 32 letters and digits", secret[:2])}
	case !apiKeySecretShape.MatchString(secret):
		return []string{fmt.Sprintf("TWILIO_API_KEY_SECRET is %d characters, not the 32 letters and digits of an API key secret: check that it was copied whole, without quotes or spaces", len(secret))}
	}
	return nil
}

// readableWarning warns when the file at path, which holds secrets, can be
// read by every user of the machine.
func readableWarning(path, what string) string {
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return "" // missing files are reported elsewhere
	}
	if perm := fi.Mode().Perm(); perm&0o004 != 0 {
		return fmt.Sprintf("%s %s is readable by every user of this machine (mode %04o): run chmod 600 %s", what, path, perm, path)
	}
	return ""
}

// fileWarnings warns about secret files left readable by everyone.
func fileWarnings(envFile string, envFound bool, usersFile string) []string {
	var warnings []string
	if envFound {
		if w := readableWarning(envFile, "the settings file"); w != "" {
			warnings = append(warnings, w)
		}
	}
	if w := readableWarning(usersFile, "the users file"); w != "" {
		warnings = append(warnings, w)
	}
	return warnings
}

// addresses checks LISTEN_ADDR and METRICS_ADDR as net.Listen will take
// them, so that `tokend check` refuses what serve cannot listen on.
func (s *settings) addresses(c *Config) {
	listenOK := s.checkAddr("LISTEN_ADDR", c.ListenAddr, ":8080 or 127.0.0.1:8080")
	if c.MetricsAddr == "" {
		return
	}
	if s.checkAddr("METRICS_ADDR", c.MetricsAddr, "127.0.0.1:9090") && listenOK && sameListener(c.ListenAddr, c.MetricsAddr) {
		s.problemf("METRICS_ADDR is %q, the address LISTEN_ADDR (%q) already listens on: give /metrics another port, such as 127.0.0.1:9090, or leave METRICS_ADDR empty to serve it beside /token", c.MetricsAddr, c.ListenAddr)
	}
}

// checkAddr reports whether addr is HOST:PORT or :PORT with a port number.
func (s *settings) checkAddr(key, addr, example string) bool {
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		if n, perr := strconv.Atoi(port); perr != nil || n < 0 || n > 65535 {
			err = fmt.Errorf("bad port")
		}
	}
	if err != nil {
		s.problemf("%s is %q: use HOST:PORT or :PORT with a port number, such as %s", key, addr, example)
		return false
	}
	return true
}

// sameListener reports whether two valid addresses would collide: the same
// port (not 0, which picks a free one) on hosts that overlap, an empty or
// unspecified host covering every other.
func sameListener(a, b string) bool {
	ha, pa, _ := net.SplitHostPort(a)
	hb, pb, _ := net.SplitHostPort(b)
	if pa != pb || pa == "0" {
		return false
	}
	wildcard := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || wildcard(ha) || wildcard(hb)
}

// configWarnings are what start-up and `tokend check` warn about, in the
// same words: settings tokend does not know, a secret of the wrong shape,
// secret files readable by everyone. None stops tokend. envNames are the
// process environment's names.
func configWarnings(cfg *Config, envFile string, envFound bool, envNames []string) []string {
	var warnings []string
	warnings = append(warnings, unknownSettings(envFileNames(envFile, envFound), envFile)...)
	warnings = append(warnings, unknownSettings(envNames, "the environment")...)
	if !cfg.Dev { // development mode's secret and users are its own
		warnings = append(warnings, secretWarnings(cfg.APIKeySecret)...)
		warnings = append(warnings, fileWarnings(envFile, envFound, cfg.UsersFile)...)
	}
	if corsAllowsAll(cfg.CORSOrigins) {
		warnings = append(warnings, "CORS_ALLOWED_ORIGINS is *: a page on any web site may ask for tokens with a login it holds; list your apps' origins instead")
	}
	return warnings
}

// loadChecked is start-up's loading and checking, which serve and `tokend
// check` share so that check passes exactly what serve starts with: the
// settings and the users file (every problem in one error), then the
// warnings. environ is the process environment's names.
func loadChecked(lookup func(string) string, envFile string, envFound bool, environ []string) (*Config, *Users, []string, error) {
	cfg, users, err := loadAll(lookup)
	if err != nil {
		return nil, nil, nil, withEnvFileHint(err, envFile, envFound)
	}
	return cfg, users, configWarnings(cfg, envFile, envFound, environ), nil
}

// corsSummary says which origins' pages may call /token, for start-up and
// `tokend check`.
func corsSummary(origins []string) string {
	switch {
	case len(origins) == 0:
		return "none: CORS_ALLOWED_ORIGINS is empty, so browsers block pages on other origins"
	case corsAllowsAll(origins):
		return "* (every origin)"
	}
	return strings.Join(origins, ", ")
}
