package main

import (
	"context"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// htpasswdLine returns a users-file line for name with a cheap bcrypt hash.
func htpasswdLine(t *testing.T, name string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("pw of "+name), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return name + ":" + string(hash) + "\n"
}

func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users.htpasswd")
	writeFile(t, users, "# the team\n"+htpasswdLine(t, "alice")+htpasswdLine(t, "bob"))
	envFile := filepath.Join(dir, ".env")
	writeFile(t, envFile, "TOKEN_TTL=600\nLISTEN_ADDR=127.0.0.1:9000\n")
	noEnv := filepath.Join(dir, "absent.env")

	tests := []struct {
		name       string
		envFile    string
		wantStdout string
	}{
		{"settings from the environment only", noEnv, `configuration ok (settings from the environment; no ` + noEnv + ` file)
  account:    ACdeadbeefdeadbeefdeadbeefdeadbeef, API key SKfeedfacefeedfacefeedfacefeedface
  users:      2 in ` + users + `
  grants:     video,voice,sync enabled; video,voice,sync by default
  token ttl:  3600s by default, at most 86400s
  listen:     :8080
  cors:       none: CORS_ALLOWED_ORIGINS is empty, so browsers block pages on other origins
warning: ` + users + `: the highest bcrypt cost is 4 (htpasswd -B uses 5 unless given -C), cheap to crack if the file leaks: rehash with ` + "`tokend user add NAME` (cost 12) or `htpasswd -B -C 12`" + `
`},
		{"settings from an env file too", envFile, `configuration ok (settings from ` + envFile + ` and the environment)
  account:    ACdeadbeefdeadbeefdeadbeefdeadbeef, API key SKfeedfacefeedfacefeedfacefeedface
  users:      2 in ` + users + `
  grants:     video,voice,sync enabled; video,voice,sync by default
  token ttl:  600s by default, at most 86400s
  listen:     127.0.0.1:9000
  cors:       none: CORS_ALLOWED_ORIGINS is empty, so browsers block pages on other origins
warning: ` + users + `: the highest bcrypt cost is 4 (htpasswd -B uses 5 unless given -C), cheap to crack if the file leaks: rehash with ` + "`tokend user add NAME` (cost 12) or `htpasswd -B -C 12`" + `
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A secret of the real shape, which draws no warning.
			const secret = "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4"
			stdout, stderr, err := runTokend(t, cmdEnv("USERS_FILE", users, "TWILIO_API_KEY_SECRET", secret), specTime, "", "check", "--env-file", tt.envFile)
			if err != nil {
				t.Fatal(err)
			}
			if stdout != tt.wantStdout || stderr != "" {
				t.Errorf("stdout:\n%s\nwant:\n%s\nstderr: %q", stdout, tt.wantStdout, stderr)
			}
			if strings.Contains(stdout+stderr, secret) {
				t.Error("the secret was printed")
			}
		})
	}
}

// TestCheckCommandFailsAsStartUp: check fails exactly as serve does, so a
// deploy pipeline sees what start-up would say.
func TestCheckCommandFailsAsStartUp(t *testing.T) {
	dir := t.TempDir()
	noEnv := filepath.Join(dir, "absent.env")
	empty := filepath.Join(dir, "empty.htpasswd")
	writeFile(t, empty, "# nobody yet\n")
	md5 := filepath.Join(dir, "md5.htpasswd")
	writeFile(t, md5, htpasswdLine(t, "alice")+"bob:$apr1$abcdefgh$0123456789abcdefghijkl\n")
	const createIt = " (create it with `tokend user add NAME`, or set USERS_FILE to where the users file is)"
	const noEnvFile = "no %s file was found: copy .env.example to .env and fill it in, or try development mode with `tokend serve --dev` (what `make run` starts on a fresh clone)"
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"no users file", cmdEnv("USERS_FILE", filepath.Join(dir, "nobody")),
			"invalid configuration:\n  - USERS_FILE: users file: open " + filepath.Join(dir, "nobody") + ": no such file or directory" + createIt + "\n  - " + strings.Replace(noEnvFile, "%s", noEnv, 1)},
		{"no users in it", cmdEnv("USERS_FILE", empty),
			"invalid configuration:\n  - USERS_FILE " + empty + " has no users: add one with `tokend user add NAME`\n  - " + strings.Replace(noEnvFile, "%s", noEnv, 1)},
		{"an MD5 hash", cmdEnv("USERS_FILE", md5),
			"invalid configuration:\n  - USERS_FILE: " + md5 + `:2: user "bob": unsupported hash type Apache MD5 ($apr1$); only bcrypt is accepted: recreate it with ` + "`tokend user add` or `htpasswd -B`" + "\n  - " + strings.Replace(noEnvFile, "%s", noEnv, 1)},
		{"bad settings and users", cmdEnv("USERS_FILE", empty, "TOKEN_TTL", "7200", "TOKEN_MAX_TTL", "3600", "TOKEN_GRANTS", "chat"),
			"invalid configuration:\n  - TOKEN_TTL (7200) is above TOKEN_MAX_TTL (3600)\n  - TOKEN_GRANTS includes chat, which needs TWILIO_CHAT_SERVICE_SID\n  - USERS_FILE " + empty + " has no users: add one with `tokend user add NAME`\n  - " + strings.Replace(noEnvFile, "%s", noEnv, 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, err := runTokend(t, tt.env, specTime, "", "check", "--env-file", noEnv)
			if errString(err) != tt.wantErr {
				t.Errorf("err = %v\nwant  %s", err, tt.wantErr)
			}
			if stdout != "" || stderr != "" {
				t.Errorf("stdout %q, stderr %q", stdout, stderr)
			}
			// Start-up refuses with the very same words, before listening.
			_, _, serveErr := runTokend(t, tt.env, specTime, "", "serve", "--env-file", noEnv)
			if errString(serveErr) != errString(err) {
				t.Errorf("serve says %v\ncheck says %v", serveErr, err)
			}
		})
	}
}

func TestVersionString(t *testing.T) {
	tests := []struct {
		name string
		info *debug.BuildInfo
		ok   bool
		want string
	}{
		{"no build information", nil, false, "tokend devel " + runtime.Version()},
		{"go build in a checkout without VCS stamping", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "tokend", Version: "(devel)"}},
			true, "tokend devel go1.26.8"},
		{"go build in a git checkout", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "tokend", Version: "v0.0.0-20261127013211-25c09a9e4c03+dirty"},
			Settings: []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "25c09a9e4c037b1db5f0254b6640d44c59aea5d4"}, {Key: "vcs.modified", Value: "true"}}},
			true, "tokend v0.0.0-20261127013211-25c09a9e4c03+dirty (commit 25c09a9e4c03, modified) go1.26.8"},
		{"clean checkout", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "tokend", Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "25c09a9e4c037b1db5f0254b6640d44c59aea5d4"}, {Key: "vcs.modified", Value: "false"}}},
			true, "tokend devel (commit 25c09a9e4c03) go1.26.8"},
		{"go install tokend@v1.2.0", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "tokend", Version: "v1.2.0"}},
			true, "tokend v1.2.0 go1.26.8"},
	}
	for _, tt := range tests {
		if got := versionString(tt.info, tt.ok); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestVersionCommand(t *testing.T) {
	// A test binary carries no module version and no VCS stamp.
	stdout, stderr, err := runTokend(t, nil, specTime, "", "version")
	if want := "tokend devel " + runtime.Version() + "\n"; err != nil || stdout != want || stderr != "" {
		t.Errorf("version: %v, stdout %q (want %q), stderr %q", err, stdout, want, stderr)
	}
	if _, _, err := runTokend(t, nil, specTime, "", "version", "extra"); err != errUsage {
		t.Errorf("version extra: err = %v, want errUsage", err)
	}
}

// TestEveryCommandIsDispatchedAndListed: each command is reached through
// run (an unknown flag is its flag set's error, not "unknown command") and
// named in the help.
func TestEveryCommandIsDispatchedAndListed(t *testing.T) {
	for _, cmd := range []string{"serve", "check", "mint", "decode", "version"} {
		var stdout, stderr syncBuffer
		err := run(context.Background(), []string{"tokend", cmd, "--no-such-flag"}, mapEnv(nil), time.Now, strings.NewReader(""), &stdout, &stderr)
		want := "tokend " + cmd + ": flag provided but not defined: -no-such-flag\nusage: " + commandHelp[cmd].synopsis + "\nsee `tokend help " + cmd + "`\n"
		if err != errUsage || stderr.String() != want {
			t.Errorf("%s: err %v, stderr %q", cmd, err, stderr.String())
		}
		if !strings.Contains(usage, "\n  tokend "+cmd+" ") && !strings.Contains(usage, "\n  tokend ["+cmd+"] ") {
			t.Errorf("the help does not list %s", cmd)
		}
	}
	for _, cmd := range []string{"user add", "user del", "user list", "help [COMMAND]"} {
		if !strings.Contains(usage, "\n  tokend "+cmd+" ") {
			t.Errorf("the help does not list %s", cmd)
		}
	}
}
