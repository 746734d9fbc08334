package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/crypto/bcrypt"
)

// testConfig enables every grant with fake SIDs; its default grants are
// video and voice.
func testConfig() *Config {
	return &Config{
		AccountSID:              testAccountSID,
		APIKeySID:               testAPIKeySID,
		APIKeySecret:            testSecret,
		TwiMLAppSID:             "AP00000000000000000000000000000001",
		VoiceIncoming:           true,
		ConversationsServiceSID: "IS00000000000000000000000000000001",
		SyncServiceSID:          "IS00000000000000000000000000000002",
		EnabledGrants:           grantBit(grantVideo) | grantBit(grantVoice) | grantBit(grantConversations) | grantBit(grantSync),
		DefaultGrants:           grantBit(grantVideo) | grantBit(grantVoice),
		TTL:                     time.Hour,
		MaxTTL:                  2 * time.Hour,
	}
}

// testUsers returns users with cheap hashes: name -> password.
func testUsers(t testing.TB, logins map[string]string) *userStore {
	t.Helper()
	hashes := map[string][]byte{}
	for name, pw := range logins {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		hashes[name] = h
	}
	return newUserStore(newUsers(hashes))
}

func newTestServer(t testing.TB) http.Handler {
	t.Helper()
	store := testUsers(t, map[string]string{"alice": "correct horse", "bob smith": "battery staple"})
	auth, err := newBcryptAuth(store)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return NewServer(log, cfg, auth, store, newMetrics(), func() time.Time { return specTime })
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

const (
	jsonCT = "application/json"
	formCT = "application/x-www-form-urlencoded"
)

// TestTokenSuccess checks the 200 answer for each way of sending
// credentials and options: the body, the headers and the token's claims.
func TestTokenSuccess(t *testing.T) {
	h := newTestServer(t)
	tests := []struct {
		name        string
		ct, auth    string
		body        string
		wantExp     int64
		wantGrants  string
		wantExpires string
	}{
		{"json defaults", jsonCT, "", `{"username":"alice","password":"correct horse"}`, 1795746731,
			`{"identity":"alice","video":{},"voice":{"incoming":{"allow":true},"outgoing":{"application_sid":"AP00000000000000000000000000000001"}}}`,
			"2026-11-27T02:32:11Z"},
		{"json with charset, every option", "application/json; charset=utf-8", "",
			`{"username":"alice","password":"correct horse","ttl":600,"grants":["video","voice","sync"],"room":"My Room","voice_params":{"queue":"support"}}`,
			1795743731,
			`{"identity":"alice","video":{"room":"My Room"},"voice":{"incoming":{"allow":true},"outgoing":{"application_sid":"AP00000000000000000000000000000001","params":{"queue":"support"}}},"data_sync":{"service_sid":"IS00000000000000000000000000000002"}}`,
			"2026-11-27T01:42:11Z"},
		{"json ttl and grants as strings (httpie key=value)", jsonCT, "",
			`{"username":"alice","password":"correct horse","ttl":"60","grants":"conversations"}`, 1795743191,
			`{"identity":"alice","chat":{"service_sid":"IS00000000000000000000000000000001"}}`, "2026-11-27T01:33:11Z"},
		{"form", formCT, "", "username=alice&password=correct+horse&grants=video&grants=sync&room=R1&ttl=7200", 1795750331,
			`{"identity":"alice","video":{"room":"R1"},"data_sync":{"service_sid":"IS00000000000000000000000000000002"}}`,
			"2026-11-27T03:32:11Z"},
		{"form voice params", formCT, "", "username=alice&password=correct+horse&grants=voice&voice_params%5Bagent%5D=alice", 1795746731,
			`{"identity":"alice","voice":{"incoming":{"allow":true},"outgoing":{"application_sid":"AP00000000000000000000000000000001","params":{"agent":"alice"}}}}`,
			"2026-11-27T02:32:11Z"},
		{"null optional fields mean the defaults", jsonCT, "", `{"username":"alice","password":"correct horse","ttl":null,"grants":null,"room":null,"voice_params":null}` + "\n", 1795746731,
			`{"identity":"alice","video":{},"voice":{"incoming":{"allow":true},"outgoing":{"application_sid":"AP00000000000000000000000000000001"}}}`,
			"2026-11-27T02:32:11Z"},
		{"basic auth, empty body", "", basic("alice", "correct horse"), "", 1795746731,
			`{"identity":"alice","video":{},"voice":{"incoming":{"allow":true},"outgoing":{"application_sid":"AP00000000000000000000000000000001"}}}`,
			"2026-11-27T02:32:11Z"},
		{"basic auth with options", jsonCT, basic("alice", "correct horse"), `{"grants":["video"]}`, 1795746731,
			`{"identity":"alice","video":{}}`, "2026-11-27T02:32:11Z"},
		{"identity with a space is fine without voice", jsonCT, "", `{"username":"bob smith","password":"battery staple","grants":["video"]}`, 1795746731,
			`{"identity":"bob smith","video":{}}`, "2026-11-27T02:32:11Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/token", strings.NewReader(tt.body))
			if tt.ct != "" {
				req.Header.Set("Content-Type", tt.ct)
			}
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			if got := rec.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q", got)
			}
			if got := rec.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q", got)
			}
			var resp tokenResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
				t.Fatal(err)
			}
			var wantIdentity map[string]any
			json.Unmarshal([]byte(tt.wantGrants), &wantIdentity)
			if resp.Identity != wantIdentity["identity"] || resp.ExpiresAt != tt.wantExpires {
				t.Errorf("identity, expires_at = %q, %q; want %q, %q", resp.Identity, resp.ExpiresAt, wantIdentity["identity"], tt.wantExpires)
			}
			_, claims := decodeSegments(t, resp.Token)
			want := mustJSON(t, `{"jti":"SKfeedfacefeedfacefeedfacefeedface-1795743131",
				"iss":"SKfeedfacefeedfacefeedfacefeedface","sub":"ACdeadbeefdeadbeefdeadbeefdeadbeef",
				"iat":1795743131,"nbf":1795743131,"exp":0,"grants":`+tt.wantGrants+`}`)
			want["exp"] = float64(tt.wantExp)
			if !reflect.DeepEqual(claims, want) {
				got, _ := json.Marshal(claims)
				t.Errorf("claims = %s\nwant grants %s, exp %d", got, tt.wantGrants, tt.wantExp)
			}
			verify(t, resp.Token, testSecret, specTime)
		})
	}
}

// TestTokenErrors checks every refusal: status, headers and the exact
// problem+json body.
func TestTokenErrors(t *testing.T) {
	h := newTestServer(t)
	const unauthorized = `{"type":"urn:tokend:problem:unauthorized","title":"Unauthorized","status":401,"detail":"the username or password is wrong, or none was sent; send them as JSON {\"username\", \"password\"}, a form, or HTTP Basic auth"}`
	invalid := func(detail string, params ...string) string {
		p := problem{Type: problemTypeURI + EINVALID, Title: "Invalid request", Status: 400, Detail: detail}
		for i := 0; i+1 < len(params); i += 2 {
			p.InvalidParams = append(p.InvalidParams, invalidParam{Name: params[i], Reason: params[i+1]})
		}
		b, _ := json.Marshal(p)
		return string(b)
	}
	tests := []struct {
		name       string
		method     string
		path       string
		ct, auth   string
		body       string
		wantStatus int
		wantBody   string
		wantHeader map[string]string
	}{
		{name: "wrong password", ct: jsonCT, body: `{"username":"alice","password":"wrong"}`,
			wantStatus: 401, wantBody: unauthorized, wantHeader: map[string]string{"WWW-Authenticate": `Basic realm="tokend"`}},
		{name: "unknown user", ct: jsonCT, body: `{"username":"mallory","password":"correct horse"}`,
			wantStatus: 401, wantBody: unauthorized, wantHeader: map[string]string{"WWW-Authenticate": `Basic realm="tokend"`}},
		{name: "no credentials", wantStatus: 401, wantBody: unauthorized},
		{name: "wrong password and a grant not enabled: the configuration is not told", ct: jsonCT,
			body: `{"username":"alice","password":"wrong","grants":["chat"],"ttl":999999}`, wantStatus: 401, wantBody: unauthorized},
		{name: "no password", ct: jsonCT, body: `{"username":"alice"}`, wantStatus: 401, wantBody: unauthorized},
		{name: "bearer without OIDC", auth: "Bearer abc", wantStatus: 401,
			wantBody: `{"type":"urn:tokend:problem:unauthorized","title":"Unauthorized","status":401,"detail":"this server does not accept bearer tokens; send a username and password as JSON {\"username\", \"password\"}, a form, or HTTP Basic auth"}`},
		{name: "wrong basic password", auth: basic("alice", "nope"), wantStatus: 401, wantBody: unauthorized},
		{name: "password over 72 bytes", ct: jsonCT, body: `{"username":"alice","password":"` + strings.Repeat("x", 73) + `"}`,
			wantStatus: 400, wantBody: invalid("password: is longer than 72 bytes, which bcrypt cannot check", "password", "is longer than 72 bytes, which bcrypt cannot check")},
		{name: "credentials twice", ct: jsonCT, auth: basic("alice", "correct horse"), body: `{"username":"alice","password":"correct horse"}`,
			wantStatus: 400, wantBody: invalid("credentials were sent both in the Authorization header and in the body; send them once")},
		{name: "GET", method: "GET", wantStatus: 405,
			wantBody:   `{"type":"urn:tokend:problem:method-not-allowed","title":"Method not allowed","status":405,"detail":"GET is not allowed here: request a token with POST /token"}`,
			wantHeader: map[string]string{"Allow": "POST"}},
		{name: "unknown path", method: "GET", path: "/tokens", wantStatus: 404,
			wantBody: `{"type":"urn:tokend:problem:not-found","title":"Not found","status":404,"detail":"no such endpoint /tokens; tokens are issued by POST /token"}`},
		{name: "body too large", ct: jsonCT, body: `{"username":"` + strings.Repeat("a", 70<<10) + `"}`, wantStatus: 413,
			wantBody: `{"type":"urn:tokend:problem:body-too-large","title":"Request body too large","status":413,"detail":"the request body is over 64 KiB; a token request is a few hundred bytes"}`},
		{name: "xml", ct: "application/xml", body: `<a/>`, wantStatus: 415,
			wantBody: `{"type":"urn:tokend:problem:unsupported-media-type","title":"Unsupported media type","status":415,"detail":"the Content-Type application/xml is not supported; send application/json or application/x-www-form-urlencoded"}`},
		{name: "body without content type", body: `{}`, wantStatus: 415,
			wantBody: `{"type":"urn:tokend:problem:unsupported-media-type","title":"Unsupported media type","status":415,"detail":"the request has a body but no Content-Type; send application/json or application/x-www-form-urlencoded"}`},
		{name: "malformed content type", ct: "application/json; =", body: `{}`, wantStatus: 415,
			wantBody: `{"type":"urn:tokend:problem:unsupported-media-type","title":"Unsupported media type","status":415,"detail":"the Content-Type \"application/json; =\" is malformed; send application/json or application/x-www-form-urlencoded"}`},
		{name: "broken json", ct: jsonCT, body: `{"username":`, wantStatus: 400,
			wantBody: invalid("the body is not valid JSON: it ends (after 12 bytes) before the object is complete")},
		{name: "json syntax", ct: jsonCT, body: `{"username" "alice"}`, wantStatus: 400,
			wantBody: invalid("the body is not valid JSON: a syntax error at byte 13 of 20")},
		// The decoder's own message quotes the offending byte, here
		// part of the password: the answer gives its position only.
		{name: "json syntax error does not quote the body", ct: jsonCT, body: `{"username":"alice","password":"a\qb"}`, wantStatus: 400,
			wantBody: invalid("the body is not valid JSON: a syntax error at byte 35 of 38")},
		// A proxy or audit log reading the first key sees alice; encoding/json
		// would log in the last one, matched case-insensitively.
		{name: "json key twice", ct: jsonCT, body: `{"username":"alice","username":"mallory","password":"pw"}`, wantStatus: 400,
			wantBody: invalid("username: sent more than once", "username", "sent more than once")},
		{name: "json key in another case", ct: jsonCT, body: `{"username":"alice","UserName":"mallory","PASSWORD":"pw"}`, wantStatus: 400,
			wantBody: invalid(`PASSWORD: unknown field; field names are lowercase: password; UserName: unknown field; field names are lowercase: username`,
				"PASSWORD", "unknown field; field names are lowercase: password", "UserName", "unknown field; field names are lowercase: username")},
		{name: "json key escaped to a known name twice", ct: jsonCT, body: `{"username":"alice","user\u006eame":"mallory","password":"pw"}`, wantStatus: 400,
			wantBody: invalid("username: sent more than once", "username", "sent more than once")},
		{name: "json key escaped into another case", ct: jsonCT, body: `{"username":"alice","\u0055sername":"mallory","password":"pw"}`, wantStatus: 400,
			wantBody: invalid("Username: unknown field; field names are lowercase: username", "Username", "unknown field; field names are lowercase: username")},
		{name: "json voice param twice", ct: jsonCT, body: `{"username":"alice","password":"correct horse","voice_params":{"to":"a","to":"b"}}`, wantStatus: 400,
			wantBody: invalid("voice_params: has the parameter \"to\" more than once", "voice_params", "has the parameter \"to\" more than once")},
		{name: "json array", ct: jsonCT, body: `[1]`, wantStatus: 400,
			wantBody: invalid("the body must be a JSON object with the fields username, password, ttl, grants, room, voice_params, session")},
		{name: "two json values", ct: jsonCT, body: `{"username":"alice","password":"correct horse"} {}`, wantStatus: 400,
			wantBody: invalid("the body holds more than one JSON value; send one object")},
		{name: "stray bracket after the object", ct: jsonCT, body: `{"username":"alice","password":"correct horse"}]`, wantStatus: 400,
			wantBody: invalid("the body holds more than one JSON value; send one object")},
		{name: "unknown json field", ct: jsonCT, body: `{"usename":"alice"}`, wantStatus: 400,
			wantBody: invalid("usename: unknown field; the fields are username, password, ttl, grants, room, voice_params, session", "usename", "unknown field; the fields are username, password, ttl, grants, room, voice_params, session")},
		{name: "username not a string", ct: jsonCT, body: `{"username":5}`, wantStatus: 400,
			wantBody: invalid("username: must be a string, not a JSON number", "username", "must be a string, not a JSON number")},
		{name: "ttl not a number", ct: jsonCT, body: `{"username":"alice","password":"correct horse","ttl":true}`, wantStatus: 400,
			wantBody: invalid("ttl: must be a whole number of seconds", "ttl", "must be a whole number of seconds")},
		{name: "grants not a list", ct: jsonCT, body: `{"grants":{"video":true}}`, wantStatus: 400,
			wantBody: invalid("grants: must be a list of grant names or a comma-separated string", "grants", "must be a list of grant names or a comma-separated string")},
		{name: "voice_params not strings", ct: jsonCT, body: `{"voice_params":{"a":1}}`, wantStatus: 400,
			wantBody: invalid("voice_params: must be an object of string values, not a JSON number", "voice_params", "must be an object of string values, not a JSON number")},
		{name: "ttl above max", ct: jsonCT, body: `{"username":"alice","password":"correct horse","ttl":7201}`, wantStatus: 400,
			wantBody: invalid("ttl: must be a whole number of seconds from 1 to 7200, not 7201", "ttl", "must be a whole number of seconds from 1 to 7200, not 7201")},
		{name: "ttl zero and bad grant", ct: jsonCT, body: `{"username":"alice","password":"correct horse","ttl":0,"grants":["rtc"]}`, wantStatus: 400,
			wantBody: invalid(`grants: unknown grant "rtc" (known: video, voice, chat, conversations, sync); ttl: must be a whole number of seconds from 1 to 7200, not 0`,
				"grants", `unknown grant "rtc" (known: video, voice, chat, conversations, sync)`, "ttl", "must be a whole number of seconds from 1 to 7200, not 0")},
		{name: "ttl fraction", ct: jsonCT, body: `{"username":"alice","password":"correct horse","ttl":1.5}`, wantStatus: 400,
			wantBody: invalid("ttl: must be a whole number of seconds from 1 to 7200, not 1.5", "ttl", "must be a whole number of seconds from 1 to 7200, not 1.5")},
		{name: "grant not enabled", ct: jsonCT, body: `{"username":"alice","password":"correct horse","grants":["chat"]}`, wantStatus: 400,
			wantBody: invalid("grants: chat is not enabled on this server (enabled: video,voice,conversations,sync)", "grants", "chat is not enabled on this server (enabled: video,voice,conversations,sync)")},
		{name: "chat and conversations", ct: jsonCT, body: `{"username":"alice","password":"correct horse","grants":"chat,conversations"}`, wantStatus: 400,
			wantBody: invalid("grants: chat and conversations cannot be in one token: both use the token's single chat grant", "grants", "chat and conversations cannot be in one token: both use the token's single chat grant")},
		{name: "empty grants", ct: jsonCT, body: `{"username":"alice","password":"correct horse","grants":" , "}`, wantStatus: 400,
			wantBody: invalid("grants: names no grant; leave it out for the default grants (video,voice)", "grants", "names no grant; leave it out for the default grants (video,voice)")},
		{name: "room without video", ct: jsonCT, body: `{"username":"alice","password":"correct horse","grants":["sync"],"room":"R"}`, wantStatus: 400,
			wantBody: invalid("room: is for the video grant, which this token does not carry", "room", "is for the video grant, which this token does not carry")},
		{name: "room too long", ct: jsonCT, body: `{"username":"alice","password":"correct horse","room":"` + strings.Repeat("r", 129) + `"}`, wantStatus: 400,
			wantBody: invalid("room: is 129 characters; Twilio Video allows at most 128", "room", "is 129 characters; Twilio Video allows at most 128")},
		{name: "a grant not enabled: no false voice_params entry", ct: jsonCT, body: `{"username":"alice","password":"correct horse","grants":"voice,chat","voice_params":{"queue":"support"}}`, wantStatus: 400,
			wantBody: invalid("grants: chat is not enabled on this server (enabled: video,voice,conversations,sync)", "grants", "chat is not enabled on this server (enabled: video,voice,conversations,sync)")},
		{name: "voice params without voice", ct: jsonCT, body: `{"username":"alice","password":"correct horse","grants":["video"],"voice_params":{"a":"b"}}`, wantStatus: 400,
			wantBody: invalid("voice_params: is for the voice grant, which this token does not carry", "voice_params", "is for the voice grant, which this token does not carry")},
		{name: "voice identity", ct: jsonCT, body: `{"username":"bob smith","password":"battery staple"}`, wantStatus: 400,
			wantBody: invalid(`identity: the identity is the username "bob smith", which Twilio Voice allows only letters, digits and _ in an identity; use a username without other characters, or a token without the voice grant`,
				"identity", `the identity is the username "bob smith", which Twilio Voice allows only letters, digits and _ in an identity; use a username without other characters, or a token without the voice grant`)},
		{name: "unknown form field", ct: formCT, body: `username=alice&identity=root`, wantStatus: 400,
			wantBody: invalid("identity: unknown field; the fields are username, password, ttl, grants, room, voice_params, session (voice_params as voice_params[NAME]=VALUE)", "identity", "unknown field; the fields are username, password, ttl, grants, room, voice_params, session (voice_params as voice_params[NAME]=VALUE)")},
		{name: "form field twice", ct: formCT, body: `username=alice&username=bob`, wantStatus: 400,
			wantBody: invalid("username: sent more than once", "username", "sent more than once")},
		{name: "malformed form", ct: formCT, body: `username=%zz`, wantStatus: 400,
			wantBody: invalid(`the form body is malformed: a % that does not start a two-digit hex escape (write a literal % as %25); encode it as application/x-www-form-urlencoded`)},
		{name: "form with a raw semicolon", ct: formCT, body: `username=alice&password=a;b`, wantStatus: 400,
			wantBody: invalid(`the form body is malformed: it has a raw ; (fields are separated by &, and a ; in a value is sent as %3B); encode it as application/x-www-form-urlencoded`)},
		{name: "json sent as a form (curl -d without -H)", ct: formCT, body: `{"username":"alice","password":"hunter2"}`, wantStatus: 415,
			wantBody: `{"type":"urn:tokend:problem:unsupported-media-type","title":"Unsupported media type","status":415,"detail":"the body looks like JSON but was sent as application/x-www-form-urlencoded (what curl -d sends unless told otherwise); send it with Content-Type: application/json"}`},
		{name: "form field that is not a name is not echoed", ct: formCT, body: `username=alice&hunter2 secret!`, wantStatus: 400,
			wantBody: invalid("the body has a field that is not one of username, password, ttl, grants, room, voice_params, session (voice_params as voice_params[NAME]=VALUE)")},
		{name: "json key that is not a name is not echoed", ct: jsonCT, body: `{"hunter2 secret!":1}`, wantStatus: 400,
			wantBody: invalid("the body has a field that is not one of username, password, ttl, grants, room, voice_params, session")},
		{name: "form room not UTF-8", ct: formCT, body: `username=alice&password=correct+horse&room=Caf%E9&voice_params%5Bq%5D=%FF`, wantStatus: 400,
			wantBody: invalid("room: is not valid UTF-8; voice_params: has a parameter that is not valid UTF-8", "room", "is not valid UTF-8", "voice_params", "has a parameter that is not valid UTF-8")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method, path := tt.method, tt.path
			if method == "" {
				method = "POST"
			}
			if path == "" {
				path = "/token"
			}
			req := httptest.NewRequest(method, path, strings.NewReader(tt.body))
			if tt.ct != "" {
				req.Header.Set("Content-Type", tt.ct)
			}
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			if got := strings.TrimSpace(rec.Body.String()); got != tt.wantBody {
				t.Errorf("body = %s\nwant   %s", got, tt.wantBody)
			}
			if got := rec.Header().Get("Content-Type"); got != "application/problem+json" {
				t.Errorf("Content-Type = %q", got)
			}
			for k, v := range tt.wantHeader {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if tt.wantStatus != 401 && rec.Header().Get("WWW-Authenticate") != "" {
				t.Error("WWW-Authenticate on a non-401 answer")
			}
		})
	}
}

// panicAuth stands in for an authenticator with a bug.
type panicAuth struct{}

func (panicAuth) Authenticate(context.Context, string, string) error { panic("boom: secret internals") }

// errAuth stands in for an authenticator that fails inside.
type errAuth struct{}

func (errAuth) Authenticate(context.Context, string, string) error {
	return errors.New("users backend: connection refused")
}

func TestTokenInternalErrorsDoNotLeak(t *testing.T) {
	cfg := testConfig()
	const want = `{"type":"urn:tokend:problem:internal","title":"Internal error","status":500,"detail":"internal error"}`
	for _, auth := range []Authenticator{panicAuth{}, errAuth{}} {
		var logs strings.Builder
		log := slog.New(slog.NewTextHandler(&logs, nil))
		h := NewServer(log, cfg, auth, nil, newMetrics(), time.Now)
		req := httptest.NewRequest("POST", "/token", strings.NewReader(`{"username":"alice","password":"pw"}`))
		req.Header.Set("Content-Type", jsonCT)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 500 || strings.TrimSpace(rec.Body.String()) != want {
			t.Errorf("%T: %d %s", auth, rec.Code, rec.Body)
		}
		if !strings.Contains(logs.String(), "internal error") {
			t.Errorf("%T: the cause was not logged: %s", auth, logs.String())
		}
	}
}

// TestWriteTokenResponse: the hand-assembled 200 body is byte for byte what
// encoding/json writes, whatever the identity holds.
func TestWriteTokenResponse(t *testing.T) {
	m := NewMinter(testAccountSID, testAPIKeySID, testSecret, "ie1")
	token, _, err := m.Mint(specTime, time.Hour, specGrants())
	if err != nil {
		t.Fatal(err)
	}
	for _, identity := range []string{"alice", `quote " and \ backslash`, "<script>&", "é 中文 \u2028", "tab\there", " ~!#$%'()*+,-./:;=?@[]^_`{|}", "del\x7f"} {
		resp := tokenResponse{Token: token, Identity: identity, ExpiresAt: "2026-11-27T02:32:11Z"}
		rec := httptest.NewRecorder()
		writeTokenResponse(rec, resp)
		want, _ := json.Marshal(resp)
		if got := rec.Body.String(); got != string(want)+"\n" {
			t.Errorf("identity %q:\n got %s\nwant %s", identity, got, want)
		}
		if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("identity %q: %d %v", identity, rec.Code, rec.Header())
		}
	}
}

// BenchmarkDecodeJSONRequest measures the JSON body's decoding on the /token
// hot path, the duplicate- and case-key check included.
func BenchmarkDecodeJSONRequest(b *testing.B) {
	body := []byte(`{"username":"alice","password":"correct horse","ttl":600,"grants":["video","voice"],"room":"R1","voice_params":{"queue":"support"}}`)
	b.ReportAllocs()
	for b.Loop() {
		var req tokenRequest
		if err := decodeJSONRequest(body, &req); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRecentTokens: a repeated plan in the same second gets the token
// already signed, byte for byte what Mint signs; anything that would change
// the token (second, identity, grants, TTL, a room or voice parameters)
// gets a new one, and so does an identity whose slot another took since.
func TestRecentTokens(t *testing.T) {
	cfg := testConfig()
	m := NewMinter(testAccountSID, testAPIKeySID, testSecret, "")
	plan := tokenPlan{grants: cfg.DefaultGrants, ttl: time.Hour}
	withRoom, withParams := plan, plan
	withRoom.opt.Room = "R1"
	withParams.opt.VoiceParams = map[string]string{"queue": "support"}
	tests := []struct {
		name     string
		between  string // an identity that logs in between, if any
		plan     tokenPlan
		at       time.Time
		identity string
		reused   bool // the first login's token is answered again
	}{
		{"same second", "", plan, specTime.Add(999 * time.Millisecond), "alice", true},
		{"another login between", "carol", plan, specTime, "alice", true},
		{"next second", "", plan, specTime.Add(time.Second), "alice", false},
		{"other identity", "", plan, specTime, "carol", false},
		{"other grants", "", tokenPlan{grants: grantBit(grantVideo), ttl: time.Hour}, specTime, "alice", false},
		{"other ttl", "", tokenPlan{grants: plan.grants, ttl: time.Minute}, specTime, "alice", false},
		{"a room", "", withRoom, specTime, "alice", false},
		{"voice parameters", "", withParams, specTime, "alice", false},
		{"slot taken between", "bob", plan, specTime, "alice", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := newRecentTokens()
			first, err := rt.mint(plan, cfg, m, specTime, "alice")
			if err != nil {
				t.Fatal(err)
			}
			if tt.between == "bob" { // bob: a name that hashes to alice's slot
				for i := 0; rt.slot(tt.between) != rt.slot("alice"); i++ {
					tt.between = fmt.Sprintf("bob%d", i)
				}
			}
			if tt.between != "" {
				if _, err := rt.mint(plan, cfg, m, specTime, tt.between); err != nil {
					t.Fatal(err)
				}
			}
			got, err := rt.mint(tt.plan, cfg, m, tt.at, tt.identity)
			if err != nil {
				t.Fatal(err)
			}
			if reused := got == first; reused != tt.reused {
				t.Errorf("reused = %v, want %v", reused, tt.reused)
			}
			want, claims, err := tt.plan.mint(cfg, m, tt.at, tt.identity)
			if err != nil {
				t.Fatal(err)
			}
			wantAnswer, _ := json.Marshal(tokenResponse{Token: want, Identity: tt.identity, ExpiresAt: time.Unix(claims.ExpiresAt, 0).UTC().Format(time.RFC3339)})
			if got.token != want || got.claims.JTI != claims.JTI || string(got.answer) != string(wantAnswer)+"\n" || got.answerLength[0] != strconv.Itoa(len(got.answer)) {
				t.Errorf("got %s %s %q %v\nwant %s %s %s", got.token, got.claims.JTI, got.answer, got.answerLength, want, claims.JTI, wantAnswer)
			}
		})
	}
}

// TestRecentTokensConcurrent: logins of many identities at once, in the same
// second, each get their own identity's token (go test -race checks the
// slots' publication).
func TestRecentTokensConcurrent(t *testing.T) {
	cfg := testConfig()
	m := NewMinter(testAccountSID, testAPIKeySID, testSecret, "")
	rt := newRecentTokens()
	plan := tokenPlan{grants: cfg.DefaultGrants, ttl: time.Hour}
	want := map[string]string{}
	for i := range 600 { // more identities than slots: collisions replace each other
		id := fmt.Sprintf("user%d", i)
		want[id], _, _ = plan.mint(cfg, m, specTime, id)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 3000 {
				id := fmt.Sprintf("user%d", (i*7+g)%600)
				got, err := rt.mint(plan, cfg, m, specTime, id)
				if err != nil || got.token != want[id] || got.identity != id {
					t.Errorf("%s: got the token of %q (%v)", id, got.identity, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// arrayEnds records, for every Read, where the array that Read fills ends:
// reads into one array all end at the same address.
type arrayEnds struct {
	r    io.Reader
	ends []uintptr
}

func (a *arrayEnds) Read(p []byte) (int, error) {
	a.ends = append(a.ends, uintptr(unsafe.Pointer(unsafe.SliceData(p)))+uintptr(cap(p)))
	return a.r.Read(p)
}

// TestReadBodyOneArray: a body of declared length is read into the array
// it is left in, whatever its size, so no grown-out copy of a password is
// left behind uncleared.
func TestReadBodyOneArray(t *testing.T) {
	for _, n := range []int{10, 600, 1500, 5000, maxBodyBytes - 40} {
		body := `{"username":"a","password":"` + strings.Repeat("p", n) + `"}`
		src := &arrayEnds{r: strings.NewReader(body)}
		r := httptest.NewRequest("POST", "/token", src)
		r.ContentLength = int64(len(body))
		r.Header.Set("Content-Type", "application/json")
		buf := getBodyBuffer()
		if _, err := readBody(httptest.NewRecorder(), r, buf); err != nil || buf.String() != body {
			t.Fatalf("%d: %v, %d bytes read", n, err, buf.Len())
		}
		end := uintptr(unsafe.Pointer(unsafe.SliceData(buf.Bytes()))) + uintptr(buf.Cap())
		for i, e := range src.ends {
			if e != end {
				t.Errorf("password of %d bytes: read %d of %d went into an array the buffer left behind", n, i+1, len(src.ends))
			}
		}
		putBodyBuffer(buf)
	}
}
