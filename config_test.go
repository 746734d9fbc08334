package main

import (
	"errors"
	"fmt"
	"github.com/joho/godotenv"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"tokend/internal/passhash"
)

// Obviously fake SIDs and secret for the configuration tests.
var (
	cfgAccountSID = "AC" + strings.Repeat("deadbeef", 4)
	cfgAPIKeySID  = "SK" + strings.Repeat("deadbeef", 4)
	cfgTwiMLApp   = "AP" + strings.Repeat("deadbeef", 4)
	cfgPushCred   = "CR" + strings.Repeat("deadbeef", 4)
	cfgConvSID    = "IS" + strings.Repeat("deadbeef", 4)
	cfgChatSID    = "IS" + strings.Repeat("feedface", 4)
	cfgSyncSID    = "IS" + strings.Repeat("cafebabe", 4)
)

const cfgSecret = "fake-secret-for-tests-only"

// cfgEnv returns a lookup over the minimal valid settings with over applied;
// an empty value in over unsets the setting.
func cfgEnv(over map[string]string) func(string) string {
	m := map[string]string{
		"TWILIO_ACCOUNT_SID":    cfgAccountSID,
		"TWILIO_API_KEY_SID":    cfgAPIKeySID,
		"TWILIO_API_KEY_SECRET": cfgSecret,
	}
	for k, v := range over {
		m[k] = v
	}
	return func(k string) string { return m[k] }
}

// cfgMinimal is the Config the minimal settings give, without its grants.
func cfgMinimal() Config {
	return Config{
		AccountSID:    cfgAccountSID,
		APIKeySID:     cfgAPIKeySID,
		APIKeySecret:  cfgSecret,
		VoiceIncoming: true,
		TTL:           3600 * time.Second,
		MaxTTL:        86400 * time.Second,
		UsersFile:     "users.htpasswd",
		ListenAddr:    ":8080",

		LogFormat:       "text",
		ShutdownTimeout: 15 * time.Second,

		Limits: Limits{
			UserFailures: 10, UserFailuresPerHour: 90,
			AddrFailures: 30, AddrFailuresPerHour: 300,
			AddrRequests: 30, AddrRequestsPerSecond: 10,
			MaxKeys: 50000,
		},
		AuthCacheTTL:        5 * time.Minute,
		AuthCacheSize:       10000,
		BcryptMaxWait:       2 * time.Second,
		UsersReloadInterval: 2 * time.Second,
		UsersDB:             UsersDBConfig{Query: "SELECT password_hash FROM users WHERE username = $1", QueryTimeout: 2 * time.Second},
		HashLimits:          passhash.Limits{MemoryKiB: 128 << 10, Iterations: 5_000_000, ArgonTime: 16, Threads: 16, BcryptCost: 15},

		Sessions: SessionConfig{
			IdleTimeout: 2 * time.Hour, MaxAge: 12 * time.Hour,
			SameSite: http.SameSiteStrictMode, PerUser: 10, MaxSessions: 10000,
		},
		RedisPrefix: "tokend:",
	}
}

// configProblems returns the problems of a *ConfigError, failing on any
// other kind of error.
func configProblems(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var cerr *ConfigError
	if !errors.As(err, &cerr) {
		t.Fatalf("err = %T %v, want *ConfigError", err, err)
	}
	return cerr.Problems
}

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		edit    func(c *Config) // applied to cfgMinimal() for the expected Config
		enabled string
		def     string
	}{
		{
			name:    "minimal",
			enabled: "video,voice",
			def:     "video",
		},
		{
			name:    "twiml app makes voice a default grant",
			env:     map[string]string{"TWILIO_TWIML_APP_SID": cfgTwiMLApp},
			edit:    func(c *Config) { c.TwiMLAppSID = cfgTwiMLApp },
			enabled: "video,voice",
			def:     "video,voice",
		},
		{
			name:    "no incoming and no app disables voice",
			env:     map[string]string{"TWILIO_VOICE_INCOMING": "false"},
			edit:    func(c *Config) { c.VoiceIncoming = false },
			enabled: "video",
			def:     "video",
		},
		{
			name:    "app alone enables voice",
			env:     map[string]string{"TWILIO_VOICE_INCOMING": "0", "TWILIO_TWIML_APP_SID": cfgTwiMLApp},
			edit:    func(c *Config) { c.VoiceIncoming = false; c.TwiMLAppSID = cfgTwiMLApp },
			enabled: "video,voice",
			def:     "video,voice",
		},
		{
			name: "conversations and sync",
			env:  map[string]string{"TWILIO_CONVERSATIONS_SERVICE_SID": cfgConvSID, "TWILIO_SYNC_SERVICE_SID": cfgSyncSID},
			edit: func(c *Config) {
				c.ConversationsServiceSID = cfgConvSID
				c.SyncServiceSID = cfgSyncSID
			},
			enabled: "video,voice,conversations,sync",
			def:     "video,conversations,sync",
		},
		{
			name:    "chat alone is a default grant",
			env:     map[string]string{"TWILIO_CHAT_SERVICE_SID": cfgChatSID},
			edit:    func(c *Config) { c.ChatServiceSID = cfgChatSID },
			enabled: "video,voice,chat",
			def:     "video,chat",
		},
		{
			name: "chat and conversations: conversations is the default",
			env: map[string]string{
				"TWILIO_TWIML_APP_SID":             cfgTwiMLApp,
				"TWILIO_CONVERSATIONS_SERVICE_SID": cfgConvSID,
				"TWILIO_CHAT_SERVICE_SID":          cfgChatSID,
				"TWILIO_SYNC_SERVICE_SID":          cfgSyncSID,
			},
			edit: func(c *Config) {
				c.TwiMLAppSID = cfgTwiMLApp
				c.ConversationsServiceSID = cfgConvSID
				c.ChatServiceSID = cfgChatSID
				c.SyncServiceSID = cfgSyncSID
			},
			enabled: "video,voice,chat,conversations,sync",
			def:     "video,voice,conversations,sync",
		},
		{
			name:    "TOKEN_GRANTS sets the default, case and spaces ignored",
			env:     map[string]string{"TWILIO_SYNC_SERVICE_SID": cfgSyncSID, "TOKEN_GRANTS": " Sync , VOICE"},
			edit:    func(c *Config) { c.SyncServiceSID = cfgSyncSID },
			enabled: "video,voice,sync",
			def:     "voice,sync",
		},
		{
			name: "TOKEN_GRANTS may pick chat over conversations",
			env: map[string]string{
				"TWILIO_CONVERSATIONS_SERVICE_SID": cfgConvSID,
				"TWILIO_CHAT_SERVICE_SID":          cfgChatSID,
				"TOKEN_GRANTS":                     "chat",
			},
			edit: func(c *Config) {
				c.ConversationsServiceSID = cfgConvSID
				c.ChatServiceSID = cfgChatSID
			},
			enabled: "video,voice,chat,conversations",
			def:     "chat",
		},
		{
			name: "every setting",
			env: map[string]string{
				"TWILIO_TWIML_APP_SID":            cfgTwiMLApp,
				"TWILIO_VOICE_INCOMING":           "FALSE",
				"TWILIO_PUSH_CREDENTIAL_SID":      cfgPushCred,
				"TWILIO_CHAT_PUSH_CREDENTIAL_SID": "CR" + strings.Repeat("feedface", 4),
				"TWILIO_REGION":                   "ie1",
				"VIDEO_ROOM":                      "  daily standup  ",
				"TOKEN_TTL":                       "600",
				"TOKEN_MAX_TTL":                   "600",
				"USERS_FILE":                      "/etc/tokend/users",
				"LISTEN_ADDR":                     "127.0.0.1:9000",
				"SESSION_IDLE_TIMEOUT":            "30m",
				"SESSION_MAX_AGE":                 "8h",
				"SESSION_SAMESITE":                "Lax",
				"SESSION_MAX_PER_USER":            "3",
				"SESSION_MAX":                     "500",
				"REDIS_URL":                       "redis://:hunter2@127.0.0.1:6379/2",
				"REDIS_PREFIX":                    "app1:",
			},
			edit: func(c *Config) {
				c.Sessions = SessionConfig{IdleTimeout: 30 * time.Minute, MaxAge: 8 * time.Hour, SameSite: http.SameSiteLaxMode, PerUser: 3, MaxSessions: 500}
				c.RedisURL = "redis://:hunter2@127.0.0.1:6379/2"
				c.RedisPrefix = "app1:"
				c.TwiMLAppSID = cfgTwiMLApp
				c.VoiceIncoming = false
				c.PushCredentialSID = cfgPushCred
				c.ChatPushCredentialSID = "CR" + strings.Repeat("feedface", 4)
				c.Region = "ie1"
				c.VideoRoom = "daily standup"
				c.TTL = 600 * time.Second
				c.MaxTTL = 600 * time.Second
				c.UsersFile = "/etc/tokend/users"
				c.ListenAddr = "127.0.0.1:9000"
			},
			enabled: "video,voice",
			def:     "video,voice",
		},
		{
			name: "limits are inclusive",
			env: map[string]string{
				"TOKEN_TTL":     "1",
				"TOKEN_MAX_TTL": "86400",
				"VIDEO_ROOM":    strings.Repeat("é", 128), // 128 characters, 256 bytes
			},
			edit: func(c *Config) {
				c.TTL = time.Second
				c.VideoRoom = strings.Repeat("é", 128)
			},
			enabled: "video,voice",
			def:     "video",
		},
		{
			name:    "TOKEN_MAX_TTL alone lowers the default TOKEN_TTL",
			env:     map[string]string{"TOKEN_MAX_TTL": "600", "USERS_FILE": " users.txt "},
			edit:    func(c *Config) { c.TTL = 600 * time.Second; c.MaxTTL = 600 * time.Second; c.UsersFile = "users.txt" },
			enabled: "video,voice",
			def:     "video",
		},
		{
			name:    "SIDs and the secret are trimmed",
			env:     map[string]string{"TWILIO_ACCOUNT_SID": " " + cfgAccountSID + "\t", "TWILIO_API_KEY_SECRET": " fake secret with spaces\n"},
			edit:    func(c *Config) { c.APIKeySecret = "fake secret with spaces" },
			enabled: "video,voice",
			def:     "video",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := loadConfig(cfgEnv(tt.env))
			if err != nil {
				t.Fatalf("loadConfig: %v", err)
			}
			if s := got.EnabledGrants.String(); s != tt.enabled {
				t.Errorf("EnabledGrants = %q, want %q", s, tt.enabled)
			}
			if s := got.DefaultGrants.String(); s != tt.def {
				t.Errorf("DefaultGrants = %q, want %q", s, tt.def)
			}
			want := cfgMinimal()
			if tt.edit != nil {
				tt.edit(&want)
			}
			rest := *got
			rest.EnabledGrants, rest.DefaultGrants = 0, 0
			if !reflect.DeepEqual(rest, want) {
				t.Errorf("Config =\n%+v\nwant\n%+v", rest, want)
			}
		})
	}
}

func TestLoadConfigProblems(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{
			name: "required settings missing",
			env:  map[string]string{"TWILIO_ACCOUNT_SID": "", "TWILIO_API_KEY_SID": "", "TWILIO_API_KEY_SECRET": ""},
			want: []string{
				"TWILIO_ACCOUNT_SID is not set: the Account SID (AC followed by 32 hex digits)",
				"TWILIO_API_KEY_SID is not set: the API key SID (SK followed by 32 hex digits)",
				"TWILIO_API_KEY_SECRET is not set: the secret shown once when the API key was created",
			},
		},
		{
			name: "blank counts as missing",
			env:  map[string]string{"TWILIO_ACCOUNT_SID": "   "},
			want: []string{"TWILIO_ACCOUNT_SID is not set: the Account SID (AC followed by 32 hex digits)"},
		},
		{
			name: "SIDs with the wrong prefix",
			env:  map[string]string{"TWILIO_ACCOUNT_SID": cfgAPIKeySID, "TWILIO_API_KEY_SID": cfgAccountSID},
			want: []string{
				`TWILIO_ACCOUNT_SID is "SKdeadbeefdeadbeefdeadbeefdeadbeef": the Account SID must be AC followed by 32 lowercase hex digits; this is an API key SID`,
				`TWILIO_API_KEY_SID is "ACdeadbeefdeadbeefdeadbeefdeadbeef": the API key SID must be SK followed by 32 lowercase hex digits; this is an Account SID`,
			},
		},
		{
			name: "SID with uppercase hex",
			env:  map[string]string{"TWILIO_ACCOUNT_SID": "AC" + strings.Repeat("DEADBEEF", 4)},
			want: []string{`TWILIO_ACCOUNT_SID is "ACDEADBEEFDEADBEEFDEADBEEFDEADBEEF": the Account SID must be AC followed by 32 lowercase hex digits`},
		},
		{
			name: "SID with lowercase prefix",
			env:  map[string]string{"TWILIO_ACCOUNT_SID": "ac" + strings.Repeat("deadbeef", 4)},
			want: []string{`TWILIO_ACCOUNT_SID is "acdeadbeefdeadbeefdeadbeefdeadbeef": the Account SID must be AC followed by 32 lowercase hex digits`},
		},
		{
			name: "SIDs too short and too long",
			env:  map[string]string{"TWILIO_ACCOUNT_SID": "ACdeadbeef", "TWILIO_API_KEY_SID": cfgAPIKeySID + "0"},
			want: []string{
				`TWILIO_ACCOUNT_SID is "ACdeadbeef": the Account SID must be AC followed by 32 lowercase hex digits`,
				`TWILIO_API_KEY_SID is "SKdeadbeefdeadbeefdeadbeefdeadbeef0": the API key SID must be SK followed by 32 lowercase hex digits`,
			},
		},
		{
			name: "optional SIDs malformed",
			env: map[string]string{
				"TWILIO_TWIML_APP_SID":             cfgAccountSID,
				"TWILIO_PUSH_CREDENTIAL_SID":       "CRxyz",
				"TWILIO_CHAT_PUSH_CREDENTIAL_SID":  "SK" + strings.Repeat("deadbeef", 4),
				"TWILIO_CONVERSATIONS_SERVICE_SID": "MG" + strings.Repeat("deadbeef", 4),
				"TWILIO_CHAT_SERVICE_SID":          "IS" + strings.Repeat("deadbeeg", 4),
				"TWILIO_SYNC_SERVICE_SID":          "IS",
			},
			want: []string{
				`TWILIO_TWIML_APP_SID is "ACdeadbeefdeadbeefdeadbeefdeadbeef": the TwiML app SID must be AP followed by 32 lowercase hex digits; this is an Account SID`,
				`TWILIO_PUSH_CREDENTIAL_SID is not a SID (5 characters, not shown in case it is a secret): the push credential SID must be CR followed by 32 lowercase hex digits`,
				`TWILIO_CHAT_PUSH_CREDENTIAL_SID is "SKdeadbeefdeadbeefdeadbeefdeadbeef": the push credential SID must be CR followed by 32 lowercase hex digits; this is an API key SID`,
				`TWILIO_CONVERSATIONS_SERVICE_SID is "MGdeadbeefdeadbeefdeadbeefdeadbeef": the Conversations service SID must be IS followed by 32 lowercase hex digits; this is a Messaging service SID`,
				`TWILIO_CHAT_SERVICE_SID is not a SID (34 characters, not shown in case it is a secret): the Chat service SID must be IS followed by 32 lowercase hex digits`,
				`TWILIO_SYNC_SERVICE_SID is "IS": the Sync service SID must be IS followed by 32 lowercase hex digits`,
			},
		},
		{
			name: "TOKEN_TTL zero",
			env:  map[string]string{"TOKEN_TTL": "0"},
			want: []string{`TOKEN_TTL is "0": use a whole number of seconds from 1 to 86400`},
		},
		{
			name: "TOKEN_TTL above a day",
			env:  map[string]string{"TOKEN_TTL": "86401"},
			want: []string{`TOKEN_TTL is "86401": use a whole number of seconds from 1 to 86400`},
		},
		{
			name: "TOKEN_TTL not a whole number",
			env:  map[string]string{"TOKEN_TTL": "1h"},
			want: []string{`TOKEN_TTL is "1h": use a whole number of seconds from 1 to 86400`},
		},
		{
			name: "TOKEN_TTL negative",
			env:  map[string]string{"TOKEN_TTL": "-60"},
			want: []string{`TOKEN_TTL is "-60": use a whole number of seconds from 1 to 86400`},
		},
		{
			name: "TOKEN_TTL above TOKEN_MAX_TTL",
			env:  map[string]string{"TOKEN_TTL": "7200", "TOKEN_MAX_TTL": "3600"},
			want: []string{"TOKEN_TTL (7200) is above TOKEN_MAX_TTL (3600)"},
		},
		{
			name: "TOKEN_MAX_TTL above a day",
			env:  map[string]string{"TOKEN_MAX_TTL": "86401"},
			want: []string{`TOKEN_MAX_TTL is "86401": use a whole number of seconds from 1 to 86400`},
		},
		{
			name: "TOKEN_MAX_TTL zero",
			env:  map[string]string{"TOKEN_MAX_TTL": "0"},
			want: []string{`TOKEN_MAX_TTL is "0": use a whole number of seconds from 1 to 86400`},
		},
		{
			name: "bad bool",
			env:  map[string]string{"TWILIO_VOICE_INCOMING": "yes"},
			want: []string{`TWILIO_VOICE_INCOMING is "yes": use true or false`},
		},
		{
			name: "region in capitals",
			env:  map[string]string{"TWILIO_REGION": "US1"},
			want: []string{`TWILIO_REGION is "US1": use a Twilio region such as us1, ie1 or au1`},
		},
		{
			name: "region as a URL part",
			env:  map[string]string{"TWILIO_REGION": "dublin.ie1"},
			want: []string{`TWILIO_REGION is "dublin.ie1": use a Twilio region such as us1, ie1 or au1`},
		},
		{
			name: "VIDEO_ROOM too long",
			env:  map[string]string{"VIDEO_ROOM": strings.Repeat("é", 129)},
			want: []string{"VIDEO_ROOM is longer than 128 characters, the most Twilio Video allows"},
		},
		{
			name: "TOKEN_GRANTS names no grant",
			env:  map[string]string{"TOKEN_GRANTS": " , "},
			want: []string{`TOKEN_GRANTS is ",": it names no grant; leave it empty for the default (video)`},
		},
		{
			name: "secret of spaces only",
			env:  map[string]string{"TWILIO_API_KEY_SECRET": "   "},
			want: []string{"TWILIO_API_KEY_SECRET is not set: the secret shown once when the API key was created"},
		},
		{
			name: "TOKEN_GRANTS unknown name",
			env:  map[string]string{"TOKEN_GRANTS": "video,fax"},
			want: []string{`TOKEN_GRANTS is "video,fax": unknown grant "fax" (known: video, voice, chat, conversations, sync)`},
		},
		{
			name: "TOKEN_GRANTS chat with conversations",
			env: map[string]string{
				"TWILIO_CONVERSATIONS_SERVICE_SID": cfgConvSID,
				"TWILIO_CHAT_SERVICE_SID":          cfgChatSID,
				"TOKEN_GRANTS":                     "chat,conversations",
			},
			want: []string{`TOKEN_GRANTS is "chat,conversations": chat and conversations cannot be in one token: both use the token's single chat grant`},
		},
		{
			name: "TOKEN_GRANTS names grants without their settings",
			env:  map[string]string{"TWILIO_VOICE_INCOMING": "false", "TOKEN_GRANTS": "sync,chat,video,voice"},
			want: []string{
				"TOKEN_GRANTS includes voice, which needs TWILIO_TWIML_APP_SID or TWILIO_VOICE_INCOMING=true",
				"TOKEN_GRANTS includes chat, which needs TWILIO_CHAT_SERVICE_SID",
				"TOKEN_GRANTS includes sync, which needs TWILIO_SYNC_SERVICE_SID",
			},
		},
		{
			name: "TOKEN_GRANTS conversations without its SID",
			env:  map[string]string{"TWILIO_CHAT_SERVICE_SID": cfgChatSID, "TOKEN_GRANTS": "conversations"},
			want: []string{"TOKEN_GRANTS includes conversations, which needs TWILIO_CONVERSATIONS_SERVICE_SID"},
		},
		{
			name: "every problem at once, in order",
			env: map[string]string{
				"TWILIO_ACCOUNT_SID":    "",
				"TWILIO_API_KEY_SID":    "SK123",
				"TWILIO_API_KEY_SECRET": "",
				"TWILIO_VOICE_INCOMING": "maybe",
				"TWILIO_REGION":         "mars",
				"TOKEN_MAX_TTL":         "100000",
				"TOKEN_TTL":             "2days",
				"TOKEN_GRANTS":          "sync",
			},
			want: []string{
				"TWILIO_ACCOUNT_SID is not set: the Account SID (AC followed by 32 hex digits)",
				`TWILIO_API_KEY_SID is "SK123": the API key SID must be SK followed by 32 lowercase hex digits`,
				`TWILIO_VOICE_INCOMING is "maybe": use true or false`,
				`TOKEN_MAX_TTL is "100000": use a whole number of seconds from 1 to 86400`,
				`TOKEN_TTL is "2days": use a whole number of seconds from 1 to 86400`,
				"TWILIO_API_KEY_SECRET is not set: the secret shown once when the API key was created",
				`TWILIO_REGION is "mars": use a Twilio region such as us1, ie1 or au1`,
				"TOKEN_GRANTS includes sync, which needs TWILIO_SYNC_SERVICE_SID",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfig(cfgEnv(tt.env))
			if cfg != nil {
				t.Errorf("cfg = %+v, want nil", cfg)
			}
			got := configProblems(t, err)
			if !slices.Equal(got, tt.want) {
				t.Errorf("problems =\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

// TestConfigErrorText checks the one message an operator reads.
func TestConfigErrorText(t *testing.T) {
	_, err := loadConfig(cfgEnv(map[string]string{"TWILIO_ACCOUNT_SID": "", "TOKEN_TTL": "0"}))
	want := "invalid configuration:\n" +
		"  - TWILIO_ACCOUNT_SID is not set: the Account SID (AC followed by 32 hex digits)\n" +
		`  - TOKEN_TTL is "0": use a whole number of seconds from 1 to 86400`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
}

// TestConfigErrorHidesSecret breaks every other setting while the secret
// is set: no message may quote it.
func TestConfigErrorHidesSecret(t *testing.T) {
	const secret = "zz-fake-secret-must-not-leak-zz"
	env := cfgEnv(map[string]string{
		"TWILIO_API_KEY_SECRET":            secret,
		"TWILIO_ACCOUNT_SID":               "ACnope",
		"TWILIO_API_KEY_SID":               "",
		"TWILIO_TWIML_APP_SID":             "APnope",
		"TWILIO_VOICE_INCOMING":            "nope",
		"TWILIO_PUSH_CREDENTIAL_SID":       "CRnope",
		"TWILIO_CONVERSATIONS_SERVICE_SID": "ISnope",
		"TWILIO_CHAT_SERVICE_SID":          "ISnope",
		"TWILIO_SYNC_SERVICE_SID":          "ISnope",
		"TWILIO_REGION":                    "nope",
		"VIDEO_ROOM":                       strings.Repeat("x", 200),
		"TOKEN_GRANTS":                     "nope",
		"TOKEN_TTL":                        "nope",
		"TOKEN_MAX_TTL":                    "nope",
		"USERS_FILE":                       filepath.Join(t.TempDir(), "missing"),
	})
	_, err := loadConfig(env)
	if err == nil {
		t.Fatal("loadConfig: no error")
	}
	if got := len(configProblems(t, err)); got != 13 {
		t.Errorf("got %d problems, want 13: %v", got, err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("loadConfig error quotes the secret:\n%v", err)
	}
	_, _, err = loadAll(env)
	if err == nil {
		t.Fatal("loadAll: no error")
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("loadAll error quotes the secret:\n%v", err)
	}
}

func TestEnvLookup(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ".env")
	const file = `# settings for tests
TWILIO_ACCOUNT_SID=ACfromfile
ONLY_IN_FILE=file value
EMPTY_IN_ENV=from file
QUOTED="quoted # not a comment"
export EXPORTED=yes
`
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"TWILIO_ACCOUNT_SID": "ACfromenv",
		"EMPTY_IN_ENV":       "",
		"ONLY_IN_ENV":        "env value",
	}
	getenv := func(k string) string { return env[k] }

	tests := []struct {
		name      string
		path      string
		wantFound bool
		want      map[string]string
	}{
		{
			name:      "file present",
			path:      path,
			wantFound: true,
			want: map[string]string{
				"TWILIO_ACCOUNT_SID": "ACfromenv", // the real environment wins
				"ONLY_IN_FILE":       "file value",
				"EMPTY_IN_ENV":       "from file", // an empty variable does not hide the file
				"ONLY_IN_ENV":        "env value",
				"QUOTED":             "quoted # not a comment",
				"EXPORTED":           "yes",
				"NOWHERE":            "",
			},
		},
		{
			name:      "file missing",
			path:      filepath.Join(dir, "missing.env"),
			wantFound: false,
			want: map[string]string{
				"TWILIO_ACCOUNT_SID": "ACfromenv",
				"ONLY_IN_FILE":       "",
				"EMPTY_IN_ENV":       "",
				"ONLY_IN_ENV":        "env value",
			},
		},
		{
			name:      "no file named",
			path:      "",
			wantFound: false,
			want: map[string]string{
				"TWILIO_ACCOUNT_SID": "ACfromenv",
				"ONLY_IN_FILE":       "",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lookup, found, err := envLookup(tt.path, getenv)
			if err != nil {
				t.Fatalf("envLookup: %v", err)
			}
			if found != tt.wantFound {
				t.Errorf("found = %v, want %v", found, tt.wantFound)
			}
			for k, want := range tt.want {
				if got := lookup(k); got != want {
					t.Errorf("lookup(%q) = %q, want %q", k, got, want)
				}
			}
		})
	}
}

// TestEnvLookupUnreadable: a file that exists but cannot be read is an
// error, not silently ignored like a missing one.
func TestEnvLookupUnreadable(t *testing.T) {
	dir := t.TempDir() // a directory: it exists, but is not a file
	lookup, found, err := envLookup(dir, func(string) string { return "" })
	want := "read " + dir + ": read " + dir + ": is a directory"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
	if lookup != nil || found {
		t.Errorf("lookup = %v, found = %v; want nil, false", lookup != nil, found)
	}
}

func TestLoadAllUsersFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string { return writeTestFile(t, dir, name, content) }
	good := write("good", "alice:"+string(usersTestHash(t, "alice-pw"))+"\n")
	missing := filepath.Join(dir, "missing")
	empty := write("empty", "# no users yet\n\n")
	apr1 := write("apr1", "# one old user\nalice:$apr1$deadbeef$AAAAAAAAAAAAAAAAAAAAAA\n")

	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{
			name: "users file missing",
			env:  map[string]string{"USERS_FILE": missing},
			want: []string{"USERS_FILE: users file: open " + missing + ": no such file or directory (create it with `tokend user add NAME`, or set USERS_FILE to where the users file is)"},
		},
		{
			name: "users file is a directory",
			env:  map[string]string{"USERS_FILE": dir},
			want: []string{"USERS_FILE: users file: read " + dir + ": is a directory (USERS_FILE must name a file, not a directory: for example " + filepath.Join(dir, "users.htpasswd") + ")"},
		},
		{
			name: "users file without users",
			env:  map[string]string{"USERS_FILE": empty},
			want: []string{"USERS_FILE " + empty + " has no users: add one with `tokend user add NAME`"},
		},
		{
			name: "users file with an Apache MD5 hash",
			env:  map[string]string{"USERS_FILE": apr1},
			want: []string{"USERS_FILE: " + apr1 + `:2: user "alice": unsupported hash type Apache MD5 ($apr1$); only bcrypt is accepted: recreate it with ` + "`tokend user add` or `htpasswd -B`"},
		},
		{
			name: "config and users file problems in one error",
			env:  map[string]string{"USERS_FILE": missing, "TWILIO_API_KEY_SECRET": "", "TOKEN_TTL": "0"},
			want: []string{
				`TOKEN_TTL is "0": use a whole number of seconds from 1 to 86400`,
				"TWILIO_API_KEY_SECRET is not set: the secret shown once when the API key was created",
				"USERS_FILE: users file: open " + missing + ": no such file or directory (create it with `tokend user add NAME`, or set USERS_FILE to where the users file is)",
			},
		},
		{
			name: "bad config still reads the users file it names",
			env:  map[string]string{"USERS_FILE": empty, "TWILIO_ACCOUNT_SID": ""},
			want: []string{
				"TWILIO_ACCOUNT_SID is not set: the Account SID (AC followed by 32 hex digits)",
				"USERS_FILE " + empty + " has no users: add one with `tokend user add NAME`",
			},
		},
		{
			name: "bad config with a good users file",
			env:  map[string]string{"USERS_FILE": good, "TWILIO_ACCOUNT_SID": ""},
			want: []string{"TWILIO_ACCOUNT_SID is not set: the Account SID (AC followed by 32 hex digits)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, users, err := loadAll(cfgEnv(tt.env))
			if cfg != nil || users != nil {
				t.Errorf("cfg, users = %v, %v; want nil, nil", cfg, users)
			}
			got := configProblems(t, err)
			if !slices.Equal(got, tt.want) {
				t.Errorf("problems =\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}

	t.Run("good", func(t *testing.T) {
		cfg, users, err := loadAll(cfgEnv(map[string]string{"USERS_FILE": good}))
		if err != nil {
			t.Fatalf("loadAll: %v", err)
		}
		if cfg.UsersFile != good {
			t.Errorf("UsersFile = %q, want %q", cfg.UsersFile, good)
		}
		if names := users.Names(); !slices.Equal(names, []string{"alice"}) {
			t.Errorf("Names = %q, want [alice]", names)
		}
	})
}

// TestLoadAllDefaultUsersFile: with USERS_FILE unset, users.htpasswd in the
// working directory is read, even when the rest of the configuration is bad.
func TestLoadAllDefaultUsersFile(t *testing.T) {
	t.Chdir(t.TempDir())
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{
			name: "good config",
			want: []string{"USERS_FILE: users file: open users.htpasswd: no such file or directory (create it with `tokend user add NAME`, or set USERS_FILE to where the users file is)"},
		},
		{
			name: "bad config",
			env:  map[string]string{"TWILIO_API_KEY_SECRET": ""},
			want: []string{
				"TWILIO_API_KEY_SECRET is not set: the secret shown once when the API key was created",
				"USERS_FILE: users file: open users.htpasswd: no such file or directory (create it with `tokend user add NAME`, or set USERS_FILE to where the users file is)",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := loadAll(cfgEnv(tt.env))
			got := configProblems(t, err)
			if !slices.Equal(got, tt.want) {
				t.Errorf("problems =\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

// TestSessionSettingProblems: each bad session setting is named with its fix,
// and a bad REDIS_URL is refused without echoing its password.
func TestSessionSettingProblems(t *testing.T) {
	for _, tt := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"SESSION_IDLE_TIMEOUT": "13h"}, "SESSION_IDLE_TIMEOUT (13h0m0s) is above SESSION_MAX_AGE (12h0m0s): a session ends at SESSION_MAX_AGE whatever its use"},
		{map[string]string{"SESSION_MAX_AGE": "10s"}, `SESSION_MAX_AGE is "10s": use a duration from 1m0s to 720h0m0s, such as 90s or 5m`},
		{map[string]string{"SESSION_SAMESITE": "sometimes"}, `SESSION_SAMESITE is "sometimes": use strict (the default), lax, or none`},
		{map[string]string{"SESSION_SAMESITE": "none"}, "SESSION_SAMESITE is none, which sends the session cookie from pages of other sites: only for apps on another site, so list their origins in CORS_ALLOWED_ORIGINS (not *), or use strict (the default) or lax"},
		{map[string]string{"SESSION_SAMESITE": "none", "CORS_ALLOWED_ORIGINS": "*"}, "SESSION_SAMESITE is none, which sends the session cookie from pages of other sites: only for apps on another site, so list their origins in CORS_ALLOWED_ORIGINS (not *), or use strict (the default) or lax"},
		{map[string]string{"SESSION_MAX_PER_USER": "0"}, `SESSION_MAX_PER_USER is "0": use a whole number from 1 to 1000`},
		{map[string]string{"REDIS_URL": "http://:hunter2@example.com"}, "REDIS_URL is not a Redis URL: use redis://[:PASSWORD@]HOST:PORT[/DB], or rediss:// for TLS"},
	} {
		_, err := loadConfig(cfgEnv(tt.env))
		var cerr *ConfigError
		if !errors.As(err, &cerr) || len(cerr.Problems) != 1 || cerr.Problems[0] != tt.want {
			t.Errorf("%v: %v\nwant %s", tt.env, err, tt.want)
		}
	}
	cfg, err := loadConfig(cfgEnv(map[string]string{"SESSION_SAMESITE": "none", "CORS_ALLOWED_ORIGINS": "https://app.example.net"}))
	if err != nil || cfg.Sessions.SameSite != http.SameSiteNoneMode {
		t.Errorf("SameSite=none with an allowlist: %v, %v", cfg, err)
	}
}

// TestEnvFileSyntaxError: a .env the parser refuses is reported by file,
// line and what is wrong, and no value of the file is quoted. godotenv's own
// message quotes the rest of the file from the bad line on, the API key
// secret included.
func TestEnvFileSyntaxError(t *testing.T) {
	const secret = "s3cr3tvalue0123456789abcdefABCDEF"
	tests := []struct {
		name, file, want string
	}{
		{"dash in a name", "TWILIO_ACCOUNT_SID=AC123\nVIDEO-ROOM=lobby\nTWILIO_API_KEY_SECRET=" + secret + "\n",
			"line 2: the name has a character other than a letter, digit, _ or . (column 6); write NAME=value"},
		{"unclosed double quote", "# header\n\nTWILIO_API_KEY_SECRET=\"" + secret + "\nLOG_LEVEL=debug\n",
			"line 3: the value's opening \" is never closed; close it or remove it"},
		{"unclosed single quote after a good multi-line value", "A=\"one\ntwo\"\nB='" + secret + "\n",
			"line 3: the value's opening ' is never closed; close it or remove it"},
		{"a value with no name", "TWILIO_ACCOUNT_SID=AC123\n" + secret + "\n",
			"line 2: a name with no = after it; write NAME=value"},
		{"a pasted secret with a space", "A=1\r\nTWILIO_API_KEY_SECRET " + secret + "\r\n",
			"line 2: a name with no = after it; write NAME=value"},
		{"text after a closing quote", "A=\"quoted\" " + secret + "\n",
			"line 1: a name with no = after it; write NAME=value"},
		{"byte-order mark", "\uFEFFTWILIO_API_KEY_SECRET=" + secret + "\n",
			"line 1: the file starts with a byte-order mark; save it as UTF-8 without one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeTestFile(t, t.TempDir(), ".env", tt.file)
			_, _, err := envLookup(path, func(string) string { return "" })
			if err == nil {
				t.Fatal("no error")
			}
			if want := path + " " + tt.want; err.Error() != want {
				t.Errorf("err = %v\nwant  %s", err, want)
			}
			if strings.Contains(err.Error(), secret[:8]) {
				t.Errorf("the error quotes the secret: %v", err)
			}
		})
	}
}

// TestEnvFileSyntaxErrorEveryCommand: every command that reads settings
// reports a bad .env by line, and none prints a value of it.
func TestEnvFileSyntaxErrorEveryCommand(t *testing.T) {
	const secret = "s3cr3tvalue0123456789abcdefABCDEF"
	path := writeTestFile(t, t.TempDir(), ".env", "VIDEO-ROOM=lobby\nTWILIO_API_KEY_SECRET="+secret+"\n")
	for _, args := range [][]string{
		{"serve"}, {"serve", "--dev"}, {"check"}, {"mint", "--identity", "alice"},
		{"decode", "x.y.z"}, {"user", "list"}, {"user", "del", "alice"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var stdout, stderr strings.Builder
			n := 1 // the flag goes after the command (user: its subcommand)
			if args[0] == "user" {
				n = 2
			}
			argv := append([]string{"tokend"}, args[:n]...)
			argv = append(argv, "--env-file", path)
			argv = append(argv, args[n:]...)
			err := run(t.Context(), argv, func(string) string { return "" }, time.Now, strings.NewReader(""), &stdout, &stderr)
			if want := path + " line 1: the name has a character other than a letter, digit, _ or . (column 6); write NAME=value"; err == nil || err.Error() != want {
				t.Errorf("err = %v, want %s", err, want)
			}
			if all := stdout.String() + stderr.String() + fmt.Sprint(err); strings.Contains(all, secret[:8]) {
				t.Errorf("the secret was printed: %s", all)
			}
		})
	}
}

// TestSIDErrorHidesASecretInTheWrongPlace: a secret pasted into a SID
// setting (the SID and the secret swapped, say) is not quoted back.
func TestSIDErrorHidesASecretInTheWrongPlace(t *testing.T) {
	const secret = "Zq8mN2pL7xR4tY6wK1vB3cD5fG9hJ0sA" // 32 letters and digits, as Twilio's
	for _, env := range []map[string]string{
		{"TWILIO_API_KEY_SID": secret, "TWILIO_API_KEY_SECRET": "SKdeadbeefdeadbeefdeadbeefdeadbeef"},
		{"TWILIO_API_KEY_SID": secret, "TWILIO_API_KEY_SECRET": secret},
		{"TWILIO_TWIML_APP_SID": "APdeadbeef", "TWILIO_API_KEY_SECRET": "APdeadbeef"},
	} {
		_, err := loadConfig(cfgEnv(env))
		if err == nil {
			t.Fatalf("%v: no error", env)
		}
		for _, v := range env {
			if strings.Contains(err.Error(), v) {
				t.Errorf("the error quotes %q:\n%v", v, err)
			}
		}
	}
}

// FuzzEnvFileProblem: whatever file godotenv refuses, the description is one
// of the fixed messages (numbers aside): nothing of the file gets into it.
func FuzzEnvFileProblem(f *testing.F) {
	for _, seed := range []string{"A-B=1\n", "A=\"x\nB=1\n", "A='x", "x y\n", "\uFEFFA=1", "export A=\"1\" junk\n", "A=1\r\n#c\nB\n"} {
		f.Add([]byte(seed))
	}
	fixed := regexp.MustCompile(`^(line \d+: (a name with no = after it; write NAME=value|the name has a character other than a letter, digit, _ or \. \(column \d+\); write NAME=value|the value's opening ["'] is never closed; close it or remove it|the file starts with a byte-order mark; save it as UTF-8 without one)|is not a valid env file \(the parser's message is not shown, as it may quote values\); write one NAME=value a line)$`)
	f.Fuzz(func(t *testing.T, src []byte) {
		if _, err := godotenv.UnmarshalBytes(src); err == nil {
			return
		}
		if msg := envFileProblem(src); !fixed.MatchString(msg) {
			t.Fatalf("envFileProblem(%q) = %q", src, msg)
		}
	})
}
