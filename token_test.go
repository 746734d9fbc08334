package main

import (
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Obviously fake credentials, as in ../shared/twilio-access-token.md.
const (
	testAccountSID = "ACdeadbeefdeadbeefdeadbeefdeadbeef"
	testAPIKeySID  = "SKfeedfacefeedfacefeedfacefeedface"
	testSecret     = "test-secret-not-a-real-twilio-key"
)

// specTime is the issue time of the reference example.
var specTime = time.Unix(1795743131, 0)

// specGrants are the grants of the reference example: every grant, every field.
func specGrants() Grants {
	return Grants{
		Identity: "alice",
		Video:    &VideoGrant{Room: "My Room"},
		Voice: &VoiceGrant{
			Incoming: &VoiceIncoming{Allow: true},
			Outgoing: &VoiceOutgoing{
				ApplicationSID: "AP00000000000000000000000000000001",
				Params:         map[string]string{"agent": "alice", "queue": "support"},
			},
			PushCredentialSID: "CR00000000000000000000000000000001",
			EndpointID:        "voice-endpoint-1",
		},
		Chat: &ChatGrant{
			ServiceSID:        "IS00000000000000000000000000000001",
			EndpointID:        "chat-endpoint-1",
			DeploymentRoleSID: "RL00000000000000000000000000000001",
			PushCredentialSID: "CR00000000000000000000000000000002",
		},
		Sync: &SyncGrant{ServiceSID: "IS00000000000000000000000000000002", EndpointID: "sync-endpoint-1"},
	}
}

// The reference example, decoded, exactly as the spec gives it plus "iat".
const specHeader = `{"alg":"HS256","cty":"twilio-fpa;v=1","typ":"JWT"}`
const specClaims = `{"jti":"SKfeedfacefeedfacefeedfacefeedface-1795743131",
 "grants":{"video":{"room":"My Room"},
   "voice":{"incoming":{"allow":true},
            "outgoing":{"application_sid":"AP00000000000000000000000000000001",
                        "params":{"agent":"alice","queue":"support"}},
            "push_credential_sid":"CR00000000000000000000000000000001",
            "endpoint_id":"voice-endpoint-1"},
   "chat":{"service_sid":"IS00000000000000000000000000000001","endpoint_id":"chat-endpoint-1",
           "deployment_role_sid":"RL00000000000000000000000000000001",
           "push_credential_sid":"CR00000000000000000000000000000002"},
   "data_sync":{"service_sid":"IS00000000000000000000000000000002","endpoint_id":"sync-endpoint-1"},
   "identity":"alice"},
 "iss":"SKfeedfacefeedfacefeedfacefeedface","exp":1795750331,"nbf":1795743131,
 "sub":"ACdeadbeefdeadbeefdeadbeefdeadbeef","iat":1795743131}`

// decodeSegments splits a token and decodes its header and claims as
// generic JSON, the way a client (or Twilio) sees them.
func decodeSegments(t *testing.T, token string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d segments, want 3", len(parts))
	}
	for i, dst := range []*map[string]any{&header, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatalf("segment %d is not unpadded base64url: %v", i, err)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			t.Fatalf("segment %d is not JSON: %v", i, err)
		}
	}
	return header, claims
}

func mustJSON(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("bad fixture %s: %v", s, err)
	}
	return m
}

// verify checks the signature with golang-jwt, as an independent verifier,
// and that exp/nbf are what a standard parser reads.
func verify(t *testing.T, token, secret string, now time.Time) {
	t.Helper()
	parsed, err := jwt.Parse(token, func(*jwt.Token) (any, error) { return []byte(secret), nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(func() time.Time { return now }))
	if err != nil {
		t.Fatalf("golang-jwt does not verify the token: %v", err)
	}
	if !parsed.Valid {
		t.Fatal("golang-jwt says the token is not valid")
	}
}

func TestMintMatchesSpecExample(t *testing.T) {
	m := NewMinter(testAccountSID, testAPIKeySID, testSecret, "")
	token, claims, err := m.Mint(specTime, 7200*time.Second, specGrants())
	if err != nil {
		t.Fatal(err)
	}
	header, gotClaims := decodeSegments(t, token)
	if want := mustJSON(t, specHeader); !reflect.DeepEqual(header, want) {
		t.Errorf("header = %v\nwant     %v", header, want)
	}
	if want := mustJSON(t, specClaims); !reflect.DeepEqual(gotClaims, want) {
		got, _ := json.Marshal(gotClaims)
		t.Errorf("claims = %s\nwant     %s", got, specClaims)
	}
	if claims.ExpiresAt != 1795750331 || claims.JTI != testAPIKeySID+"-1795743131" {
		t.Errorf("returned claims = %+v", claims)
	}
	verify(t, token, testSecret, specTime.Add(time.Minute))
	if _, err := jwt.Parse(token, func(*jwt.Token) (any, error) { return []byte("another secret"), nil }); err == nil {
		t.Error("the token verifies with the wrong secret")
	}
}

// TestMintGrants checks each grant alone and in combination: the exact
// "grants" claim, with fields present only when they have a value.
func TestMintGrants(t *testing.T) {
	tests := []struct {
		name   string
		grants Grants
		want   string
	}{
		{"video any room", Grants{Identity: "alice", Video: &VideoGrant{}},
			`{"identity":"alice","video":{}}`},
		{"video one room", Grants{Identity: "alice", Video: &VideoGrant{Room: "Daily"}},
			`{"identity":"alice","video":{"room":"Daily"}}`},
		{"voice incoming only", Grants{Identity: "alice", Voice: &VoiceGrant{Incoming: &VoiceIncoming{Allow: true}}},
			`{"identity":"alice","voice":{"incoming":{"allow":true}}}`},
		{"voice outgoing without params", Grants{Identity: "alice", Voice: &VoiceGrant{Outgoing: &VoiceOutgoing{ApplicationSID: "AP00000000000000000000000000000001"}}},
			`{"identity":"alice","voice":{"outgoing":{"application_sid":"AP00000000000000000000000000000001"}}}`},
		{"voice empty params omitted", Grants{Identity: "alice", Voice: &VoiceGrant{Outgoing: &VoiceOutgoing{ApplicationSID: "AP00000000000000000000000000000001", Params: map[string]string{}}}},
			`{"identity":"alice","voice":{"outgoing":{"application_sid":"AP00000000000000000000000000000001"}}}`},
		{"conversations", Grants{Identity: "alice", Chat: &ChatGrant{ServiceSID: "IS00000000000000000000000000000001"}},
			`{"identity":"alice","chat":{"service_sid":"IS00000000000000000000000000000001"}}`},
		{"sync", Grants{Identity: "alice", Sync: &SyncGrant{ServiceSID: "IS00000000000000000000000000000002"}},
			`{"identity":"alice","data_sync":{"service_sid":"IS00000000000000000000000000000002"}}`},
		{"video and sync", Grants{Identity: "bob_1", Video: &VideoGrant{}, Sync: &SyncGrant{ServiceSID: "IS00000000000000000000000000000002"}},
			`{"identity":"bob_1","video":{},"data_sync":{"service_sid":"IS00000000000000000000000000000002"}}`},
	}
	m := NewMinter(testAccountSID, testAPIKeySID, testSecret, "")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token, _, err := m.Mint(specTime, time.Hour, tt.grants)
			if err != nil {
				t.Fatal(err)
			}
			_, claims := decodeSegments(t, token)
			want := mustJSON(t, `{"jti":"SKfeedfacefeedfacefeedfacefeedface-1795743131",
				"iss":"SKfeedfacefeedfacefeedfacefeedface","sub":"ACdeadbeefdeadbeefdeadbeefdeadbeef",
				"iat":1795743131,"nbf":1795743131,"exp":1795746731,"grants":`+tt.want+`}`)
			if !reflect.DeepEqual(claims, want) {
				got, _ := json.Marshal(claims["grants"])
				t.Errorf("grants = %s\nwant     %s", got, tt.want)
			}
			verify(t, token, testSecret, specTime)
		})
	}
}

func TestMintHeader(t *testing.T) {
	tests := []struct {
		region string
		want   string
	}{
		{"", `{"alg":"HS256","typ":"JWT","cty":"twilio-fpa;v=1"}`},
		{"ie1", `{"alg":"HS256","typ":"JWT","cty":"twilio-fpa;v=1","twr":"ie1"}`},
	}
	for _, tt := range tests {
		m := NewMinter(testAccountSID, testAPIKeySID, testSecret, tt.region)
		token, _, err := m.Mint(specTime, time.Hour, Grants{Identity: "alice", Video: &VideoGrant{}})
		if err != nil {
			t.Fatal(err)
		}
		header, _ := decodeSegments(t, token)
		if want := mustJSON(t, tt.want); !reflect.DeepEqual(header, want) {
			t.Errorf("region %q: header = %v, want %v", tt.region, header, want)
		}
		verify(t, token, testSecret, specTime)
	}
}

func TestMintTTLLimits(t *testing.T) {
	m := NewMinter(testAccountSID, testAPIKeySID, testSecret, "")
	tests := []struct {
		ttl     time.Duration
		wantErr bool
	}{
		{time.Second, false},
		{24 * time.Hour, false},
		{24*time.Hour + time.Second, true},
		{0, true},
		{500 * time.Millisecond, true},
		{-time.Hour, true},
	}
	for _, tt := range tests {
		token, claims, err := m.Mint(specTime, tt.ttl, Grants{Identity: "alice", Video: &VideoGrant{}})
		if (err != nil) != tt.wantErr {
			t.Errorf("ttl %s: err = %v, want error %v", tt.ttl, err, tt.wantErr)
			continue
		}
		if err == nil {
			if got := claims.ExpiresAt - claims.IssuedAt; got != int64(tt.ttl/time.Second) {
				t.Errorf("ttl %s: exp - iat = %d", tt.ttl, got)
			}
			verify(t, token, testSecret, specTime)
		}
	}
}

func TestBuildGrants(t *testing.T) {
	cfg := &Config{
		TwiMLAppSID:             "AP00000000000000000000000000000001",
		VoiceIncoming:           true,
		PushCredentialSID:       "CR00000000000000000000000000000001",
		ChatPushCredentialSID:   "CR00000000000000000000000000000002",
		ConversationsServiceSID: "IS00000000000000000000000000000001",
		ChatServiceSID:          "IS00000000000000000000000000000003",
		SyncServiceSID:          "IS00000000000000000000000000000002",
		VideoRoom:               "Lobby",
	}
	set := func(names ...string) grantSet {
		s, err := parseGrantNames(names)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tests := []struct {
		name string
		set  grantSet
		opt  grantOptions
		want string
	}{
		{"video default room", set("video"), grantOptions{}, `{"identity":"alice","video":{"room":"Lobby"}}`},
		{"video asked room", set("video"), grantOptions{Room: "Daily"}, `{"identity":"alice","video":{"room":"Daily"}}`},
		{"voice with params", set("voice"), grantOptions{VoiceParams: map[string]string{"queue": "support"}},
			`{"identity":"alice","voice":{"incoming":{"allow":true},"outgoing":{"application_sid":"AP00000000000000000000000000000001","params":{"queue":"support"}},"push_credential_sid":"CR00000000000000000000000000000001"}}`},
		{"conversations uses its service", set("conversations"), grantOptions{},
			`{"identity":"alice","chat":{"service_sid":"IS00000000000000000000000000000001","push_credential_sid":"CR00000000000000000000000000000002"}}`},
		{"chat uses its service", set("chat"), grantOptions{},
			`{"identity":"alice","chat":{"service_sid":"IS00000000000000000000000000000003","push_credential_sid":"CR00000000000000000000000000000002"}}`},
		{"sync", set("sync"), grantOptions{}, `{"identity":"alice","data_sync":{"service_sid":"IS00000000000000000000000000000002"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(buildGrants(cfg, tt.set, "alice", tt.opt))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("grants = %s\nwant     %s", got, tt.want)
			}
		})
	}
	noIncoming := *cfg
	noIncoming.VoiceIncoming = false
	noIncoming.TwiMLAppSID = ""
	noIncoming.PushCredentialSID = ""
	noIncoming.ChatPushCredentialSID = ""
	if got, _ := json.Marshal(buildGrants(&noIncoming, set("voice"), "alice", grantOptions{})); string(got) != `{"identity":"alice","voice":{}}` {
		t.Errorf("voice without incoming or app = %s", got)
	}
}

func TestParseGrantNames(t *testing.T) {
	tests := []struct {
		in      []string
		want    string
		wantErr string
	}{
		{[]string{"video"}, "video", ""},
		{[]string{" Voice ", "video", ""}, "video,voice", ""},
		{[]string{"sync", "conversations", "voice", "video"}, "video,voice,conversations,sync", ""},
		{[]string{"rtc"}, "", `unknown grant "rtc" (known: video, voice, chat, conversations, sync)`},
		{[]string{"chat", "conversations"}, "", "chat and conversations cannot be in one token: both use the token's single chat grant"},
	}
	for _, tt := range tests {
		got, err := parseGrantNames(tt.in)
		errText := ""
		if err != nil {
			errText = err.Error()
		}
		if got.String() != tt.want || errText != tt.wantErr {
			t.Errorf("parseGrantNames(%q) = %q, %q; want %q, %q", tt.in, got, errText, tt.want, tt.wantErr)
		}
	}
}

func TestCheckIdentity(t *testing.T) {
	video, voice, chat := grantBit(grantVideo), grantBit(grantVoice), grantBit(grantChat)
	tests := []struct {
		identity string
		set      grantSet
		want     string
	}{
		{"alice", video | voice | chat, ""},
		{"alice_2", voice, ""},
		{"alice smith", video | chat, ""},
		{"alice smith", voice, "Twilio Voice allows only letters, digits and _ in an identity; use a username without other characters, or a token without the voice grant"},
		{"alice@example.com", voice, "Twilio Voice allows only letters, digits and _ in an identity; use a username without other characters, or a token without the voice grant"},
		{strings.Repeat("a", 128), video, ""},
		{strings.Repeat("a", 129), video, "is 129 characters; Twilio Video allows at most 128"},
		{strings.Repeat("a", 129), chat, ""},
		{strings.Repeat("é", 256), chat, ""},
		{strings.Repeat("a", 257), chat, "is 257 characters; Twilio allows at most 256"},
		{"", chat, "must not be empty"},
		{"alice\xff", video, "is not valid UTF-8"},
	}
	for _, tt := range tests {
		if got := checkIdentity(tt.identity, tt.set); got != tt.want {
			t.Errorf("checkIdentity(%.20q, %s) = %q, want %q", tt.identity, tt.set, got, tt.want)
		}
	}
}

// BenchmarkMintToken measures signing alone: `video` is the common token
// (an identity and a room), `all` the largest (every grant, every field).
// The target for `video` is at most 2 µs and 20 allocations on a 2-core
// machine; see the README for the figures and Twilio's own helper's.
func BenchmarkMintToken(b *testing.B) {
	m := NewMinter(testAccountSID, testAPIKeySID, testSecret, "")
	for _, bb := range []struct {
		name   string
		grants Grants
	}{
		{"video", Grants{Identity: "alice", Video: &VideoGrant{Room: "My Room"}}},
		{"all", specGrants()},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := m.Mint(specTime, time.Hour, bb.grants); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestMintConcurrent mints from many goroutines at once: each token must
// carry its own claims and verify, whatever signer the pool hands out.
func TestMintConcurrent(t *testing.T) {
	m := NewMinter(testAccountSID, testAPIKeySID, testSecret, "")
	const n = 16
	tokens := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			grants := Grants{Identity: "user" + strconv.Itoa(i), Video: &VideoGrant{Room: strings.Repeat("r", i+1)}}
			tokens[i], _, errs[i] = m.Mint(specTime, time.Hour, grants)
		})
	}
	wg.Wait()
	for i, token := range tokens {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		_, claims := decodeSegments(t, token)
		grants, _ := json.Marshal(claims["grants"])
		want := `{"identity":"user` + strconv.Itoa(i) + `","video":{"room":"` + strings.Repeat("r", i+1) + `"}}`
		if string(grants) != want {
			t.Errorf("token %d: grants = %s, want %s", i, grants, want)
		}
		verify(t, token, testSecret, specTime)
	}
}

// TestMintPayloadIsEncodingJSON: Mint writes the claims by hand around the
// grants; the bytes must be exactly what json.Marshal writes for the claims
// it returns, escaping included, so the struct tags stay the one definition.
func TestMintPayloadIsEncodingJSON(t *testing.T) {
	for _, tt := range []struct {
		accountSID, apiKeySID string
		grants                Grants
	}{
		{testAccountSID, testAPIKeySID, specGrants()},
		{testAccountSID, testAPIKeySID, Grants{Identity: `quote " back \ <script>&` + "\u2028 é", Video: &VideoGrant{Room: "<Room & \"1\">"}}},
		{`AC"odd<key>`, `SK\odd&key`, Grants{Identity: "alice"}},
	} {
		m := NewMinter(tt.accountSID, tt.apiKeySID, testSecret, "")
		token, claims, err := m.Mint(specTime, 90*time.Minute, tt.grants)
		if err != nil {
			t.Fatal(err)
		}
		payload, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[1])
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(&claims)
		if string(payload) != string(want) {
			t.Errorf("payload\n got %s\nwant %s", payload, want)
		}
	}
}
