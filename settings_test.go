package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestUnknownSettings(t *testing.T) {
	tests := []struct {
		name  string
		names []string
		want  []string
	}{
		{"known names and other programs' names pass", []string{"TWILIO_ACCOUNT_SID", "CORS_ALLOWED_ORIGINS", "PATH", "HOME", "DATABASE_URL"}, nil},
		{"a missing letter", []string{"CORS_ALLOWED_ORIGIN"},
			[]string{"CORS_ALLOWED_ORIGIN in .env is not a tokend setting and is ignored; did you mean CORS_ALLOWED_ORIGINS?"}},
		{"a transposition", []string{"TOKEN_TLL"},
			[]string{"TOKEN_TLL in .env is not a tokend setting and is ignored; did you mean TOKEN_TTL?"}},
		{"the Twilio CLI's names", []string{"TWILIO_API_SECRET", "TWILIO_API_KEY", "TWILIO_AUTH_TOKEN"}, []string{
			"TWILIO_API_KEY in .env is not a tokend setting and is ignored: tokend calls it TWILIO_API_KEY_SID",
			"TWILIO_API_SECRET in .env is not a tokend setting and is ignored: tokend calls it TWILIO_API_KEY_SECRET",
			"TWILIO_AUTH_TOKEN in .env is not a tokend setting and is ignored: tokend does not read it: tokens are signed with an API key (TWILIO_API_KEY_SID and TWILIO_API_KEY_SECRET), never the Auth Token",
		}},
		{"Zoom apps' usual names", []string{"ZOOM_SDK_SECRET", "ZOOM_SDK_KEY"}, []string{
			"ZOOM_SDK_KEY in .env is not a tokend setting and is ignored: tokend calls it ZOOM_VIDEO_SDK_KEY (a Video SDK app's key: a Meeting SDK key does not work)",
			"ZOOM_SDK_SECRET in .env is not a tokend setting and is ignored: tokend calls it ZOOM_VIDEO_SDK_SECRET (a Video SDK app's secret: a Meeting SDK secret does not work)",
		}},
		{"nothing near", []string{"LIMIT_EVERYTHING_PLEASE"},
			[]string{"LIMIT_EVERYTHING_PLEASE in .env is not a tokend setting and is ignored (`tokend help` lists the settings)"}},
		{"a session setting misspelt", []string{"SESSION_IDLE_TIMOUT"},
			[]string{"SESSION_IDLE_TIMOUT in .env is not a tokend setting and is ignored; did you mean SESSION_IDLE_TIMEOUT?"}},
		{"a prefix of tokend's own, nothing near", []string{"SESSION_COOKIE_DOMAIN"},
			[]string{"SESSION_COOKIE_DOMAIN in .env is not a tokend setting and is ignored (`tokend help` lists the settings)"}},
		{"sorted, whatever the order found", []string{"USERS_FLIE", "BCRYPT_SLOT"}, []string{
			"BCRYPT_SLOT in .env is not a tokend setting and is ignored; did you mean BCRYPT_SLOTS?",
			"USERS_FLIE in .env is not a tokend setting and is ignored; did you mean USERS_FILE?",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := unknownSettings(tt.names, ".env"); !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestSecretWarnings(t *testing.T) {
	tests := []struct {
		name, secret, want string
	}{
		{"an API key secret's shape", "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4", ""},
		{"an Auth Token's shape", "0123456789abcdef0123456789abcdef",
			`TWILIO_API_KEY_SECRET looks like an Auth Token (32 lowercase hex digits): Twilio refuses tokens signed with one ("signature does not match"); use the secret shown when the API key was created, 32 letters and digits`},
		{"too short", "Z9y8X7w6V5u4T3s2",
			"TWILIO_API_KEY_SECRET is 16 characters, not the 32 letters and digits of an API key secret: check that it was copied whole, without quotes or spaces"},
		{"quoted twice", `'Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4'`,
			"TWILIO_API_KEY_SECRET is 34 characters, not the 32 letters and digits of an API key secret: check that it was copied whole, without quotes or spaces"},
		{"the key's SID", "SKfeedfacefeedfacefeedfacefeedface",
			"TWILIO_API_KEY_SECRET looks like a SID (SK…), not a secret: use the secret shown when the API key was created, 32 letters and digits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(secretWarnings(tt.secret), "\n")
			if got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
			if tt.want != "" && strings.Contains(got, tt.secret) {
				t.Error("the warning shows the secret")
			}
		})
	}
}

func TestSIDInTheWrongSetting(t *testing.T) {
	env := cmdEnv("TWILIO_API_KEY_SID", testAccountSID, "TWILIO_SYNC_SERVICE_SID", "AP00000000000000000000000000000001")
	_, err := loadConfig(mapEnv(env))
	want := `invalid configuration:
  - TWILIO_API_KEY_SID is "ACdeadbeefdeadbeefdeadbeefdeadbeef": the API key SID must be SK followed by 32 lowercase hex digits; this is an Account SID
  - TWILIO_SYNC_SERVICE_SID is "AP00000000000000000000000000000001": the Sync service SID must be IS followed by 32 lowercase hex digits; this is a TwiML app SID`
	if err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}
}

// TestCheckRefusesWhatServeRefuses: every address serve cannot listen on is
// refused by `tokend check` too, in the same words, since both load
// through loadChecked.
func TestCheckRefusesWhatServeRefuses(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users.htpasswd")
	writeFile(t, users, htpasswdLine(t, "alice"))
	noEnv := filepath.Join(dir, "absent.env")
	tests := []struct {
		name, listen, metrics, want string
	}{
		{"a port alone", "8080", "", `LISTEN_ADDR is "8080": use HOST:PORT or :PORT with a port number, such as :8080 or 127.0.0.1:8080`},
		{"a host alone", "localhost", "", `LISTEN_ADDR is "localhost": use HOST:PORT or :PORT with a port number, such as :8080 or 127.0.0.1:8080`},
		{"a port out of range", ":80800", "", `LISTEN_ADDR is ":80800": use HOST:PORT or :PORT with a port number, such as :8080 or 127.0.0.1:8080`},
		{"metrics without a port", ":8080", "127.0.0.1", `METRICS_ADDR is "127.0.0.1": use HOST:PORT or :PORT with a port number, such as 127.0.0.1:9090`},
		{"metrics on the same address", ":8080", ":8080", `METRICS_ADDR is ":8080", the address LISTEN_ADDR (":8080") already listens on: give /metrics another port, such as 127.0.0.1:9090, or leave METRICS_ADDR empty to serve it beside /token`},
		{"metrics inside the listener's wildcard", "0.0.0.0:8080", "127.0.0.1:8080", `METRICS_ADDR is "127.0.0.1:8080", the address LISTEN_ADDR ("0.0.0.0:8080") already listens on: give /metrics another port, such as 127.0.0.1:9090, or leave METRICS_ADDR empty to serve it beside /token`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := cmdEnv("USERS_FILE", users, "LISTEN_ADDR", tt.listen, "METRICS_ADDR", tt.metrics)
			_, _, checkErr := runTokend(t, env, specTime, "", "check", "--env-file", noEnv)
			_, _, serveErr := runTokend(t, env, specTime, "", "serve", "--env-file", noEnv)
			want := "invalid configuration:\n  - " + tt.want + "\n  - no " + noEnv + " file was found"
			if checkErr == nil || !strings.HasPrefix(checkErr.Error(), want) {
				t.Errorf("check: %v\nwant: %s…", checkErr, want)
			}
			if serveErr == nil || checkErr == nil || serveErr.Error() != checkErr.Error() {
				t.Errorf("serve refused with\n%v\ncheck with\n%v", serveErr, checkErr)
			}
		})
	}
	for _, ok := range [][2]string{{"127.0.0.1:8080", "127.0.0.2:8080"}, {":0", ":0"}, {":8080", "127.0.0.1:9090"}} {
		env := cmdEnv("USERS_FILE", users, "LISTEN_ADDR", ok[0], "METRICS_ADDR", ok[1])
		if _, _, err := runTokend(t, env, specTime, "", "check", "--env-file", noEnv); err != nil {
			t.Errorf("LISTEN_ADDR=%s METRICS_ADDR=%s: %v", ok[0], ok[1], err)
		}
	}
}

func TestFileWarnings(t *testing.T) {
	dir := t.TempDir()
	envFile := filepath.Join(dir, ".env")
	users := filepath.Join(dir, "users.htpasswd")
	for _, tt := range []struct {
		name               string
		envMode, usersMode os.FileMode
		envFound           bool
		want               []string
	}{
		{"both private", 0o600, 0o600, true, nil},
		{"group-readable is a choice", 0o640, 0o640, true, nil},
		{"both world-readable", 0o644, 0o604, true, []string{
			"the settings file " + envFile + " is readable by every user of this machine (mode 0644): run chmod 600 " + envFile,
			"the users file " + users + " is readable by every user of this machine (mode 0604): run chmod 600 " + users,
		}},
		{"an env file not in use", 0o644, 0o600, false, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			writeFile(t, envFile, "")
			writeFile(t, users, "")
			os.Chmod(envFile, tt.envMode)
			os.Chmod(users, tt.usersMode)
			if got := fileWarnings(envFile, tt.envFound, users); !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestCheckWarns: `tokend check` passes with warnings on stderr, about the
// env file's and the environment's unknown names, the secret and the
// files' modes, in start-up's words.
func TestCheckWarns(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users.htpasswd")
	writeFile(t, users, htpasswdLine(t, "alice"))
	os.Chmod(users, 0o644)
	envFile := filepath.Join(dir, ".env")
	writeFile(t, envFile, "CORS_ALLOWED_ORIGIN=https://app.example.com\nUSERS_FILE="+users+"\n")
	env := cmdEnv("TWILIO_API_KEY_SECRET", "0123456789abcdef0123456789abcdef", "TOKEN_MAXTTL", "600")
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	var stdout, stderr syncBuffer
	ctx := withEnviron(context.Background(), append(environ, "PATH=/bin"))
	err := run(ctx, []string{"tokend", "check", "--env-file", envFile}, mapEnv(env), func() time.Time { return specTime }, strings.NewReader(""), &stdout, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	want := `tokend: warning: CORS_ALLOWED_ORIGIN in ` + envFile + ` is not a tokend setting and is ignored; did you mean CORS_ALLOWED_ORIGINS?
tokend: warning: TOKEN_MAXTTL in the environment is not a tokend setting and is ignored; did you mean TOKEN_MAX_TTL?
tokend: warning: TWILIO_API_KEY_SECRET looks like an Auth Token (32 lowercase hex digits): Twilio refuses tokens signed with one ("signature does not match"); use the secret shown when the API key was created, 32 letters and digits
tokend: warning: the users file ` + users + ` is readable by every user of this machine (mode 0644): run chmod 600 ` + users + `
`
	if stderr.String() != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr.String(), want)
	}
	if !strings.Contains(stdout.String(), "\n  cors:       none: CORS_ALLOWED_ORIGINS is empty, so browsers block pages on other origins\n") {
		t.Errorf("stdout does not say CORS is off:\n%s", stdout.String())
	}
}

// TestServeWarns: start-up logs the same warnings, and the allowed origins.
func TestServeWarns(t *testing.T) {
	envFile := filepath.Join(t.TempDir(), ".env")
	writeFile(t, envFile, "CORS_ALLOWED_ORIGIN=https://app.example.com\n")
	addr := freeAddr(t)
	var stdout, stderr syncBuffer
	errc := startRun(t, []string{"serve", "--dev", "--env-file", envFile},
		map[string]string{"LISTEN_ADDR": addr, "CORS_ALLOWED_ORIGINS": "https://app.example.com,http://localhost:5173"}, &stdout, &stderr)
	waitReady(t, "http://"+addr, errc)
	logs := stderr.String()
	for _, want := range []string{
		`level=WARN msg="CORS_ALLOWED_ORIGIN in ` + envFile + ` is not a tokend setting and is ignored; did you mean CORS_ALLOWED_ORIGINS?"`,
		`cors_allowed_origins="https://app.example.com, http://localhost:5173"`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("no %s in the log:\n%s", want, logs)
		}
	}
}

// TestKnownSettings holds the one table of settings to what tokend reads,
// to .env.example and to the README's configuration reference.
func TestKnownSettings(t *testing.T) {
	known := allSettings()
	read := map[string]bool{}
	record := func(key string) string { read[key] = true; return "" }
	loadConfig(record)
	devSetup(record)
	if got := slices.Sorted(func(yield func(string) bool) {
		for k := range read {
			if !yield(k) {
				return
			}
		}
	}); !slices.Equal(got, slices.Sorted(slices.Values(known))) {
		t.Errorf("loadConfig and devSetup read\n%q\nthe table lists\n%q", got, slices.Sorted(slices.Values(known)))
	}

	example, err := os.ReadFile(".env.example")
	if err != nil {
		t.Fatal(err)
	}
	inExample := regexp.MustCompile(`(?m)^#? ?([A-Z][A-Z0-9_]+)=`).FindAllStringSubmatch(string(example), -1)
	var exampleNames []string
	for _, m := range inExample {
		exampleNames = append(exampleNames, m[1])
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range known {
		if !slices.Contains(exampleNames, name) {
			t.Errorf(".env.example does not mention %s", name)
		}
		if !strings.Contains(string(readme), "| `"+name+"` |") {
			t.Errorf("the README's configuration table has no row for %s", name)
		}
	}
	if w := unknownSettings(exampleNames, ".env.example"); len(w) > 0 {
		t.Errorf(".env.example sets names tokend does not know: %q", w)
	}
}
