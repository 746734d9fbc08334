package main

import (
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// decodeHead is what decode prints for the token of mintVideo.
const decodeHead = `header:
{
  "alg": "HS256",
  "typ": "JWT",
  "cty": "twilio-fpa;v=1"
}
claims:
{
  "jti": "SKfeedfacefeedfacefeedfacefeedface-1795743131",
  "iss": "SKfeedfacefeedfacefeedfacefeedface",
  "sub": "ACdeadbeefdeadbeefdeadbeefdeadbeef",
  "iat": 1795743131,
  "nbf": 1795743131,
  "exp": 1795743731,
  "grants": {
    "identity": "alice",
    "video": {
      "room": "My Room"
    }
  }
}
`

// mintVideo mints, at specTime, alice's token for "My Room", valid 10 minutes.
func mintVideo(t testing.TB) string {
	t.Helper()
	token, _, err := NewMinter(testAccountSID, testAPIKeySID, testSecret, "").
		Mint(specTime, 10*time.Minute, Grants{Identity: "alice", Video: &VideoGrant{Room: "My Room"}})
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// signed returns a token with header and claims of one's choosing, signed
// by golang-jwt with secret.
func signed(t *testing.T, header map[string]any, claims jwt.MapClaims, secret string) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDecodeCommand(t *testing.T) {
	noEnv := filepath.Join(t.TempDir(), "absent.env")
	token := mintVideo(t)
	const signatureOK = "signature:  valid: HS256 with TWILIO_API_KEY_SECRET\n"
	tests := []struct {
		name       string
		env        map[string]string
		now        time.Time
		stdin      string
		args       []string
		wantStdout string
		wantErr    string
	}{
		{name: "valid, as an argument", env: cmdEnv(), now: specTime.Add(time.Minute), args: []string{token},
			wantStdout: decodeHead + `issued:     2026-11-27T01:32:11Z (1m0s ago)
not before: 2026-11-27T01:32:11Z (1m0s ago)
expires:    2026-11-27T01:42:11Z (in 9m0s)
lifetime:   10m0s
` + signatureOK},
		{name: "from stdin with -, whitespace trimmed", env: cmdEnv(), now: specTime, stdin: "\n  " + token + " \r\n", args: []string{"-"},
			wantStdout: decodeHead + `issued:     2026-11-27T01:32:11Z (now)
not before: 2026-11-27T01:32:11Z (now)
expires:    2026-11-27T01:42:11Z (in 10m0s)
lifetime:   10m0s
` + signatureOK},
		{name: "from stdin without an argument", env: cmdEnv(), now: specTime.Add(9*time.Minute + 59*time.Second + 600*time.Millisecond), stdin: token + "\n",
			wantStdout: decodeHead + `issued:     2026-11-27T01:32:11Z (10m0s ago)
not before: 2026-11-27T01:32:11Z (10m0s ago)
expires:    2026-11-27T01:42:11Z (in 0s)
lifetime:   10m0s
` + signatureOK},
		{name: "expired: reported, and the signature still verifies", env: cmdEnv(), now: specTime.Add(time.Hour), args: []string{token},
			wantStdout: decodeHead + `issued:     2026-11-27T01:32:11Z (1h0m0s ago)
not before: 2026-11-27T01:32:11Z (1h0m0s ago)
expires:    2026-11-27T01:42:11Z (expired 50m0s ago: Twilio refuses it, error 20104)
lifetime:   10m0s
` + signatureOK},
		{name: "expiring this second", env: cmdEnv(), now: specTime.Add(10 * time.Minute), args: []string{token},
			wantStdout: decodeHead + `issued:     2026-11-27T01:32:11Z (10m0s ago)
not before: 2026-11-27T01:32:11Z (10m0s ago)
expires:    2026-11-27T01:42:11Z (expired now: Twilio refuses it, error 20104)
lifetime:   10m0s
` + signatureOK},
		{name: "not valid yet (a clock behind)", env: cmdEnv(), now: specTime.Add(-90 * time.Second), args: []string{token},
			wantStdout: decodeHead + `issued:     2026-11-27T01:32:11Z (in 1m30s)
not before: 2026-11-27T01:32:11Z (in 1m30s: Twilio refuses it until then, error 20104)
expires:    2026-11-27T01:42:11Z (in 11m30s)
lifetime:   10m0s
` + signatureOK},
		{name: "signed with another secret", env: cmdEnv("TWILIO_API_KEY_SECRET", "another-secret"), now: specTime, args: []string{token},
			wantStdout: decodeHead + `issued:     2026-11-27T01:32:11Z (now)
not before: 2026-11-27T01:32:11Z (now)
expires:    2026-11-27T01:42:11Z (in 10m0s)
lifetime:   10m0s
`,
			wantErr: "signature: does not verify with TWILIO_API_KEY_SECRET: it was signed with another secret, or changed since"},
		{name: "signed for another API key", env: cmdEnv("TWILIO_API_KEY_SID", "SK00000000000000000000000000000000", "TWILIO_API_KEY_SECRET", "another-secret"), now: specTime, args: []string{token},
			wantStdout: decodeHead + `issued:     2026-11-27T01:32:11Z (now)
not before: 2026-11-27T01:32:11Z (now)
expires:    2026-11-27T01:42:11Z (in 10m0s)
lifetime:   10m0s
`,
			wantErr: `signature: does not verify with TWILIO_API_KEY_SECRET: it was signed with another secret, or changed since; the token is for API key "SKfeedfacefeedfacefeedfacefeedface" (iss), the settings name SK00000000000000000000000000000000`},
		{name: "no secret configured", env: map[string]string{}, now: specTime, args: []string{token},
			wantStdout: decodeHead + `issued:     2026-11-27T01:32:11Z (now)
not before: 2026-11-27T01:32:11Z (now)
expires:    2026-11-27T01:42:11Z (in 10m0s)
lifetime:   10m0s
`,
			wantErr: "signature: not checked: TWILIO_API_KEY_SECRET is not set, in the environment or in " + noEnv},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, err := runTokend(t, tt.env, tt.now, tt.stdin, append([]string{"decode", "--env-file", noEnv}, tt.args...)...)
			if gotErr := errString(err); gotErr != tt.wantErr {
				t.Errorf("err = %s\nwant  %s", gotErr, tt.wantErr)
			}
			if stdout != tt.wantStdout {
				t.Errorf("stdout:\n%s\nwant:\n%s", stdout, tt.wantStdout)
			}
			if stderr != "" {
				t.Errorf("stderr = %q", stderr)
			}
			if strings.Contains(stdout+errString(err), testSecret) {
				t.Error("the secret was printed")
			}
		})
	}
}

// TestDecodeCommandOddTokens: tokens tokend would not mint still decode,
// with what Twilio would make of them; broken ones get a plain message.
func TestDecodeCommandOddTokens(t *testing.T) {
	noEnv := filepath.Join(t.TempDir(), "absent.env")
	t0 := specTime.Unix()
	b64 := base64.RawURLEncoding.EncodeToString
	parts := strings.Split(mintVideo(t), ".")
	tests := []struct {
		name      string
		token     string
		malformed bool   // nothing is printed
		wantAfter string // the lines after the claims
		wantErr   string
	}{
		{name: "over 24 hours, no iat",
			token: signed(t, nil, jwt.MapClaims{"nbf": t0, "exp": t0 + 90000, "grants": map[string]any{"identity": "alice"}}, testSecret),
			wantAfter: `issued:     (no iat claim)
not before: 2026-11-27T01:32:11Z (now)
expires:    2026-11-28T02:32:11Z (in 25h0m0s)
lifetime:   25h0m0s (over the 24h0m0s Twilio allows: error 20157)
signature:  valid: HS256 with TWILIO_API_KEY_SECRET
`},
		{name: "no exp, no nbf",
			token: signed(t, nil, jwt.MapClaims{"iat": t0}, testSecret),
			wantAfter: `issued:     2026-11-27T01:32:11Z (now)
not before: (no nbf claim)
expires:    never: Twilio refuses a token without exp
signature:  valid: HS256 with TWILIO_API_KEY_SECRET
`},
		{name: "exp before nbf",
			token: signed(t, nil, jwt.MapClaims{"nbf": t0, "exp": t0 - 1}, testSecret),
			wantAfter: `issued:     (no iat claim)
not before: 2026-11-27T01:32:11Z (now)
expires:    2026-11-27T01:32:10Z (expired 1s ago: Twilio refuses it, error 20104)
lifetime:   -1s (exp is not after nbf: Twilio refuses it)
signature:  valid: HS256 with TWILIO_API_KEY_SECRET
`},
		{name: "claims changed after signing",
			token: parts[0] + "." + b64([]byte(`{"grants":{"identity":"mallory"}}`)) + "." + parts[2],
			wantAfter: `issued:     (no iat claim)
not before: (no nbf claim)
expires:    never: Twilio refuses a token without exp
`,
			wantErr: "signature: does not verify with TWILIO_API_KEY_SECRET: it was signed with another secret, or changed since"},
		{name: "alg none",
			token: b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + ".",
			wantAfter: `issued:     2026-11-27T01:32:11Z (now)
not before: 2026-11-27T01:32:11Z (now)
expires:    2026-11-27T01:42:11Z (in 10m0s)
lifetime:   10m0s
`,
			wantErr: "signature: does not verify with TWILIO_API_KEY_SECRET: token signature is invalid: signing method none is invalid"},
		{name: "alg RS256",
			token: b64([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + parts[1] + "." + parts[2],
			wantAfter: `issued:     2026-11-27T01:32:11Z (now)
not before: 2026-11-27T01:32:11Z (now)
expires:    2026-11-27T01:42:11Z (in 10m0s)
lifetime:   10m0s
`,
			wantErr: "signature: does not verify with TWILIO_API_KEY_SECRET: token signature is invalid: signing method RS256 is invalid"},
		{malformed: true, name: "one part", token: "not-a-token",
			wantErr: "not a token: it has 1 part(s) separated by dots; a JWT has 3, header.claims.signature"},
		{malformed: true, name: "four parts", token: mintVideo(t) + ".x",
			wantErr: "not a token: it has 4 part(s) separated by dots; a JWT has 3, header.claims.signature"},
		{malformed: true, name: "padded base64", token: parts[0] + "=." + parts[1] + "." + parts[2],
			wantErr: "not a token: its header is not unpadded base64url (illegal base64 data at input byte 67)"},
		{malformed: true, name: "header not JSON", token: b64([]byte("alg")) + "." + parts[1] + "." + parts[2],
			wantErr: "not a token: its header is not a JSON object (invalid character 'a' looking for beginning of value)"},
		{malformed: true, name: "claims null", token: parts[0] + "." + b64([]byte("null")) + "." + parts[2],
			wantErr: "not a token: its claims is not a JSON object"},
		{malformed: true, name: "claims an array", token: parts[0] + "." + b64([]byte("[1]")) + "." + parts[2],
			wantErr: "not a token: its claims is not a JSON object (json: cannot unmarshal array into Go value of type map[string]json.RawMessage)"},
		{malformed: true, name: "signature not base64url", token: parts[0] + "." + parts[1] + ".a+b",
			wantErr: "not a token: its signature is not unpadded base64url (illegal base64 data at input byte 1)"},
		{name: "exp a string", token: signed(t, nil, jwt.MapClaims{"exp": "tomorrow"}, testSecret),
			wantErr: "the claims are not those of an access token: json: cannot unmarshal string into Go struct field Claims.exp of type int64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, err := runTokend(t, cmdEnv(), specTime, "", "decode", "--env-file", noEnv, tt.token)
			if gotErr := errString(err); gotErr != tt.wantErr {
				t.Errorf("err = %s\nwant  %s", gotErr, tt.wantErr)
			}
			// The header and claims are printed as the token has them, as
			// TestDecodeCommand checks; here what matters is what follows.
			_, rest, printed := strings.Cut(stdout, "\nclaims:\n")
			_, after, _ := strings.Cut(rest, "\n}\n")
			if printed != !tt.malformed || after != tt.wantAfter {
				t.Errorf("stdout after the claims:\n%s\nwant:\n%s\nall of it:\n%s", after, tt.wantAfter, stdout)
			}
			if stderr != "" {
				t.Errorf("stderr = %q", stderr)
			}
		})
	}
}

func TestDecodeCommandInput(t *testing.T) {
	noEnv := filepath.Join(t.TempDir(), "absent.env")
	tests := []struct {
		name       string
		stdin      string
		args       []string
		wantErr    error
		wantErrMsg string
		wantStderr string // the first line
	}{
		{name: "empty stdin", stdin: "", wantErrMsg: "no token: give it as an argument, or on stdin"},
		{name: "blank argument", args: []string{" "}, wantErrMsg: "not a token: it has 1 part(s) separated by dots; a JWT has 3, header.claims.signature"},
		{name: "stdin too long", stdin: strings.Repeat("a", 64<<10+1), wantErrMsg: "stdin holds over 64 KiB, which is not a token"},
		{name: "two tokens", args: []string{"a.b.c", "d.e.f"}, wantErr: errUsage, wantStderr: "tokend decode: want one token, or - to read it from stdin; got 2 arguments"},
		{name: "unknown flag", args: []string{"--verify=false"}, wantErr: errUsage, wantStderr: "tokend decode: flag provided but not defined: -verify"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, err := runTokend(t, cmdEnv(), specTime, tt.stdin, append([]string{"decode", "--env-file", noEnv}, tt.args...)...)
			if tt.wantErr != nil && err != tt.wantErr {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErrMsg != "" && errString(err) != tt.wantErrMsg {
				t.Errorf("err = %v\nwant  %s", err, tt.wantErrMsg)
			}
			if first, _, _ := strings.Cut(stderr, "\n"); first != tt.wantStderr || stdout != "" {
				t.Errorf("stderr starts %q, want %q; stdout %q", first, tt.wantStderr, stdout)
			}
		})
	}
}

// TestMintThenDecode is the command-line round trip a developer makes:
// what mint prints, decode reads from stdin and verifies.
func TestMintThenDecode(t *testing.T) {
	noEnv := filepath.Join(t.TempDir(), "absent.env")
	token, _, err := runTokend(t, cmdEnv(), specTime, "", "mint", "--env-file", noEnv, "--identity", "alice", "--grant", "video", "--room", "My Room", "--ttl", "600")
	if err != nil {
		t.Fatal(err)
	}
	stdout, _, err := runTokend(t, cmdEnv(), specTime.Add(time.Minute), token, "decode", "--env-file", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := decodeHead + `issued:     2026-11-27T01:32:11Z (1m0s ago)
not before: 2026-11-27T01:32:11Z (1m0s ago)
expires:    2026-11-27T01:42:11Z (in 9m0s)
lifetime:   10m0s
signature:  valid: HS256 with TWILIO_API_KEY_SECRET
`
	if stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", stdout, want)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// FuzzDecode: decode answers any input with output or a message, never a
// panic, and never prints the secret; it succeeds only for a token the
// secret signed.
func FuzzDecode(f *testing.F) {
	f.Add(mintVideo(f))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	f.Add("..")
	f.Add("e30.bnVsbA.")
	f.Add("e30.eyJleHAiOiIxIn0.x")
	noEnv := filepath.Join(f.TempDir(), "absent.env")
	f.Fuzz(func(t *testing.T, token string) {
		stdout, stderr, err := runTokend(t, cmdEnv(), specTime, token, "decode", "--env-file", noEnv)
		if strings.Contains(stdout+stderr+errString(err), testSecret) {
			t.Fatal("the secret was printed")
		}
		if err == nil && verifySignature(strings.TrimSpace(token), testSecret) != nil {
			t.Fatalf("decode accepted a token the secret did not sign: %q", token)
		}
	})
}

// TestDecodeUnwrapsWhatIsPasted: the token is found in what is usually
// copied around it, and anything else that is not a token says what it is.
func TestDecodeUnwrapsWhatIsPasted(t *testing.T) {
	noEnv := filepath.Join(t.TempDir(), "absent.env")
	token, _, err := runTokend(t, cmdEnv(), specTime, "", "mint", "--env-file", noEnv, "--identity", "alice", "--grant", "video", "--ttl", "600")
	if err != nil {
		t.Fatal(err)
	}
	token = strings.TrimSpace(token)
	want, _, err := runTokend(t, cmdEnv(), specTime, "", "decode", "--env-file", noEnv, token)
	if err != nil {
		t.Fatal(err)
	}
	for _, pasted := range []string{
		"Bearer " + token,
		"bearer  " + token + "\n",
		"Authorization: Bearer " + token,
		`{"token":"` + token + `","identity":"alice","expires_at":"2026-11-27T01:42:11Z"}`,
		"{\n  \"identity\": \"alice\",\n  \"token\": \"" + token + "\"\n}\n",
		`"` + token + `"`,
	} {
		for _, how := range []string{"argument", "stdin"} {
			args, stdin := []string{"decode", "--env-file", noEnv, pasted}, ""
			if how == "stdin" {
				args, stdin = args[:3], pasted
			}
			got, stderr, err := runTokend(t, cmdEnv(), specTime, stdin, args...)
			if err != nil || got != want || stderr != "" {
				t.Errorf("%q as %s: err %v, stderr %q, stdout:\n%s", pasted, how, err, stderr, got)
			}
		}
	}
	for _, tt := range []struct{ pasted, wantErr string }{
		{`{"type":"urn:tokend:problem:unauthorized","title":"Unauthorized","status":401,"detail":"the username or password is wrong"}`,
			`not a token: this is an error answer ("the username or password is wrong"), not a token`},
		{`{"identity":"alice"}`, `not a token: this JSON has no "token" field; paste the token, or POST /token's whole answer`},
		{`{"token":`, `not a token: it starts like JSON but is not (unexpected end of JSON input); paste the token, or POST /token's whole answer`},
	} {
		_, _, err := runTokend(t, cmdEnv(), specTime, "", "decode", "--env-file", noEnv, tt.pasted)
		if errString(err) != tt.wantErr {
			t.Errorf("%s: err = %v\nwant %s", tt.pasted, err, tt.wantErr)
		}
	}
}
