package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// TestRequestLogLine checks the one line each request logs, field by field,
// for a success, each kind of failure and the levels that show them.
func TestRequestLogLine(t *testing.T) {
	const unauthorizedDetail = "the username or password is wrong, or none was sent; send them as JSON {\"username\", \"password\"}, a form, or HTTP Basic auth"
	tests := []struct {
		name       string
		level      slog.Level
		method     string
		target     string
		ct, auth   string
		body       string
		want       map[string]any // without time and duration
		wantNoLine bool
	}{
		{name: "success", level: slog.LevelInfo, method: "POST", target: "/token", ct: jsonCT,
			body: `{"username":"alice","password":"correct horse","grants":"video,sync"}`,
			want: map[string]any{"level": "INFO", "msg": "request", "method": "POST", "path": "/token", "status": 200.0,
				"client": "192.0.2.1", "identity": "alice", "grants": "video,sync", "jti": "SKfeedfacefeedfacefeedfacefeedface-1795743131"}},
		{name: "success by basic auth", level: slog.LevelInfo, method: "POST", target: "/token", auth: basic("alice", "correct horse"),
			want: map[string]any{"level": "INFO", "msg": "request", "method": "POST", "path": "/token", "status": 200.0,
				"client": "192.0.2.1", "identity": "alice", "grants": "video,voice", "jti": "SKfeedfacefeedfacefeedfacefeedface-1795743131"}},
		{name: "wrong password", level: slog.LevelInfo, method: "POST", target: "/token", ct: jsonCT,
			body: `{"username":"alice","password":"wrong"}`,
			want: map[string]any{"level": "INFO", "msg": "request", "method": "POST", "path": "/token", "status": 401.0,
				"client": "192.0.2.1", "problem": "unauthorized", "auth_failure": "wrong_password"}},
		{name: "unknown user, debug adds the detail", level: slog.LevelDebug, method: "POST", target: "/token", ct: jsonCT,
			body: `{"username":"mallory","password":"correct horse"}`,
			want: map[string]any{"level": "INFO", "msg": "request", "method": "POST", "path": "/token", "status": 401.0,
				"client": "192.0.2.1", "problem": "unauthorized", "auth_failure": "unknown_user", "detail": unauthorizedDetail}},
		{name: "bearer token", level: slog.LevelInfo, method: "POST", target: "/token", auth: "Bearer abc",
			want: map[string]any{"level": "INFO", "msg": "request", "method": "POST", "path": "/token", "status": 401.0,
				"client": "192.0.2.1", "problem": "unauthorized", "auth_failure": "malformed_authorization"}},
		{name: "no password", level: slog.LevelInfo, method: "POST", target: "/token", ct: jsonCT, body: `{"username":"alice"}`,
			want: map[string]any{"level": "INFO", "msg": "request", "method": "POST", "path": "/token", "status": 401.0,
				"client": "192.0.2.1", "problem": "unauthorized", "auth_failure": "missing_credentials"}},
		{name: "invalid field at debug", level: slog.LevelDebug, method: "POST", target: "/token", ct: jsonCT,
			body: `{"username":"alice","password":"correct horse","ttl":0}`,
			want: map[string]any{"level": "INFO", "msg": "request", "method": "POST", "path": "/token", "status": 400.0,
				"client": "192.0.2.1", "problem": "invalid-request", "detail": "ttl: must be a whole number of seconds from 1 to 7200, not 0"}},
		{name: "the query is not logged", level: slog.LevelInfo, method: "GET", target: "/nope?password=hunter2",
			want: map[string]any{"level": "INFO", "msg": "request", "method": "GET", "path": "/nope", "status": 404.0,
				"client": "192.0.2.1", "problem": "not-found"}},
		{name: "health", level: slog.LevelInfo, method: "GET", target: "/healthz",
			want: map[string]any{"level": "INFO", "msg": "request", "method": "GET", "path": "/healthz", "status": 200.0, "client": "192.0.2.1"}},
		{name: "warn level hides requests", level: slog.LevelWarn, method: "GET", target: "/healthz", wantNoLine: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			log := newLogger(&logs, "json", tt.level)
			store := testUsers(t, map[string]string{"alice": "correct horse"})
			auth, err := newBcryptAuth(store)
			if err != nil {
				t.Fatal(err)
			}
			cfg := testConfig()
			h := NewServer(log, cfg, auth, store, newMetrics(), func() time.Time { return specTime })
			req := httptest.NewRequest(tt.method, tt.target, strings.NewReader(tt.body))
			if tt.ct != "" {
				req.Header.Set("Content-Type", tt.ct)
			}
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			h.ServeHTTP(httptest.NewRecorder(), req)

			lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
			if tt.wantNoLine {
				if logs.Len() != 0 {
					t.Errorf("logged %s", logs.String())
				}
				return
			}
			if len(lines) != 1 {
				t.Fatalf("want one line, got %d:\n%s", len(lines), logs.String())
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
				t.Fatal(err)
			}
			if d, ok := got["duration_ms"].(float64); !ok || d <= 0 {
				t.Errorf("duration_ms = %v, want milliseconds > 0", got["duration_ms"])
			}
			if _, err := time.Parse(time.RFC3339Nano, got["time"].(string)); err != nil {
				t.Errorf("time: %v", err)
			}
			delete(got, "duration_ms")
			delete(got, "time")
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("log line = %v\nwant       %v", got, tt.want)
			}
		})
	}
}

// TestRequestLogInternalError: a 5xx is logged at error level, after the
// line with the cause that writeError logs.
func TestRequestLogInternalError(t *testing.T) {
	var logs bytes.Buffer
	cfg := testConfig()
	h := NewServer(newLogger(&logs, "text", slog.LevelInfo), cfg, errAuth{}, nil, newMetrics(), time.Now)
	req := httptest.NewRequest("POST", "/token", strings.NewReader(`{"username":"alice","password":"pw"}`))
	req.Header.Set("Content-Type", jsonCT)
	h.ServeHTTP(httptest.NewRecorder(), req)
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 ||
		!strings.Contains(lines[0], `level=ERROR msg="internal error" method=POST path=/token err="users backend: connection refused"`) ||
		!strings.Contains(lines[1], "level=ERROR msg=request method=POST path=/token status=500 duration=") ||
		!strings.HasSuffix(lines[1], " client=192.0.2.1 problem=internal") {
		t.Errorf("logs:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "pw") {
		t.Error("the password is in the log")
	}
}

// TestLogsHoldNoSecrets runs tokend through run at debug level, in both
// formats, sends it successes and every kind of failure with real-looking
// credentials in every place a client puts them, and searches everything
// it wrote for each password, token, Authorization header and the API key
// secret.
func TestLogsHoldNoSecrets(t *testing.T) {
	const (
		password      = "Correct-Horse-7731"
		wrongPassword = "Wrong-Guess-4410"
		otherPassword = "Mallory-Pass-9902"
	)
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			hash, _ := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
			users := filepath.Join(dir, "users.htpasswd")
			os.WriteFile(users, []byte("alice:"+string(hash)+"\n"), 0o600)
			addr := freeAddr(t)
			env := map[string]string{
				"TWILIO_ACCOUNT_SID":    testAccountSID,
				"TWILIO_API_KEY_SID":    testAPIKeySID,
				"TWILIO_API_KEY_SECRET": testSecret,
				"TWILIO_TWIML_APP_SID":  "AP00000000000000000000000000000001",
				"USERS_FILE":            users,
				"LISTEN_ADDR":           addr,
				"LOG_FORMAT":            format,
				"LOG_LEVEL":             "debug",
			}
			var stdout, stderr syncBuffer
			errc := startRun(t, []string{"serve", "--env-file", filepath.Join(dir, ".env")}, env, &stdout, &stderr)
			base := "http://" + addr
			waitReady(t, base, errc)

			secrets := []string{testSecret, password, wrongPassword, otherPassword}
			send := func(method, target, ct, auth, body string, wantStatus int) string {
				t.Helper()
				req, _ := http.NewRequest(method, base+target, strings.NewReader(body))
				if ct != "" {
					req.Header.Set("Content-Type", ct)
				}
				if auth != "" {
					req.Header.Set("Authorization", auth)
					secrets = append(secrets, auth, strings.TrimPrefix(auth, "Basic "))
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != wantStatus {
					t.Errorf("%s %s %s: status %d, want %d: %s", method, target, body, resp.StatusCode, wantStatus, b)
				}
				return string(b)
			}
			token := func(body string) string {
				var resp tokenResponse
				json.Unmarshal([]byte(body), &resp)
				if resp.Token == "" {
					t.Fatalf("no token in %s", body)
				}
				secrets = append(secrets, resp.Token, resp.Token[strings.LastIndexByte(resp.Token, '.')+1:])
				return resp.Token
			}
			login := `{"username":"alice","password":"` + password + `"`
			tok := token(send("POST", "/token", jsonCT, "", login+`}`, 200))
			token(send("POST", "/token", formCT, "", "username=alice&password="+password+"&grants=voice&voice_params%5Bq%5D=x", 200))
			token(send("POST", "/token", "", basic("alice", password), "", 200))
			requests := []struct {
				method, target, ct, auth, body string
				status                         int
			}{
				{"POST", "/token", jsonCT, "", `{"username":"alice","password":"` + wrongPassword + `"}`, 401},
				{"POST", "/token", jsonCT, "", `{"username":"mallory","password":"` + otherPassword + `"}`, 401},
				{"POST", "/token", jsonCT, "", `{"username":"` + password + `","password":"` + otherPassword + `"}`, 401},
				{"POST", "/token", "", basic("alice", wrongPassword), "", 401},
				{"POST", "/token", "", "Bearer " + tok, "", 401},
				{"POST", "/token", "", "Basic " + base64.StdEncoding.EncodeToString([]byte(password)), "", 401},
				{"POST", "/token", jsonCT, "", `{"password":"` + password + `"}`, 401},
				{"POST", "/token", jsonCT, basic("alice", password), login + `}`, 400},
				{"POST", "/token", jsonCT, "", login + `,"ttl":999999}`, 400},
				{"POST", "/token", jsonCT, "", login + `,"grants":["rtc"]}`, 400},
				{"POST", "/token", jsonCT, "", login + `,"room":"r","grants":"sync"}`, 400},
				{"POST", "/token", jsonCT, "", login + `,"pass":"` + otherPassword + `"}`, 400},
				{"POST", "/token", jsonCT, "", login, 400},
				{"POST", "/token", jsonCT, "", login + ` "x"}`, 400},
				{"POST", "/token", jsonCT, "", `{"username":"alice","password":"` + otherPassword + strings.Repeat("x", 60) + `"}`, 400},
				{"POST", "/token", formCT, "", "username=alice&password=" + password + "&password=" + otherPassword, 400},
				{"POST", "/token", jsonCT, "", login + `,"room":"` + strings.Repeat("r", 70<<10) + `"}`, 413},
				{"POST", "/token", "text/plain", "", password, 415},
				{"POST", "/token", "", "", "password=" + password, 415},
				{"GET", "/token?password=" + password, "", basic("alice", password), "", 405},
				{"GET", "/nope?password=" + password, "", "", "", 404},
				{"GET", "/healthz", "", "", "", 200},
				{"GET", "/readyz", "", "", "", 200},
			}
			for _, r := range requests {
				send(r.method, r.target, r.ct, r.auth, r.body, r.status)
			}
			metrics := send("GET", "/metrics", "", "", "", 200)
			if !strings.Contains(metrics, `tokend_auth_failures_total{reason="bad_credentials"} 4`) {
				t.Errorf("metrics lack the wrong passwords and unknown users:\n%s", metrics)
			}

			logs := stdout.String() + stderr.String()
			for _, s := range secrets {
				if strings.Contains(logs, s) {
					t.Errorf("the logs hold the secret %.20q", s)
				}
				if strings.Contains(metrics, s) {
					t.Errorf("the metrics hold the secret %.20q", s)
				}
			}
			// The search above can only fail if the log holds what it should:
			// a line for every /token request, and who got which token.
			want := 3
			for _, r := range requests {
				if strings.HasPrefix(r.target, "/token") {
					want++
				}
			}
			tokenLines := 0
			for _, line := range strings.Split(logs, "\n") {
				if strings.Contains(line, "path=/token ") || strings.Contains(line, `"path":"/token"`) {
					tokenLines++
				}
			}
			if tokenLines != want {
				t.Errorf("%d request lines for /token, want one per request: %d\n%s", tokenLines, want, logs)
			}
			jti := testAPIKeySID + "-"
			if !strings.Contains(logs, jti) || (!strings.Contains(logs, "identity=alice") && !strings.Contains(logs, `"identity":"alice"`)) {
				t.Errorf("no identity or jti in the log:\n%s", logs)
			}
		})
	}
}

// TestJSONDurationsInMilliseconds: a duration in a JSON line is a number
// whose name carries its unit; text keeps Go's own notation.
func TestJSONDurationsInMilliseconds(t *testing.T) {
	for _, tt := range []struct{ format, want string }{
		{"json", `"msg":"request","duration_ms":208.619567}`},
		{"text", `msg=request duration=208.619567ms`},
	} {
		var buf bytes.Buffer
		newLogger(&buf, tt.format, slog.LevelInfo).Info("request", "duration", 208619567*time.Nanosecond)
		if got := strings.TrimSpace(buf.String()); !strings.HasSuffix(got, tt.want) {
			t.Errorf("%s: %s, want it to end with %s", tt.format, got, tt.want)
		}
	}
}

// brokenConn is a response writer whose connection has failed, as one whose
// write timeout has passed: writes are buffered, the flush fails.
type brokenConn struct{ *httptest.ResponseRecorder }

func (brokenConn) FlushError() error {
	return errors.New("write tcp 127.0.0.1:8080->127.0.0.1:50000: i/o timeout")
}

// TestUndeliveredAnswer: an answer the connection could not carry is
// neither logged as a 200 nor counted as a token issued.
func TestUndeliveredAnswer(t *testing.T) {
	var logs bytes.Buffer
	log := newLogger(&logs, "json", slog.LevelInfo)
	store := testUsers(t, map[string]string{"alice": "correct horse"})
	auth, err := newBcryptAuth(store)
	if err != nil {
		t.Fatal(err)
	}
	m := newMetrics()
	h := NewServer(log, testConfig(), auth, store, m, func() time.Time { return specTime })
	req := httptest.NewRequest("POST", "/token", strings.NewReader(`{"username":"alice","password":"correct horse","grants":"video"}`))
	req.Header.Set("Content-Type", jsonCT)
	req.RemoteAddr = "192.0.2.1:1234"
	h.ServeHTTP(brokenConn{httptest.NewRecorder()}, req)

	var line map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(logs.Bytes()), &line); err != nil {
		t.Fatalf("log: %v\n%s", err, logs.String())
	}
	delete(line, "time")
	delete(line, "duration")
	delete(line, "duration_ms")
	want := map[string]any{"level": "WARN", "msg": "request not delivered", "method": "POST", "path": "/token",
		"unsent_status": 200.0, "client": "192.0.2.1", "identity": "alice", "grants": "video", "jti": "SKfeedfacefeedfacefeedfacefeedface-1795743131",
		"error": "write tcp 127.0.0.1:8080->127.0.0.1:50000: i/o timeout"}
	if !reflect.DeepEqual(line, want) {
		t.Errorf("log line:\n got %v\nwant %v", line, want)
	}
	// A guesser who drops each connection is still counted.
	req = httptest.NewRequest("POST", "/token", strings.NewReader(`{"username":"alice","password":"wrong"}`))
	req.Header.Set("Content-Type", jsonCT)
	h.ServeHTTP(brokenConn{httptest.NewRecorder()}, req)
	got := scrape(t, NewServer(log, testConfig(), auth, store, m, time.Now))
	for _, w := range []string{
		`tokend_tokens_issued_total{grant="video"} 0`,
		`tokend_auth_failures_total{reason="bad_credentials"} 1`,
		`tokend_http_request_duration_seconds_count{route="/token",status="undelivered"} 2`,
	} {
		if !slices.Contains(got, w) {
			t.Errorf("metrics lack %s:\n%s", w, strings.Join(got, "\n"))
		}
	}
}
