package main

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Zoom Video SDK tokens (developers.zoom.us/docs/video-sdk/auth) and the
// rules of Zoom's own endpoint sample (zoom/videosdk-auth-endpoint-sample),
// whose limits Zoom says match the SDK's. Lengths are counted as that
// sample counts them: in UTF-16 code units, JavaScript's String.length.
const (
	zoomMinTTL        = 1800 * time.Second   // exp − iat, at least
	zoomMaxTTL        = 172800 * time.Second // and at most 48 h
	zoomDefaultTTL    = 2 * time.Hour        // the sample's default
	maxZoomSession    = 200                  // tpc
	maxZoomIdentity   = 35                   // user_identity
	maxZoomSessionKey = 36                   // session_key
	// maxZoomTrackingID caps telemetry_tracking_id, for which Zoom states
	// no limit: an ID for support, not a document.
	maxZoomTrackingID = 128
)

// zoomGeoRegions are the data-centre regions a token may name.
var zoomGeoRegions = []string{"AU", "BR", "CA", "CN", "DE", "HK", "IN", "JP", "MX", "NL", "SG", "US"}

// Zoom roles, as role_type carries them.
const (
	zoomParticipant = 0
	zoomHost        = 1
)

// zoomRoleName names a role_type for metrics, logs and messages.
func zoomRoleName(role int) string {
	if role == zoomHost {
		return "host"
	}
	return "participant"
}

// ZoomConfig is what POST /zoom/token needs; Config.Zoom is nil when Zoom
// tokens are not enabled.
type ZoomConfig struct {
	Key    string
	Secret string // never printed
	// Hosts are the identities that may ask for role_type 1. Nobody else
	// can: the client never chooses its own power.
	Hosts []string
	// Sessions and SessionPrefixes, when either is set, are the only
	// session names a token may carry (lowercased: Zoom compares names
	// without case). Both empty: any valid name.
	Sessions        []string
	SessionPrefixes []string
	DefaultSession  string // ZOOM_SESSION: the session when a request names none
	TTL             time.Duration
	MaxTTL          time.Duration
}

// zoomPolicySettings are the Zoom settings besides the key and secret:
// setting one while Zoom is off is refused.
var zoomPolicySettings = []string{"ZOOM_HOSTS", "ZOOM_SESSIONS", "ZOOM_SESSION", "ZOOM_TTL", "ZOOM_MAX_TTL"}

// zoom reads the Zoom settings: nil when ZOOM_VIDEO_SDK_KEY and
// ZOOM_VIDEO_SDK_SECRET are both unset. A Zoom setting without them is a
// problem, not silently ignored: it is likely a key that failed to load.
func (s *settings) zoom() *ZoomConfig {
	key := s.str("ZOOM_VIDEO_SDK_KEY", "")
	secret := strings.TrimSpace(s.lookup("ZOOM_VIDEO_SDK_SECRET"))
	if key == "" && secret == "" {
		for _, name := range zoomPolicySettings {
			if s.str(name, "") != "" {
				s.problemf("%s is set, but Zoom tokens are off: set ZOOM_VIDEO_SDK_KEY and ZOOM_VIDEO_SDK_SECRET to enable POST /zoom/token", name)
			}
		}
		return nil
	}
	switch {
	case key == "":
		s.problemf("ZOOM_VIDEO_SDK_SECRET is set but ZOOM_VIDEO_SDK_KEY is not: set both (the Video SDK app's credentials) or neither")
	case secret == "":
		s.problemf("ZOOM_VIDEO_SDK_KEY is set but ZOOM_VIDEO_SDK_SECRET is not: set both (the Video SDK app's credentials) or neither")
	case strings.ContainsFunc(key, unicode.IsSpace) || strings.ContainsFunc(secret, unicode.IsSpace):
		s.problemf("ZOOM_VIDEO_SDK_KEY or ZOOM_VIDEO_SDK_SECRET has a space inside: copy them again from the Video SDK app's credentials")
	case key == secret:
		s.problemf("ZOOM_VIDEO_SDK_KEY and ZOOM_VIDEO_SDK_SECRET are the same: the secret is the other value on the app's credentials page")
	}
	z := &ZoomConfig{Key: key, Secret: secret}
	seen := map[string]bool{}
	for _, h := range strings.Split(s.str("ZOOM_HOSTS", ""), ",") {
		if h = strings.TrimSpace(h); h != "" && !seen[h] {
			seen[h] = true
			z.Hosts = append(z.Hosts, h)
		}
	}
	for _, item := range strings.Split(s.str("ZOOM_SESSIONS", ""), ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, prefix := strings.CutSuffix(item, "*")
		problem := checkZoomSession(name)
		if strings.Contains(name, "*") {
			problem = "has a * that is not at the end; a prefix is written name-*"
		}
		if problem != "" {
			s.problemf("ZOOM_SESSIONS entry %q %s", item, problem)
			continue
		}
		if prefix {
			z.SessionPrefixes = append(z.SessionPrefixes, strings.ToLower(name))
		} else {
			z.Sessions = append(z.Sessions, strings.ToLower(name))
		}
	}
	if z.DefaultSession = s.str("ZOOM_SESSION", ""); z.DefaultSession != "" {
		if problem := checkZoomSession(z.DefaultSession); problem != "" {
			s.problemf("ZOOM_SESSION %s", problem)
		} else if !z.allowsSession(z.DefaultSession) {
			s.problemf("ZOOM_SESSION is %q, which ZOOM_SESSIONS does not allow", z.DefaultSession)
		}
	}
	lo, hi := int(zoomMinTTL/time.Second), int(zoomMaxTTL/time.Second)
	z.MaxTTL = s.seconds("ZOOM_MAX_TTL", hi, lo, hi)
	z.TTL = s.seconds("ZOOM_TTL", min(int(zoomDefaultTTL/time.Second), int(z.MaxTTL/time.Second)), lo, hi)
	if z.TTL > z.MaxTTL {
		s.problemf("ZOOM_TTL (%d) is above ZOOM_MAX_TTL (%d)", z.TTL/time.Second, z.MaxTTL/time.Second)
	}
	return z
}

// warnings are doubts about the settings that do not stop start-up.
func (z *ZoomConfig) warnings() []string {
	var w []string
	if len(z.Secret) < 32 {
		// Said without the value or its length, which narrow a guess.
		w = append(w, "ZOOM_VIDEO_SDK_SECRET is shorter than 32 bytes, the least HS256 asks of a key (RFC 7518): check it was copied whole")
	}
	if len(z.Sessions) == 0 && len(z.SessionPrefixes) == 0 {
		w = append(w, "ZOOM_SESSIONS is not set: every user may ask for a token to any session name")
	}
	return w
}

// sessionsSummary says which sessions tokens may name, for `tokend check`.
func (z *ZoomConfig) sessionsSummary() string {
	if len(z.Sessions) == 0 && len(z.SessionPrefixes) == 0 {
		return "any session"
	}
	return fmt.Sprintf("%d session name(s) and %d prefix(es) allowed", len(z.Sessions), len(z.SessionPrefixes))
}

// isHost reports whether identity may ask for role_type 1.
func (z *ZoomConfig) isHost(identity string) bool {
	return slices.Contains(z.Hosts, identity)
}

// allowsSession reports whether ZOOM_SESSIONS lets a token name session.
func (z *ZoomConfig) allowsSession(session string) bool {
	if len(z.Sessions) == 0 && len(z.SessionPrefixes) == 0 {
		return true
	}
	lower := strings.ToLower(session)
	if slices.Contains(z.Sessions, lower) {
		return true
	}
	return slices.ContainsFunc(z.SessionPrefixes, func(p string) bool { return strings.HasPrefix(lower, p) })
}

// jsLength is the length JavaScript gives s, which Zoom's sample checks.
func jsLength(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// zoomSessionSymbols are the symbols Zoom lists for a session name, beside
// letters, digits and spaces.
const zoomSessionSymbols = `!#$%&()+-:;<=.>?@[]^_{}|~,\`

// checkZoomSession returns what is wrong with a session name, or "".
func checkZoomSession(name string) string {
	switch n := jsLength(name); {
	case name == "":
		return "must not be empty"
	case !utf8.ValidString(name):
		return "is not valid UTF-8"
	case n > maxZoomSession:
		return fmt.Sprintf("is %d characters; Zoom allows at most %d", n, maxZoomSession)
	}
	for _, r := range name {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == ' ' || strings.ContainsRune(zoomSessionSymbols, r)) {
			return fmt.Sprintf("has %q, which Zoom does not allow in a session name: use letters, digits, spaces and %s", r, zoomSessionSymbols)
		}
	}
	return ""
}

// ZoomClaims are the claims of a Video SDK token, in the order Zoom's
// sample writes them. Optional claims that were not given are absent.
type ZoomClaims struct {
	AppKey                 string `json:"app_key"`
	RoleType               int    `json:"role_type"`
	Topic                  string `json:"tpc"`
	Version                int    `json:"version"`
	IssuedAt               int64  `json:"iat"`
	ExpiresAt              int64  `json:"exp"`
	UserIdentity           string `json:"user_identity,omitempty"`
	SessionKey             string `json:"session_key,omitempty"`
	GeoRegions             string `json:"geo_regions,omitempty"`
	CloudRecordingOption   *int   `json:"cloud_recording_option,omitempty"`
	CloudRecordingElection *int   `json:"cloud_recording_election,omitempty"`
	VideoWebRTCMode        *int   `json:"video_webrtc_mode,omitempty"`
	AudioWebRTCMode        *int   `json:"audio_webrtc_mode,omitempty"`
	TelemetryTrackingID    string `json:"telemetry_tracking_id,omitempty"`
}

// zoomHeader is the header Zoom's sample signs, as JSON.stringify writes it.
const zoomHeader = `{"alg":"HS256","typ":"JWT"}`

// ZoomMinter signs Video SDK tokens with one SDK secret, as Minter signs
// Twilio's.
type ZoomMinter struct {
	key     string
	header  string // base64url(zoomHeader) + "."
	signers *signers
}

// NewZoomMinter returns a minter for the SDK key and secret.
func NewZoomMinter(key, secret string) *ZoomMinter {
	// The claims as JSON.stringify writes them: no escaping of <, > and
	// &, which encoding/json would otherwise turn into \u003c and so on.
	return &ZoomMinter{
		key:     key,
		header:  base64.RawURLEncoding.EncodeToString([]byte(zoomHeader)) + ".",
		signers: newSigners(secret, false),
	}
}

// Mint signs the claims of plan, issued at now, and returns the token and
// its claims. iat is now, not backdated, as Zoom's sample does it.
func (m *ZoomMinter) Mint(now time.Time, plan zoomPlan) (string, ZoomClaims, error) {
	if plan.ttl < zoomMinTTL || plan.ttl > zoomMaxTTL {
		return "", ZoomClaims{}, fmt.Errorf("zoom ttl %s is outside %s to %s", plan.ttl, zoomMinTTL, zoomMaxTTL)
	}
	c := plan.claims
	c.AppKey, c.Version = m.key, 1
	c.IssuedAt = now.Unix()
	c.ExpiresAt = c.IssuedAt + int64(plan.ttl/time.Second)
	s := m.signers.get()
	defer m.signers.put(s)
	s.claims.Reset()
	if err := s.encoder.Encode(&c); err != nil {
		return "", ZoomClaims{}, fmt.Errorf("encode zoom claims: %w", err)
	}
	s.claims.Truncate(s.claims.Len() - 1) // Encode's newline
	return s.sign(m.header, s.claims.Bytes()), c, nil
}

// zoomPlan is a checked request: the claims it sets and the lifetime.
type zoomPlan struct {
	claims ZoomClaims // without app_key, version and times
	ttl    time.Duration
}

// zoomInput is a Zoom token request's fields by their snake_case name, as
// the client sent them (form values, or JSON values as text); sentAs keeps
// the name the client used, so errors speak its words.
type zoomInput struct {
	values map[string]string
	sentAs map[string]string
}

// get returns a field's value; an empty one counts as not sent, as an
// empty form field does.
func (in zoomInput) get(field string) (string, bool) {
	v := in.values[field]
	return v, v != ""
}

// name is the field's name as the client sent it.
func (in zoomInput) name(field string) string {
	if n, ok := in.sentAs[field]; ok {
		return n
	}
	return field
}

// planZoom checks a request for identity, the authenticated user, and
// returns the token it asks for. Malformed fields are a 400 naming each;
// a role or session the user may not have is a 403 that says which.
// enforce is false for `tokend mint`, whose user holds the secret anyway.
func planZoom(z *ZoomConfig, identity string, in zoomInput, enforce bool) (zoomPlan, error) {
	plan := zoomPlan{ttl: z.TTL}
	problems := map[string]string{}
	c := &plan.claims

	session, given := in.get("session")
	switch {
	case !given && z.DefaultSession == "":
		problems[in.name("session")] = "is required: the Video SDK session name to join, at most 200 characters (the same topic the page passes to client.join)"
	case !given:
		c.Topic = z.DefaultSession
	default:
		if p := checkZoomSession(session); p != "" {
			problems[in.name("session")] = p
		}
		c.Topic = session
	}
	if v, ok := in.get("ttl"); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		lo, hi := int64(zoomMinTTL/time.Second), int64(z.MaxTTL/time.Second)
		if err != nil || n < lo || n > hi {
			problems[in.name("ttl")] = fmt.Sprintf("must be a whole number of seconds from %d to %d (Zoom's floor is 30 minutes), not %s", lo, hi, truncateForMessage(v, 16))
		} else {
			plan.ttl = time.Duration(n) * time.Second
		}
	}
	role := zoomParticipant
	if v, ok := in.get("role"); ok {
		switch strings.ToLower(v) {
		case "0", "participant":
		case "1", "host":
			role = zoomHost
		default:
			problems[in.name("role")] = fmt.Sprintf("must be 0 (participant) or 1 (host), not %s", truncateForMessage(v, 16))
		}
	}
	c.RoleType = role
	if identity != "" {
		switch n := jsLength(identity); {
		case !utf8.ValidString(identity):
			problems["user_identity"] = "the identity is not valid UTF-8"
		case n > maxZoomIdentity:
			problems["user_identity"] = fmt.Sprintf("is the identity you logged in as, %q, which is %d characters; Zoom allows at most %d: log in with a shorter username", identity, n, maxZoomIdentity)
		}
		c.UserIdentity = identity
	}
	if v, ok := in.get("session_key"); ok {
		if n := jsLength(v); n > maxZoomSessionKey || !utf8.ValidString(v) || strings.ContainsFunc(v, unicode.IsControl) {
			problems[in.name("session_key")] = fmt.Sprintf("must be at most %d characters without control characters", maxZoomSessionKey)
		}
		c.SessionKey = v
	}
	if v, ok := in.get("geo_regions"); ok {
		regions, p := parseZoomRegions(v)
		if p != "" {
			problems[in.name("geo_regions")] = p
		}
		c.GeoRegions = strings.Join(regions, ",")
	}
	for _, flag := range []struct {
		field string
		claim **int
	}{
		{"cloud_recording_option", &c.CloudRecordingOption},
		{"cloud_recording_election", &c.CloudRecordingElection},
		{"video_webrtc_mode", &c.VideoWebRTCMode},
		{"audio_webrtc_mode", &c.AudioWebRTCMode},
	} {
		v, ok := in.get(flag.field)
		switch {
		case !ok:
		case v != "0" && v != "1":
			problems[in.name(flag.field)] = "must be 0 or 1, not " + truncateForMessage(v, 16)
		default:
			n := int(v[0] - '0')
			*flag.claim = &n
		}
	}
	if v, ok := in.get("telemetry_tracking_id"); ok {
		if jsLength(v) > maxZoomTrackingID || strings.ContainsFunc(v, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
			problems[in.name("telemetry_tracking_id")] = fmt.Sprintf("must be at most %d printable ASCII characters without spaces", maxZoomTrackingID)
		}
		c.TelemetryTrackingID = v
	}
	if len(problems) > 0 {
		return plan, invalidFields(problems)
	}
	if !enforce {
		return plan, nil
	}
	// Only for a well-formed request: what the user may do.
	if v, ok := in.get("user_identity"); ok && v != identity {
		return plan, Errorf(EFORBIDDEN, "%s is always the identity you logged in as; leave it out", in.name("user_identity"))
	}
	if role == zoomHost && !z.isHost(identity) {
		return plan, Errorf(EFORBIDDEN, "role 1 (host) is only for the identities in ZOOM_HOSTS, and %q is not one of them; ask for role 0 (participant), or ask the operator to add you", identity)
	}
	if !z.allowsSession(c.Topic) {
		return plan, Errorf(EFORBIDDEN, "session %q is not one this server issues tokens for (ZOOM_SESSIONS); ask the operator for the session names you may join", c.Topic)
	}
	return plan, nil
}

// parseZoomRegions reads a comma-separated list of regions; spaces are
// ignored and empty items skipped, as in Zoom's sample.
func parseZoomRegions(v string) ([]string, string) {
	var regions []string
	for _, item := range strings.Split(v, ",") {
		item = strings.Join(strings.Fields(item), "")
		if item == "" {
			continue
		}
		if !slices.Contains(zoomGeoRegions, item) {
			return nil, fmt.Sprintf("has %q; the regions are %s", truncateForMessage(item, 8), strings.Join(zoomGeoRegions, ", "))
		}
		regions = append(regions, item)
	}
	if len(regions) == 0 {
		return nil, "names no region; leave it out, or list some of " + strings.Join(zoomGeoRegions, ", ")
	}
	return regions, ""
}

// truncateForMessage shortens a client's value echoed in an error.
func truncateForMessage(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// newZoomMinter returns the minter for z, or nil when Zoom is off.
func newZoomMinter(z *ZoomConfig) *ZoomMinter {
	if z == nil {
		return nil
	}
	return NewZoomMinter(z.Key, z.Secret)
}
