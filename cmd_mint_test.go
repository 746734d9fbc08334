package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// runTokend runs tokend as the shell would, with env as its environment
// and its clock stopped at now, and returns what it printed and its error.
func runTokend(t *testing.T, env map[string]string, now time.Time, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut syncBuffer
	err = run(context.Background(), append([]string{"tokend"}, args...), mapEnv(env), func() time.Time { return now },
		strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), err
}

// cmdEnv is a configuration for the token commands: video, voice (with a
// TwiML app) and sync are enabled and are the default grants.
func cmdEnv(extra ...string) map[string]string {
	env := map[string]string{
		"TWILIO_ACCOUNT_SID":      testAccountSID,
		"TWILIO_API_KEY_SID":      testAPIKeySID,
		"TWILIO_API_KEY_SECRET":   testSecret,
		"TWILIO_TWIML_APP_SID":    "AP00000000000000000000000000000001",
		"TWILIO_SYNC_SERVICE_SID": "IS00000000000000000000000000000002",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		env[extra[i]] = extra[i+1]
	}
	return env
}

func TestMintCommand(t *testing.T) {
	noEnv := filepath.Join(t.TempDir(), "absent.env")
	const voice = `"voice":{"incoming":{"allow":true},"outgoing":{"application_sid":"AP00000000000000000000000000000001"}}`
	const sync = `"data_sync":{"service_sid":"IS00000000000000000000000000000002"}`
	tests := []struct {
		name       string
		env        map[string]string
		args       []string
		wantGrants string
		wantTTL    int64
	}{
		{"video with a room and a ttl", cmdEnv(), []string{"--identity", "alice", "--grant", "video", "--room", "My Room", "--ttl", "600"},
			`{"identity":"alice","video":{"room":"My Room"}}`, 600},
		{"default grants and ttl", cmdEnv(), []string{"--identity", "alice"},
			`{"identity":"alice","video":{},` + voice + `,` + sync + `}`, 3600},
		{"TOKEN_GRANTS, TOKEN_TTL and VIDEO_ROOM apply", cmdEnv("TOKEN_GRANTS", "video", "TOKEN_TTL", "60", "VIDEO_ROOM", "Lobby"), []string{"--identity", "alice"},
			`{"identity":"alice","video":{"room":"Lobby"}}`, 60},
		{"grants repeated and as a comma list, voice params", cmdEnv(),
			[]string{"--identity", "alice", "--grant", "sync", "--grant", "voice,video", "--voice-param", "queue=support", "--voice-param", "agent=a=b"},
			`{"identity":"alice","video":{},"voice":{"incoming":{"allow":true},"outgoing":{"application_sid":"AP00000000000000000000000000000001","params":{"agent":"a=b","queue":"support"}}},` + sync + `}`, 3600},
		{"an identity with a space, without voice", cmdEnv(), []string{"--identity", "bob smith", "--grant", "video"},
			`{"identity":"bob smith","video":{}}`, 3600},
		{"the longest ttl", cmdEnv(), []string{"--identity", "alice", "--grant", "sync", "--ttl", "86400"},
			`{"identity":"alice",` + sync + `}`, 86400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, err := runTokend(t, tt.env, specTime, "", append([]string{"mint", "--env-file", noEnv}, tt.args...)...)
			if err != nil {
				t.Fatalf("err = %v; stderr %s", err, stderr)
			}
			if stderr != "" {
				t.Errorf("stderr = %q", stderr)
			}
			token, ok := strings.CutSuffix(stdout, "\n")
			if !ok || strings.ContainsAny(token, " \n") {
				t.Fatalf("stdout is not one token on one line: %q", stdout)
			}
			header, claims := decodeSegments(t, token)
			if want := mustJSON(t, specHeader); !reflect.DeepEqual(header, want) {
				t.Errorf("header = %v, want %v", header, want)
			}
			want := mustJSON(t, fmt.Sprintf(`{"jti":"SKfeedfacefeedfacefeedfacefeedface-1795743131",
				"iss":"SKfeedfacefeedfacefeedfacefeedface","sub":"ACdeadbeefdeadbeefdeadbeefdeadbeef",
				"iat":1795743131,"nbf":1795743131,"exp":%d,"grants":%s}`, 1795743131+tt.wantTTL, tt.wantGrants))
			if !reflect.DeepEqual(claims, want) {
				got, _ := json.Marshal(claims)
				t.Errorf("claims = %s\nwant grants %s, ttl %d", got, tt.wantGrants, tt.wantTTL)
			}
			verify(t, token, testSecret, specTime)
		})
	}
}

// TestMintCommandRefuses checks that mint refuses what POST /token refuses,
// in the server's words with the flags' names, and that it needs no users
// file.
func TestMintCommandRefuses(t *testing.T) {
	dir := t.TempDir()
	noEnv := filepath.Join(dir, "absent.env")
	const voiceIdentity = "Twilio Voice allows only letters, digits and _ in an identity; use a username without other characters, or a token without the voice grant"
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr string
	}{
		{"no identity", cmdEnv(), nil, "--identity: must not be empty"},
		{"identity with a space and the voice grant", cmdEnv(), []string{"--identity", "bob smith", "--grant", "video,voice"},
			"--identity: " + voiceIdentity},
		{"identity too long for video", cmdEnv(), []string{"--identity", strings.Repeat("a", 129), "--grant", "video"},
			"--identity: is 129 characters; Twilio Video allows at most 128"},
		{"ttl over 24 hours", cmdEnv(), []string{"--identity", "alice", "--ttl", "86401"},
			"--ttl: must be a whole number of seconds from 1 to 86400, not 86401"},
		{"ttl over TOKEN_MAX_TTL", cmdEnv("TOKEN_MAX_TTL", "600", "TOKEN_TTL", "60"), []string{"--identity", "alice", "--ttl", "601"},
			"--ttl: must be a whole number of seconds from 1 to 600, not 601"},
		{"ttl not a number", cmdEnv(), []string{"--identity", "alice", "--ttl", "10m"},
			"--ttl: must be a whole number of seconds from 1 to 86400, not 10m"},
		{"unknown grant", cmdEnv(), []string{"--identity", "alice", "--grant", "video,rtc"},
			`--grant: unknown grant "rtc" (known: video, voice, chat, conversations, sync)`},
		{"grant not enabled", cmdEnv(), []string{"--identity", "alice", "--grant", "conversations"},
			"--grant: conversations is not enabled on this server (enabled: video,voice,sync)"},
		{"chat with conversations", cmdEnv(), []string{"--identity", "alice", "--grant", "chat", "--grant", "conversations"},
			"--grant: chat and conversations cannot be in one token: both use the token's single chat grant"},
		{"every problem at once", cmdEnv(), []string{"--identity", "alice", "--grant", "sync", "--room", "R", "--ttl", "0", "--voice-param", "a=b"},
			"--room: is for the video grant, which this token does not carry; --ttl: must be a whole number of seconds from 1 to 86400, not 0; --voice-param: is for the voice grant, which this token does not carry"},
		{"a refused grant: voice params still fit the voice asked for", cmdEnv("TWILIO_SYNC_SERVICE_SID", ""), []string{"--identity", "alice", "--grant", "voice,sync", "--voice-param", "queue=support", "--room", "R"},
			"--grant: sync is not enabled on this server (enabled: video,voice); --room: is for the video grant, which this token does not carry"},
		{"an unreadable grant: nothing more is said of the room", cmdEnv(), []string{"--identity", "alice", "--grant", "voice,rtc", "--room", "R"},
			`--grant: unknown grant "rtc" (known: video, voice, chat, conversations, sync)`},
		{"voice params without a TwiML app", cmdEnv("TWILIO_TWIML_APP_SID", ""), []string{"--identity", "alice", "--grant", "voice", "--voice-param", "a=b"},
			"--voice-param: needs outgoing calls, which need TWILIO_TWIML_APP_SID on the server"},
		{"empty voice param name", cmdEnv(), []string{"--identity", "alice", "--grant", "voice", "--voice-param", "=b"},
			"--voice-param: has an empty parameter name"},
		{"identity not UTF-8", cmdEnv(), []string{"--identity", "al\xe9"}, "--identity: is not valid UTF-8"},
		{"room too long", cmdEnv(), []string{"--identity", "alice", "--room", strings.Repeat("r", 129)},
			"--room: is 129 characters; Twilio Video allows at most 128"},
		{"bad configuration, and no users file is asked for", map[string]string{"TWILIO_ACCOUNT_SID": testAccountSID, "TWILIO_API_KEY_SID": "SK123", "USERS_FILE": filepath.Join(dir, "nobody")},
			[]string{"--identity", "alice"},
			"invalid configuration:\n" +
				`  - TWILIO_API_KEY_SID is "SK123": the API key SID must be SK followed by 32 lowercase hex digits` + "\n" +
				"  - TWILIO_API_KEY_SECRET is not set: the secret shown once when the API key was created\n" +
				"  - no " + noEnv + " file was found: copy .env.example to .env and fill it in, or try development mode with `tokend serve --dev` (what `make run` starts on a fresh clone)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, err := runTokend(t, tt.env, specTime, "", append([]string{"mint", "--env-file", noEnv}, tt.args...)...)
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("err = %v\nwant  %s", err, tt.wantErr)
			}
			if stdout != "" || stderr != "" {
				t.Errorf("stdout %q, stderr %q; want neither", stdout, stderr)
			}
		})
	}
}

func TestMintCommandUsage(t *testing.T) {
	noEnv := filepath.Join(t.TempDir(), "absent.env")
	tests := []struct {
		args       []string
		wantStderr string // the first line
	}{
		{[]string{"--identity", "alice", "--voice-param", "queue"}, `tokend mint: invalid value "queue" for flag -voice-param: want NAME=VALUE`},
		{[]string{"--identity", "alice", "--voice-param", "q=1", "--voice-param", "q=2"}, `tokend mint: invalid value "q=2" for flag -voice-param: "q" given twice`},
		{[]string{"--identity", "alice", "--ttl"}, "tokend mint: flag needs an argument: -ttl"},
		{[]string{"--identity", "alice", "video"}, "tokend mint: want no arguments, got 1"},
		{[]string{"--identity", "alice", "--frobnicate"}, "tokend mint: flag provided but not defined: -frobnicate"},
	}
	for _, tt := range tests {
		stdout, stderr, err := runTokend(t, cmdEnv(), specTime, "", append([]string{"mint", "--env-file", noEnv}, tt.args...)...)
		if err != errUsage {
			t.Errorf("%q: err = %v, want errUsage", tt.args, err)
		}
		if first, _, _ := strings.Cut(stderr, "\n"); first != tt.wantStderr || stdout != "" {
			t.Errorf("%q: stderr starts %q, want %q; stdout %q", tt.args, first, tt.wantStderr, stdout)
		}
	}
}

// TestMintCommandReadsEnvFile: the settings come from --env-file, and the
// environment wins over it, as for serve.
func TestMintCommandReadsEnvFile(t *testing.T) {
	envFile := filepath.Join(t.TempDir(), ".env")
	writeFile(t, envFile, "TWILIO_ACCOUNT_SID="+testAccountSID+"\nTWILIO_API_KEY_SID="+testAPIKeySID+
		"\nTWILIO_API_KEY_SECRET=file-secret\nTOKEN_TTL=120\nVIDEO_ROOM=Lobby\n")
	stdout, _, err := runTokend(t, map[string]string{"TWILIO_API_KEY_SECRET": testSecret}, specTime, "", "mint", "--env-file", envFile, "--identity", "alice")
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(stdout)
	_, claims := decodeSegments(t, token)
	if grants, _ := json.Marshal(claims["grants"]); claims["exp"] != float64(1795743131+120) || string(grants) != `{"identity":"alice","video":{"room":"Lobby"}}` {
		t.Errorf("claims = %v", claims)
	}
	verify(t, token, testSecret, specTime)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// FuzzMintDecode: whatever mint accepts, decode reads back as the very
// claims that were signed, with the header for the region and a signature
// golang-jwt verifies; whatever mint refuses is a field problem.
func FuzzMintDecode(f *testing.F) {
	f.Add("alice", "video", "My Room", "600", "", "", false)
	f.Add("alice", "", "", "", "", "", true)
	f.Add("bob_1", "voice,sync", "", "86400", "queue", "support", true)
	f.Add("bob smith", "chat", "", "1", "", "", false)
	f.Add("élodie", "conversations,video", "Salle <1> & \u2028", "60", "", "", false)
	f.Add("alice", "voice", "", "", "a\"b", "\\u0000", false)
	f.Add("", "rtc", "R", "0", "", "x", false)
	cfg := testConfig()
	cfg.ChatServiceSID = "IS00000000000000000000000000000003"
	cfg.PushCredentialSID = "CR00000000000000000000000000000001"
	cfg.ChatPushCredentialSID = "CR00000000000000000000000000000002"
	cfg.EnabledGrants |= grantBit(grantChat)
	cfg.MaxTTL = maxTokenTTL
	minters := map[bool]*Minter{
		false: NewMinter(cfg.AccountSID, cfg.APIKeySID, cfg.APIKeySecret, ""),
		true:  NewMinter(cfg.AccountSID, cfg.APIKeySID, cfg.APIKeySecret, "ie1"),
	}
	headers := map[bool]string{
		false: `{"alg":"HS256","typ":"JWT","cty":"twilio-fpa;v=1"}`,
		true:  `{"alg":"HS256","typ":"JWT","cty":"twilio-fpa;v=1","twr":"ie1"}`,
	}
	f.Fuzz(func(t *testing.T, identity, grants, room, ttl, paramName, paramValue string, region bool) {
		req := tokenRequest{TTL: flexString(ttl), Room: room}
		if grants != "" {
			req.Grants = strings.Split(grants, ",")
		}
		if paramName != "" || paramValue != "" {
			req.VoiceParams = map[string]string{paramName: paramValue}
		}
		token, claims, err := mintFor(cfg, minters[region], specTime, identity, req)
		if err != nil {
			if e, ok := err.(*Error); !ok || e.Code != EINVALID || len(e.Params) == 0 {
				t.Fatalf("refusal %#v is not a field problem", err)
			}
			return
		}
		parts, err := splitToken(token)
		if err != nil {
			t.Fatalf("decode refuses a minted token: %v", err)
		}
		got, err := parts.accessClaims()
		if err != nil {
			t.Fatalf("decode refuses minted claims: %v", err)
		}
		// Empty voice params are left out of the token, so read back as none.
		if v := claims.Grants.Voice; v != nil && v.Outgoing != nil && len(v.Outgoing.Params) == 0 {
			v.Outgoing.Params = nil
		}
		if !reflect.DeepEqual(got, claims) {
			t.Fatalf("decoded claims differ from those minted:\n got  %+v\n want %+v", got, claims)
		}
		if string(parts.header) != headers[region] {
			t.Fatalf("header %s, want %s", parts.header, headers[region])
		}
		if err := verifySignature(token, testSecret); err != nil {
			t.Fatalf("golang-jwt does not verify a minted token: %v", err)
		}
		writeTimes(io.Discard, parts, got, specTime)
	})
}
