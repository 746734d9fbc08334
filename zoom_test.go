package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Fake Video SDK credentials, never a real app's.
const (
	testZoomKey    = "ZOOMKEYdeadbeefdeadbeef"
	testZoomSecret = "zoom-secret-deadbeefdeadbeefdeadbeefdeadbeef"
)

// zoomVectors are testdata/zoom/vectors.json: requests signed by
// jsrsasign along the path of Zoom's sample endpoint (testdata/zoom/sign.mjs).
type zoomVectors struct {
	Vectors []struct {
		Name   string          `json:"name"`
		Key    string          `json:"key"`
		Secret string          `json:"secret"`
		IAT    int64           `json:"iat"`
		Body   json.RawMessage `json:"body"`
		Token  string          `json:"token"`
	} `json:"vectors"`
}

// TestZoomMatchesZoomSample mints each vector's request with tokend, as
// POST /zoom/token reads it, and wants the very token Zoom's sample signs:
// the same header, the same claims in the same order with the same
// escaping, the same signature.
func TestZoomMatchesZoomSample(t *testing.T) {
	raw, err := os.ReadFile("testdata/zoom/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs zoomVectors
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs.Vectors) < 10 {
		t.Fatalf("%d vectors; want the 10 sign.mjs writes", len(vs.Vectors))
	}
	for _, v := range vs.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			in := zoomInput{values: map[string]string{}, sentAs: map[string]string{}}
			if err := decodeZoomJSON(v.Body, in); err != nil {
				t.Fatal(err)
			}
			identity := in.values["user_identity"]
			z := &ZoomConfig{Key: v.Key, Secret: v.Secret, Hosts: []string{identity}, TTL: zoomDefaultTTL, MaxTTL: zoomMaxTTL}
			plan, err := planZoom(z, identity, in, identity != "")
			if err != nil {
				t.Fatal(err)
			}
			token, claims, err := NewZoomMinter(v.Key, v.Secret).Mint(time.Unix(v.IAT, 0), plan)
			if err != nil {
				t.Fatal(err)
			}
			if token != v.Token {
				t.Errorf("token differs from Zoom's sample's\n got  %s\n want %s\n got claims  %s\n want claims %s",
					token, v.Token, segment(t, token, 1), segment(t, v.Token, 1))
			}
			// And an independent verifier reads the claims tokend
			// says it signed.
			parsed, err := jwt.Parse(token, func(*jwt.Token) (any, error) { return []byte(v.Secret), nil },
				jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(func() time.Time { return time.Unix(v.IAT, 0) }))
			if err != nil {
				t.Fatal(err)
			}
			want, _ := json.Marshal(claims)
			var wantMap map[string]any
			json.Unmarshal(want, &wantMap)
			got, _ := json.Marshal(parsed.Claims)
			wantJSON, _ := json.Marshal(wantMap)
			if string(got) != string(wantJSON) {
				t.Errorf("golang-jwt reads %s\nwant %s", got, wantJSON)
			}
		})
	}
}

func segment(t *testing.T, token string, i int) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[i])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// testZoomConfig: alice may host; sessions are standup or team-*; the
// default session is standup.
func testZoomConfig() *ZoomConfig {
	return &ZoomConfig{
		Key: testZoomKey, Secret: testZoomSecret,
		Hosts:           []string{"alice"},
		Sessions:        []string{"standup"},
		SessionPrefixes: []string{"team-"},
		DefaultSession:  "standup",
		TTL:             zoomDefaultTTL,
		MaxTTL:          4 * time.Hour,
	}
}

type zoomServer struct {
	h   http.Handler
	m   *metrics
	log *syncBuffer
}

func newZoomServer(t testing.TB, z *ZoomConfig, limits Limits) zoomServer {
	t.Helper()
	store := testUsers(t, map[string]string{"alice": "correct horse", "bob smith": "battery staple", strings.Repeat("l", 36): "long name"})
	auth, err := newBcryptAuth(store)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Zoom = z
	cfg.Limits = limits
	cfg.CORSOrigins = []string{"https://app.example.com"}
	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m := newMetrics()
	return zoomServer{NewServer(log, cfg, auth, store, m, func() time.Time { return specTime }), m, &logs}
}

func (s zoomServer) post(ct, auth, body string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", "/zoom/token", strings.NewReader(body))
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, req)
	return rec
}

// TestZoomTokenSuccess checks the whole answer and every claim.
func TestZoomTokenSuccess(t *testing.T) {
	s := newZoomServer(t, testZoomConfig(), Limits{})
	iat := specTime.Unix()
	tests := []struct {
		name       string
		ct, auth   string
		body       string
		wantClaims string
	}{
		{"default session, participant", "", basic("bob smith", "battery staple"), "",
			`{"app_key":"ZOOMKEYdeadbeefdeadbeef","role_type":0,"tpc":"standup","version":1,"iat":1795743131,"exp":1795750331,"user_identity":"bob smith"}`},
		{"host with the sample's camelCase names", jsonCT, "",
			`{"username":"alice","password":"correct horse","sessionName":"team-Design","role":1,"expirationSeconds":1800,"userIdentity":"alice","sessionKey":"k1","geoRegions":["US","DE"],"cloudRecordingOption":"1","cloudRecordingElection":0}`,
			`{"app_key":"ZOOMKEYdeadbeefdeadbeef","role_type":1,"tpc":"team-Design","version":1,"iat":1795743131,"exp":1795744931,"user_identity":"alice","session_key":"k1","geo_regions":"US,DE","cloud_recording_option":1,"cloud_recording_election":0}`},
		{"snake_case form", formCT, "",
			`username=alice&password=correct+horse&session=STANDUP&ttl=14400&role=host&geo_regions=JP&geo_regions=SG&video_webrtc_mode=1&audio_webrtc_mode=0&telemetry_tracking_id=trace-1`,
			`{"app_key":"ZOOMKEYdeadbeefdeadbeef","role_type":1,"tpc":"STANDUP","version":1,"iat":1795743131,"exp":1795757531,"user_identity":"alice","geo_regions":"JP,SG","video_webrtc_mode":1,"audio_webrtc_mode":0,"telemetry_tracking_id":"trace-1"}`},
		{"host may ask to be a participant", jsonCT, basic("alice", "correct horse"), `{"session":"team-x","role":0}`,
			`{"app_key":"ZOOMKEYdeadbeefdeadbeef","role_type":0,"tpc":"team-x","version":1,"iat":1795743131,"exp":1795750331,"user_identity":"alice"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := s.post(tt.ct, tt.auth, tt.body)
			if rec.Code != 200 {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			var resp zoomTokenResponse
			dec := json.NewDecoder(rec.Body)
			dec.DisallowUnknownFields()
			if err := dec.Decode(&resp); err != nil {
				t.Fatal(err)
			}
			if got := segment(t, resp.Token, 1); got != tt.wantClaims {
				t.Errorf("claims %s\nwant   %s", got, tt.wantClaims)
			}
			if got := segment(t, resp.Token, 0); got != `{"alg":"HS256","typ":"JWT"}` {
				t.Errorf("header %s", got)
			}
			if err := verifySignature(resp.Token, testZoomSecret); err != nil {
				t.Error(err)
			}
			var c ZoomClaims
			json.Unmarshal([]byte(tt.wantClaims), &c)
			want := zoomTokenResponse{Token: resp.Token, Signature: resp.Token, Identity: c.UserIdentity, Session: c.Topic, RoleType: c.RoleType,
				ExpiresAt: time.Unix(c.ExpiresAt, 0).UTC().Format(time.RFC3339)}
			if resp != want {
				t.Errorf("answer %+v\nwant   %+v", resp, want)
			}
			if c.IssuedAt != iat {
				t.Errorf("iat %d, want the clock's %d", c.IssuedAt, iat)
			}
			if got := rec.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control %q", got)
			}
		})
	}
}

// TestZoomTokenErrors checks every refusal's status and exact body.
func TestZoomTokenErrors(t *testing.T) {
	s := newZoomServer(t, testZoomConfig(), Limits{})
	problemBody := func(code string, status int, title, detail string, params ...string) string {
		p := problem{Type: problemTypeURI + code, Title: title, Status: status, Detail: detail}
		for i := 0; i+1 < len(params); i += 2 {
			p.InvalidParams = append(p.InvalidParams, invalidParam{Name: params[i], Reason: params[i+1]})
		}
		b, _ := json.Marshal(p)
		return string(b)
	}
	invalid := func(field, reason string) string {
		return problemBody(EINVALID, 400, "Invalid request", field+": "+reason, field, reason)
	}
	forbidden := func(detail string) string { return problemBody(EFORBIDDEN, 403, "Forbidden", detail) }
	alice, bob := basic("alice", "correct horse"), basic("bob smith", "battery staple")
	regions := "AU, BR, CA, CN, DE, HK, IN, JP, MX, NL, SG, US"
	tests := []struct {
		name       string
		ct, auth   string
		body       string
		wantStatus int
		wantBody   string
	}{
		{"wrong password, bad fields: the settings are not told", jsonCT, "", `{"username":"alice","password":"nope","role":1,"session":"secret-board"}`, 401,
			problemBody(EUNAUTHORIZED, 401, "Unauthorized", `the username or password is wrong, or none was sent; send them as JSON {"username", "password"}, a form, or HTTP Basic auth`)},
		{"ttl under Zoom's floor", jsonCT, alice, `{"session":"standup","ttl":1799}`, 400,
			invalid("ttl", "must be a whole number of seconds from 1800 to 14400 (Zoom's floor is 30 minutes), not 1799")},
		{"expirationSeconds over ZOOM_MAX_TTL", jsonCT, alice, `{"sessionName":"standup","expirationSeconds":14401}`, 400,
			invalid("expirationSeconds", "must be a whole number of seconds from 1800 to 14400 (Zoom's floor is 30 minutes), not 14401")},
		{"ttl not a number", jsonCT, alice, `{"session":"standup","ttl":true}`, 400, invalid("ttl", "must be a number")},
		{"session too long", jsonCT, alice, `{"session":"team-` + strings.Repeat("x", 196) + `"}`, 400,
			invalid("session", "is 201 characters; Zoom allows at most 200")},
		{"session counted as JavaScript does", jsonCT, alice, `{"session":"team-` + strings.Repeat("😀", 98) + `"}`, 400,
			invalid("session", "is 201 characters; Zoom allows at most 200")},
		{"session with a slash", jsonCT, alice, `{"session":"team/a"}`, 400,
			invalid("session", `has '/', which Zoom does not allow in a session name: use letters, digits, spaces and `+zoomSessionSymbols)},
		{"session not a string", jsonCT, alice, `{"sessionName":5}`, 400, invalid("sessionName", "must be a string")},
		{"identity too long for Zoom", jsonCT, basic(strings.Repeat("l", 36), "long name"), `{"session":"standup"}`, 400,
			invalid("user_identity", `is the identity you logged in as, "`+strings.Repeat("l", 36)+`", which is 36 characters; Zoom allows at most 35: log in with a shorter username`)},
		{"session key too long", jsonCT, alice, `{"sessionKey":"` + strings.Repeat("k", 37) + `"}`, 400,
			invalid("sessionKey", "must be at most 36 characters without control characters")},
		{"unknown geo region", jsonCT, alice, `{"geo_regions":"US,EU"}`, 400, invalid("geo_regions", `has "EU"; the regions are `+regions)},
		{"geo regions all empty", jsonCT, alice, `{"geoRegions":[" ",""]}`, 400, invalid("geoRegions", "names no region; leave it out, or list some of "+regions)},
		{"geo regions not strings", jsonCT, alice, `{"geoRegions":[1]}`, 400, invalid("geoRegions", "must be a comma-separated string or a list of strings")},
		{"cloud recording option 2", jsonCT, alice, `{"cloudRecordingOption":2}`, 400, invalid("cloudRecordingOption", "must be 0 or 1, not 2")},
		{"webrtc mode as a word", formCT, alice, `video_webrtc_mode=yes`, 400, invalid("video_webrtc_mode", "must be 0 or 1, not yes")},
		{"role 2", jsonCT, alice, `{"role":2}`, 400, invalid("role", "must be 0 (participant) or 1 (host), not 2")},
		{"telemetry id with a space", jsonCT, alice, `{"telemetry_tracking_id":"a b"}`, 400,
			invalid("telemetry_tracking_id", "must be at most 128 printable ASCII characters without spaces")},
		{"two problems at once", jsonCT, alice, `{"role":"admin","ttl":60}`, 400,
			problemBody(EINVALID, 400, "Invalid request", "role: must be 0 (participant) or 1 (host), not admin; ttl: must be a whole number of seconds from 1800 to 14400 (Zoom's floor is 30 minutes), not 60",
				"role", "must be 0 (participant) or 1 (host), not admin", "ttl", "must be a whole number of seconds from 1800 to 14400 (Zoom's floor is 30 minutes), not 60")},
		{"unknown field", jsonCT, alice, `{"grants":"video"}`, 400, invalid("grants", "unknown field; the fields are "+zoomFieldNames)},
		{"one field under both names", jsonCT, alice, `{"session":"standup","sessionName":"team-a"}`, 400,
			invalid("sessionName", "is the same field as session, which was sent too; send one")},
		{"form field twice", formCT, alice, `session=standup&session=team-a`, 400, invalid("session", "sent more than once")},
		{"not an object", jsonCT, alice, `["standup"]`, 400,
			problemBody(EINVALID, 400, "Invalid request", "the body must be a JSON object with the fields "+zoomFieldNames)},
		{"JSON syntax error: where, never the character", jsonCT, alice, `{"session":"a" "s3cret"}`, 400,
			problemBody(EINVALID, 400, "Invalid request", "the body is not valid JSON: a syntax error at byte 16 of 24")},
		{"JSON cut short", jsonCT, alice, `{"session":"a",`, 400,
			problemBody(EINVALID, 400, "Invalid request", "the body is not valid JSON: it ends (after 15 bytes) before the object is complete")},
		{"JSON sent as a form", formCT, alice, `{"session":"standup"}`, 415,
			problemBody(EMEDIATYPE, 415, "Unsupported media type", "the body looks like JSON but was sent as application/x-www-form-urlencoded (what curl -d sends unless told otherwise); send it with Content-Type: application/json")},
		{"non-host asks to host", jsonCT, bob, `{"sessionName":"standup","role":1}`, 403,
			forbidden(`role 1 (host) is only for the identities in ZOOM_HOSTS, and "bob smith" is not one of them; ask for role 0 (participant), or ask the operator to add you`)},
		{"non-host asks to host, as a string", formCT, bob, `role=host`, 403,
			forbidden(`role 1 (host) is only for the identities in ZOOM_HOSTS, and "bob smith" is not one of them; ask for role 0 (participant), or ask the operator to add you`)},
		{"session not in ZOOM_SESSIONS", jsonCT, bob, `{"session":"board"}`, 403,
			forbidden(`session "board" is not one this server issues tokens for (ZOOM_SESSIONS); ask the operator for the session names you may join`)},
		{"someone else's identity", jsonCT, bob, `{"userIdentity":"alice"}`, 403,
			forbidden("userIdentity is always the identity you logged in as; leave it out")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := s.post(tt.ct, tt.auth, tt.body)
			if rec.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			if got := strings.TrimSpace(rec.Body.String()); got != tt.wantBody {
				t.Errorf("body = %s\nwant   %s", got, tt.wantBody)
			}
			if got := rec.Header().Get("Content-Type"); got != "application/problem+json" {
				t.Errorf("Content-Type = %q", got)
			}
		})
	}
}

// TestZoomOff: without the Zoom settings the route says how to enable it,
// and Twilio's /token is unchanged.
func TestZoomOff(t *testing.T) {
	s := newZoomServer(t, nil, Limits{})
	rec := s.post(jsonCT, basic("alice", "correct horse"), `{"session":"standup"}`)
	want := `{"type":"urn:tokend:problem:not-found","title":"Not found","status":404,"detail":"Zoom Video SDK tokens are not enabled on this server: its operator sets ZOOM_VIDEO_SDK_KEY and ZOOM_VIDEO_SDK_SECRET to enable POST /zoom/token"}`
	if rec.Code != 404 || strings.TrimSpace(rec.Body.String()) != want {
		t.Errorf("%d %s\nwant 404 %s", rec.Code, rec.Body, want)
	}
}

// TestZoomMethodsAndCORS: a preflight from an allowed origin gets 204 with
// the CORS answer; GET gets 405; another origin gets no CORS headers.
func TestZoomMethodsAndCORS(t *testing.T) {
	s := newZoomServer(t, testZoomConfig(), Limits{})
	pre := httptest.NewRequest("OPTIONS", "/zoom/token", nil)
	pre.Header.Set("Origin", "https://app.example.com")
	pre.Header.Set("Access-Control-Request-Method", "POST")
	pre.Header.Set("Access-Control-Request-Headers", "authorization,content-type") // as browsers send it: sorted
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, pre)
	if rec.Code != 204 || rec.Header().Get("Access-Control-Allow-Origin") != "https://app.example.com" || rec.Header().Get("Allow") != "OPTIONS, POST" {
		t.Errorf("preflight: %d %v", rec.Code, rec.Header())
	}
	rec = s.post(jsonCT, basic("alice", "correct horse"), `{"session":"standup"}`, "Origin", "https://evil.example")
	if rec.Code != 200 || rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("other origin: %d, Access-Control-Allow-Origin %q", rec.Code, rec.Header().Get("Access-Control-Allow-Origin"))
	}
	get := httptest.NewRequest("GET", "/zoom/token", nil)
	rec = httptest.NewRecorder()
	s.h.ServeHTTP(rec, get)
	want := `{"type":"urn:tokend:problem:method-not-allowed","title":"Method not allowed","status":405,"detail":"GET is not allowed here: request a Zoom token with POST /zoom/token"}`
	if rec.Code != 405 || strings.TrimSpace(rec.Body.String()) != want {
		t.Errorf("GET: %d %s", rec.Code, rec.Body)
	}
}

// TestZoomMetricsAndLogs: each token counts once under its role; the log
// names identity, role and session, never the token or the secret.
func TestZoomMetricsAndLogs(t *testing.T) {
	s := newZoomServer(t, testZoomConfig(), Limits{})
	var tokens []string
	for _, c := range []struct{ auth, body string }{
		{basic("alice", "correct horse"), `{"role":1}`},
		{basic("alice", "correct horse"), `{"role":1,"session":"team-a"}`},
		{basic("bob smith", "battery staple"), `{}`},
		{basic("bob smith", "battery staple"), `{"role":1}`}, // 403: counts nothing
	} {
		rec := s.post(jsonCT, c.auth, c.body)
		var resp zoomTokenResponse
		json.Unmarshal(rec.Body.Bytes(), &resp)
		if resp.Token != "" {
			tokens = append(tokens, resp.Token)
		}
	}
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		`tokend_zoom_tokens_issued_total{role="host"} 2`,
		`tokend_zoom_tokens_issued_total{role="participant"} 1`,
	} {
		if !strings.Contains(rec.Body.String(), want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(rec.Body.String(), `tokend_tokens_issued_total{grant="video"} 1`) {
		t.Error("a Zoom token counted as a Twilio grant")
	}
	logs := s.log.String()
	for _, secret := range append(tokens, testZoomSecret, "correct horse") {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds a secret or token: %.20s…", secret)
		}
	}
	if !strings.Contains(logs, `"identity":"alice","zoom_role":"host","zoom_session":"team-a"`) {
		t.Errorf("the log does not name identity, role and session:\n%s", logs)
	}
	if !strings.Contains(logs, `"status":403,"duration"`) || !strings.Contains(logs, `"problem":"forbidden"`) {
		t.Errorf("the 403 is not logged as forbidden:\n%s", logs)
	}
}

// TestZoomSharesTokenLimits: /zoom/token and /token draw on one request
// budget per client address, so a second endpoint is not a second budget.
// 40 requests at once from one address with a budget of 10: exactly 10
// get through, whichever endpoint they ask.
func TestZoomSharesTokenLimits(t *testing.T) {
	s := newZoomServer(t, testZoomConfig(), Limits{AddrRequests: 10, AddrRequestsPerSecond: 1e-9, MaxKeys: 100})
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[int]int{}
	for i := range 40 {
		wg.Go(func() {
			path := "/zoom/token"
			if i%2 == 1 {
				path = "/token"
			}
			req := httptest.NewRequest("POST", path, nil)
			req.Header.Set("Authorization", basic("alice", "correct horse"))
			rec := httptest.NewRecorder()
			s.h.ServeHTTP(rec, req)
			mu.Lock()
			counts[rec.Code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if counts[200] != 10 || counts[429] != 30 {
		t.Errorf("answers %v; want 10 × 200 and 30 × 429", counts)
	}
}

// TestZoomSettings checks what each Zoom setting does and every refusal.
func TestZoomSettings(t *testing.T) {
	base := []string{"ZOOM_VIDEO_SDK_KEY", testZoomKey, "ZOOM_VIDEO_SDK_SECRET", testZoomSecret}
	tests := []struct {
		name     string
		env      []string
		want     *ZoomConfig
		problems []string
	}{
		{"off", nil, nil, nil},
		{"defaults", base, &ZoomConfig{Key: testZoomKey, Secret: testZoomSecret, TTL: 2 * time.Hour, MaxTTL: 48 * time.Hour}, nil},
		{"everything", append(base, "ZOOM_HOSTS", "alice, bob smith,alice", "ZOOM_SESSIONS", "Standup, Team-*", "ZOOM_SESSION", "standup",
			"ZOOM_TTL", "3600", "ZOOM_MAX_TTL", "7200"),
			&ZoomConfig{Key: testZoomKey, Secret: testZoomSecret, Hosts: []string{"alice", "bob smith"}, Sessions: []string{"standup"},
				SessionPrefixes: []string{"team-"}, DefaultSession: "standup", TTL: time.Hour, MaxTTL: 2 * time.Hour}, nil},
		{"default TTL follows a lower ceiling", append(base, "ZOOM_MAX_TTL", "1800"),
			&ZoomConfig{Key: testZoomKey, Secret: testZoomSecret, TTL: 30 * time.Minute, MaxTTL: 30 * time.Minute}, nil},
		{"key without secret", []string{"ZOOM_VIDEO_SDK_KEY", testZoomKey}, nil,
			[]string{"ZOOM_VIDEO_SDK_KEY is set but ZOOM_VIDEO_SDK_SECRET is not: set both (the Video SDK app's credentials) or neither"}},
		{"secret without key", []string{"ZOOM_VIDEO_SDK_SECRET", testZoomSecret}, nil,
			[]string{"ZOOM_VIDEO_SDK_SECRET is set but ZOOM_VIDEO_SDK_KEY is not: set both (the Video SDK app's credentials) or neither"}},
		{"same key and secret", []string{"ZOOM_VIDEO_SDK_KEY", testZoomSecret, "ZOOM_VIDEO_SDK_SECRET", testZoomSecret}, nil,
			[]string{"ZOOM_VIDEO_SDK_KEY and ZOOM_VIDEO_SDK_SECRET are the same: the secret is the other value on the app's credentials page"}},
		{"space in the secret", []string{"ZOOM_VIDEO_SDK_KEY", testZoomKey, "ZOOM_VIDEO_SDK_SECRET", "abc def"}, nil,
			[]string{"ZOOM_VIDEO_SDK_KEY or ZOOM_VIDEO_SDK_SECRET has a space inside: copy them again from the Video SDK app's credentials"}},
		{"hosts while off", []string{"ZOOM_HOSTS", "alice"}, nil,
			[]string{"ZOOM_HOSTS is set, but Zoom tokens are off: set ZOOM_VIDEO_SDK_KEY and ZOOM_VIDEO_SDK_SECRET to enable POST /zoom/token"}},
		{"bad sessions and TTLs", append(base, "ZOOM_SESSIONS", "a/b,x*y*,ok", "ZOOM_SESSION", "other", "ZOOM_TTL", "600", "ZOOM_MAX_TTL", "200000"), nil,
			[]string{
				`ZOOM_SESSIONS entry "a/b" has '/', which Zoom does not allow in a session name: use letters, digits, spaces and ` + zoomSessionSymbols,
				`ZOOM_SESSIONS entry "x*y*" has a * that is not at the end; a prefix is written name-*`,
				`ZOOM_SESSION is "other", which ZOOM_SESSIONS does not allow`,
				`ZOOM_MAX_TTL is "200000": use a whole number of seconds from 1800 to 172800`,
				`ZOOM_TTL is "600": use a whole number of seconds from 1800 to 172800`,
			}},
		{"TTL above its ceiling", append(base, "ZOOM_TTL", "7200", "ZOOM_MAX_TTL", "3600"), nil,
			[]string{"ZOOM_TTL (7200) is above ZOOM_MAX_TTL (3600)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for i := 0; i+1 < len(tt.env); i += 2 {
				env[tt.env[i]] = tt.env[i+1]
			}
			s := &settings{lookup: mapEnv(env)}
			got := s.zoom()
			if strings.Join(s.problems, "\n") != strings.Join(tt.problems, "\n") {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(s.problems, "\n"), strings.Join(tt.problems, "\n"))
			}
			if tt.problems != nil {
				for _, p := range s.problems {
					if strings.Contains(p, testZoomSecret) {
						t.Errorf("a problem shows the secret: %s", p)
					}
				}
				return
			}
			gotJSON, _ := json.Marshal(got)
			wantJSON, _ := json.Marshal(tt.want)
			if !bytes.Equal(gotJSON, wantJSON) {
				t.Errorf("got  %s\nwant %s", gotJSON, wantJSON)
			}
		})
	}
}

// TestZoomMintAndDecode runs `tokend mint --zoom` and `tokend decode` as
// the shell does.
func TestZoomMintAndDecode(t *testing.T) {
	env := map[string]string{"ZOOM_VIDEO_SDK_KEY": testZoomKey, "ZOOM_VIDEO_SDK_SECRET": testZoomSecret, "ZOOM_SESSIONS": "standup"}
	noEnv := "testdata/zoom/no.env"
	out, stderr, err := runTokend(t, env, specTime, "", "mint", "--env-file", noEnv, "--zoom", "--session", "board", "--role", "host", "--ttl", "3600", "--identity", "ops", "--geo-regions", "US")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	token := strings.TrimSpace(out)
	wantClaims := `{"app_key":"ZOOMKEYdeadbeefdeadbeef","role_type":1,"tpc":"board","version":1,"iat":1795743131,"exp":1795746731,"user_identity":"ops","geo_regions":"US"}`
	if got := segment(t, token, 1); got != wantClaims {
		t.Errorf("claims %s\nwant   %s", got, wantClaims)
	}
	out, _, err = runTokend(t, env, specTime.Add(10*time.Minute), "", "decode", "--env-file", noEnv, token)
	if err != nil {
		t.Fatal(err)
	}
	want := `header:
{
  "alg": "HS256",
  "typ": "JWT"
}
claims:
{
  "app_key": "ZOOMKEYdeadbeefdeadbeef",
  "role_type": 1,
  "tpc": "board",
  "version": 1,
  "iat": 1795743131,
  "exp": 1795746731,
  "user_identity": "ops",
  "geo_regions": "US"
}
zoom:       Video SDK token for session "board" as host (role_type 1)
issued:     2026-11-27T01:32:11Z (10m0s ago)
expires:    2026-11-27T02:32:11Z (in 50m0s)
lifetime:   1h0m0s
signature:  valid: HS256 with ZOOM_VIDEO_SDK_SECRET
`
	if out != want {
		t.Errorf("decode:\n%s\nwant:\n%s", out, want)
	}
	wrong := map[string]string{"ZOOM_VIDEO_SDK_KEY": "OTHERKEY", "ZOOM_VIDEO_SDK_SECRET": "another-secret-deadbeefdeadbeefdeadbeef"}
	if _, _, err := runTokend(t, wrong, specTime, "", "decode", "--env-file", noEnv, token); err == nil ||
		err.Error() != `signature: does not verify with ZOOM_VIDEO_SDK_SECRET: it was signed with another secret, or changed since; the token is for SDK key "ZOOMKEYdeadbeefdeadbeef" (app_key), the settings name OTHERKEY` {
		t.Errorf("decode with another secret: %v", err)
	}

	for _, tt := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"ttl under the floor", env, []string{"--zoom", "--session", "s", "--ttl", "60"},
			"--ttl: must be a whole number of seconds from 1800 to 172800 (Zoom's floor is 30 minutes), not 60"},
		{"no session", env, []string{"--zoom"},
			"--session: is required: the Video SDK session name to join, at most 200 characters (the same topic the page passes to client.join)"},
		{"identity too long", env, []string{"--zoom", "--session", "s", "--identity", strings.Repeat("i", 36)},
			`--identity: is the identity you logged in as, "` + strings.Repeat("i", 36) + `", which is 36 characters; Zoom allows at most 35: log in with a shorter username`},
		{"Twilio flag with --zoom", env, []string{"--zoom", "--session", "s", "--grant", "video"}, "--grant is for Twilio tokens, not Zoom ones"},
		{"Zoom flag without --zoom", env, []string{"--identity", "a", "--session", "s"}, "--session is for Zoom tokens: add --zoom"},
		{"Zoom off", map[string]string{}, []string{"--zoom", "--session", "s"},
			"invalid configuration:\n  - Zoom tokens are off: set ZOOM_VIDEO_SDK_KEY and ZOOM_VIDEO_SDK_SECRET, the Video SDK app's credentials\n  - no testdata/zoom/no.env file was found: copy .env.example to .env and fill it in, or try development mode with `tokend serve --dev` (what `make run` starts on a fresh clone)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runTokend(t, tt.env, specTime, "", append([]string{"mint", "--env-file", noEnv}, tt.args...)...)
			if err == nil || err.Error() != tt.want {
				t.Errorf("err = %v\nwant  %s", err, tt.want)
			}
		})
	}
}

// BenchmarkZoomMint is one Video SDK token with the usual claims.
func BenchmarkZoomMint(b *testing.B) {
	m := NewZoomMinter(testZoomKey, testZoomSecret)
	plan := zoomPlan{ttl: zoomDefaultTTL, claims: ZoomClaims{RoleType: zoomParticipant, Topic: "team-standup", UserIdentity: "alice"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := m.Mint(specTime, plan); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzZoomRequest feeds arbitrary bodies and content types through the
// decoding and checks of POST /zoom/token: never a panic, every refusal a
// 4xx problem, and every accepted request within Zoom's rules and signed.
func FuzzZoomRequest(f *testing.F) {
	for _, seed := range []struct{ ct, body string }{
		{jsonCT, `{"session":"team-a","ttl":1800,"role":1}`},
		{jsonCT, `{"sessionName":"standup","expirationSeconds":"3600","geoRegions":["US"," DE"],"cloudRecordingOption":1}`},
		{jsonCT, `{"session":"a","sessionName":"b"}`},
		{jsonCT, `{"role":null,"ttl":1e3,"geo_regions":{}}`},
		{jsonCT, `[]`},
		{formCT, "session=team-%E9&geo_regions=US&geo_regions=JP&video_webrtc_mode=1"},
		{formCT, "role=host&role=0"},
		{"text/plain", "session=x"},
	} {
		f.Add(seed.ct, []byte(seed.body))
	}
	z := testZoomConfig()
	minter := NewZoomMinter(z.Key, z.Secret)
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		r := httptest.NewRequest("POST", "/zoom/token", bytes.NewReader(body))
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		in, err := decodeZoomRequest(httptest.NewRecorder(), r)
		if err != nil {
			checkClientError(t, err)
			return
		}
		plan, err := planZoom(z, "alice", in, true)
		if err != nil {
			checkClientError(t, err)
			return
		}
		if plan.ttl < zoomMinTTL || plan.ttl > z.MaxTTL || checkZoomSession(plan.claims.Topic) != "" || !z.allowsSession(plan.claims.Topic) {
			t.Fatalf("accepted a plan outside the rules: %+v", plan)
		}
		token, _, err := minter.Mint(specTime, plan)
		if err != nil {
			t.Fatalf("an accepted request does not sign: %v", err)
		}
		if err := verifySignature(token, testZoomSecret); err != nil {
			t.Fatalf("the token does not verify: %v", err)
		}
	})
}

// TestZoomCheck: `tokend check` summarises the Zoom settings and repeats
// start-up's warnings, never the secret.
func TestZoomCheck(t *testing.T) {
	users := filepath.Join(t.TempDir(), "users.htpasswd")
	writeFile(t, users, htpasswdLine(t, "alice"))
	env := cmdEnv("USERS_FILE", users, "ZOOM_VIDEO_SDK_KEY", testZoomKey, "ZOOM_VIDEO_SDK_SECRET", "short-secret", "ZOOM_HOSTS", "alice")
	stdout, _, err := runTokend(t, env, specTime, "", "check", "--env-file", "testdata/zoom/no.env")
	if err != nil {
		t.Fatal(err)
	}
	want := "  zoom:       SDK key ZOOMKEYdeadbeefdeadbeef, 1 host(s), any session\n" +
		"  warning:    ZOOM_VIDEO_SDK_SECRET is shorter than 32 bytes, the least HS256 asks of a key (RFC 7518): check it was copied whole\n" +
		"  warning:    ZOOM_SESSIONS is not set: every user may ask for a token to any session name\n"
	if !strings.HasSuffix(stdout, want) || strings.Contains(stdout, "short-secret") {
		t.Errorf("check:\n%s\nwant it to end with:\n%s", stdout, want)
	}
}

// TestRunServesZoom starts tokend through run, as the shell does, with the
// Zoom settings, and gets a Zoom token over real HTTP; the start-up log
// warns about the open session list and holds no secret.
func TestRunServesZoom(t *testing.T) {
	env := testEnv(t)
	env["ZOOM_VIDEO_SDK_KEY"], env["ZOOM_VIDEO_SDK_SECRET"], env["ZOOM_HOSTS"] = testZoomKey, testZoomSecret, "alice"
	var stdout, stderr syncBuffer
	errc := startRun(t, []string{"serve", "--env-file", "testdata/zoom/no.env"}, env, &stdout, &stderr)
	base := "http://" + env["LISTEN_ADDR"]
	waitReady(t, base, errc)

	resp, body := postJSON(t, base+"/zoom/token", map[string]any{"username": "alice", "password": "alice password", "sessionName": "Standup", "role": 1})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %v", resp.StatusCode, body)
	}
	token, _ := body["token"].(string)
	if err := verifySignature(token, testZoomSecret); err != nil {
		t.Fatal(err)
	}
	var c ZoomClaims
	json.Unmarshal([]byte(segment(t, token, 1)), &c)
	if c.AppKey != testZoomKey || c.RoleType != 1 || c.Topic != "Standup" || c.UserIdentity != "alice" || c.ExpiresAt-c.IssuedAt != 7200 {
		t.Errorf("claims %+v", c)
	}
	if body["signature"] != token || body["identity"] != "alice" {
		t.Errorf("answer %v", body)
	}
	logs := stdout.String() + stderr.String()
	if !strings.Contains(logs, "ZOOM_SESSIONS is not set") {
		t.Errorf("no warning about ZOOM_SESSIONS in:\n%s", logs)
	}
	for _, secret := range []string{testZoomSecret, "alice password", token} {
		if strings.Contains(logs, secret) {
			t.Errorf("output contains a secret: %.12q…", secret)
		}
	}
}

// TestZoomDecodeSaysWhatZoomRefuses: decode reports an expired token, a
// lifetime outside Zoom's range and missing times, while the signature
// still verifies.
func TestZoomDecodeSaysWhatZoomRefuses(t *testing.T) {
	sign := func(claims jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(testZoomSecret))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	iat := specTime.Unix()
	env := map[string]string{"ZOOM_VIDEO_SDK_SECRET": testZoomSecret}
	for _, tt := range []struct {
		name   string
		claims jwt.MapClaims
		want   string
	}{
		{"too short and expired", jwt.MapClaims{"app_key": "K", "tpc": "s", "role_type": 0, "version": 1, "iat": iat, "exp": iat + 60},
			"zoom:       Video SDK token for session \"s\" as participant (role_type 0)\n" +
				"issued:     2026-11-27T01:32:11Z (1h0m0s ago)\n" +
				"expires:    2026-11-27T01:33:11Z (expired 59m0s ago: Zoom refuses it)\n" +
				"lifetime:   1m0s (Zoom wants exp 30m0s to 48h0m0s after iat: it refuses this token)\n" +
				"signature:  valid: HS256 with ZOOM_VIDEO_SDK_SECRET\n"},
		{"no times, version 2", jwt.MapClaims{"app_key": "K", "tpc": "s", "role_type": 1, "version": 2},
			"zoom:       Video SDK token for session \"s\" as host (role_type 1)\n" +
				"times:      iat or exp is missing: Zoom refuses the token\n" +
				"version:    2 (Zoom wants 1)\n" +
				"signature:  valid: HS256 with ZOOM_VIDEO_SDK_SECRET\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := runTokend(t, env, specTime.Add(time.Hour), "", "decode", "--env-file", "testdata/zoom/no.env", sign(tt.claims))
			if err != nil {
				t.Fatal(err)
			}
			if _, tail, _ := strings.Cut(out, "}\nzoom:"); "zoom:"+tail != tt.want {
				t.Errorf("decode:\n%s\nwant it to end with:\n%s", out, tt.want)
			}
		})
	}
	if _, _, err := runTokend(t, map[string]string{}, specTime, "", "decode", "--env-file", "testdata/zoom/no.env", sign(jwt.MapClaims{"app_key": "K", "tpc": "s"})); err == nil ||
		err.Error() != "signature: not checked: ZOOM_VIDEO_SDK_SECRET is not set, in the environment or in testdata/zoom/no.env" {
		t.Errorf("decode without the secret: %v", err)
	}
}
