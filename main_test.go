package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// syncBuffer is a bytes.Buffer safe to read while run writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// mapEnv is a getenv backed by a map.
func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// waitReady polls /healthz until the server answers, as a deploy would.
// The deadline only catches a server that never comes up: it is not a speed
// check, since under -race on a loaded machine development mode's two
// cost-12 bcrypt hashes alone can take well over 10 seconds.
func waitReady(t testing.TB, base string, errc <-chan error) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-errc:
			t.Fatalf("server stopped before it was ready: %v", err)
		default:
		}
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("server not ready after 90s")
}

// startRun runs tokend with args and env, and stops it when the test ends,
// checking that it shut down cleanly.
func startRun(t *testing.T, args []string, env map[string]string, stdout, stderr *syncBuffer) <-chan error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, append([]string{"tokend"}, args...), mapEnv(env), time.Now, strings.NewReader(""), stdout, stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("run returned %v after shutdown", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("run did not return after shutdown")
		}
	})
	return errc
}

func postJSON(t *testing.T, url string, body any) (*http.Response, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp, out
}

// TestRunServes starts tokend through run with a .env and a users file,
// exactly as `make run` does with a configured checkout.
func TestRunServes(t *testing.T) {
	dir := t.TempDir()
	hash, _ := bcrypt.GenerateFromPassword([]byte("s3cret pass"), bcrypt.MinCost)
	users := filepath.Join(dir, "users.htpasswd")
	os.WriteFile(users, []byte("# team\nalice:"+string(hash)+"\n"), 0o600)
	addr := freeAddr(t)
	envFile := filepath.Join(dir, ".env")
	os.WriteFile(envFile, []byte(strings.Join([]string{
		"TWILIO_ACCOUNT_SID=" + testAccountSID,
		"TWILIO_API_KEY_SID=" + testAPIKeySID,
		"TWILIO_API_KEY_SECRET=" + testSecret,
		"TWILIO_SYNC_SERVICE_SID=IS00000000000000000000000000000002",
		"USERS_FILE=" + users,
		"LISTEN_ADDR=127.0.0.1:1", // the real environment below wins
	}, "\n")), 0o600)
	var stdout, stderr syncBuffer
	errc := startRun(t, []string{"serve", "--env-file", envFile}, map[string]string{"LISTEN_ADDR": addr}, &stdout, &stderr)
	base := "http://" + addr
	waitReady(t, base, errc)

	resp, body := postJSON(t, base+"/token", map[string]string{"username": "alice", "password": "s3cret pass"})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %v", resp.StatusCode, body)
	}
	token, _ := body["token"].(string)
	header, claims := decodeSegments(t, token)
	if header["cty"] != "twilio-fpa;v=1" || claims["sub"] != testAccountSID || claims["iss"] != testAPIKeySID {
		t.Errorf("header %v claims %v", header, claims)
	}
	grants, _ := json.Marshal(claims["grants"])
	if want := `{"data_sync":{"service_sid":"IS00000000000000000000000000000002"},"identity":"alice","video":{}}`; string(grants) != want {
		t.Errorf("grants = %s, want %s", grants, want)
	}
	verify(t, token, testSecret, time.Now())

	resp, body = postJSON(t, base+"/token", map[string]string{"username": "alice", "password": "wrong"})
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Basic realm="tokend"` {
		t.Errorf("wrong password: %d %v", resp.StatusCode, body)
	}
	for _, secret := range []string{testSecret, "s3cret pass", token} {
		if strings.Contains(stdout.String()+stderr.String(), secret) {
			t.Errorf("output contains a secret: %q", secret)
		}
	}
}

// TestRunRefusesBadConfig: without a .env and without --dev, tokend does not
// fall back to development mode; it lists every problem and says what to do.
func TestRunRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr syncBuffer
	err := run(context.Background(), []string{"tokend", "serve", "--env-file", filepath.Join(dir, ".env")},
		mapEnv(map[string]string{"TWILIO_API_KEY_SID": "ACdeadbeefdeadbeefdeadbeefdeadbeef", "USERS_FILE": filepath.Join(dir, "users")}),
		time.Now, strings.NewReader(""), &stdout, &stderr)
	want := fmt.Sprintf(`invalid configuration:
  - TWILIO_ACCOUNT_SID is not set: the Account SID (AC followed by 32 hex digits)
  - TWILIO_API_KEY_SID is "ACdeadbeefdeadbeefdeadbeefdeadbeef": the API key SID must be SK followed by 32 lowercase hex digits; this is an Account SID
  - TWILIO_API_KEY_SECRET is not set: the secret shown once when the API key was created
  - USERS_FILE: users file: open %[1]s/users: no such file or directory (create it with `+"`tokend user add NAME`"+`, or set USERS_FILE to where the users file is)
  - no %[1]s/.env file was found: copy .env.example to .env and fill it in, or try development mode with `+"`tokend serve --dev`"+` (what `+"`make run`"+` starts on a fresh clone)`, dir)
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
	if stdout.String() != "" {
		t.Errorf("stdout = %q", stdout.String())
	}
}

// TestRunDevMode is what a new user sees after `make run` on a fresh clone.
func TestRunDevMode(t *testing.T) {
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	var stdout, stderr syncBuffer
	errc := startRun(t, []string{"serve", "--dev", "--env-file", filepath.Join(t.TempDir(), ".env")},
		map[string]string{"LISTEN_ADDR": ":" + port}, &stdout, &stderr)
	waitReady(t, "http://127.0.0.1:"+port, errc)
	out := stdout.String()
	for _, want := range []string{"DEVELOPMENT MODE", "Twilio will REJECT them", "Listening on 127.0.0.1 only"} {
		if !strings.Contains(out, want) {
			t.Errorf("banner lacks %q:\n%s", want, out)
		}
	}
	m := regexp.MustCompile(`Password:  (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no password in banner:\n%s", out)
	}
	resp, body := postJSON(t, "http://127.0.0.1:"+port+"/token", map[string]string{"username": "demo", "password": m[1]})
	if resp.StatusCode != 200 {
		t.Fatalf("demo login: %d %v", resp.StatusCode, body)
	}
	_, claims := decodeSegments(t, body["token"].(string))
	grants, _ := json.Marshal(claims["grants"])
	want := `{"chat":{"service_sid":"ISdeadbeefdeadbeefdeadbeefdeadbee1"},"data_sync":{"service_sid":"ISdeadbeefdeadbeefdeadbeefdeadbee2"},"identity":"demo","video":{},"voice":{"incoming":{"allow":true},"outgoing":{"application_sid":"APdeadbeefdeadbeefdeadbeefdeadbeef"}}}`
	if string(grants) != want {
		t.Errorf("grants = %s\nwant     %s", grants, want)
	}
	// Loopback only: the listener is not on every interface.
	if strings.Contains(stderr.String(), "addr=[::]") || !strings.Contains(stderr.String(), "addr=127.0.0.1:"+port) {
		t.Errorf("dev mode listens on: %s", stderr.String())
	}
	if strings.Contains(stderr.String(), m[1]) {
		t.Error("the demo password is in the log")
	}
}

func TestRunUsage(t *testing.T) {
	var stdout, stderr syncBuffer
	if err := run(context.Background(), []string{"tokend", "frobnicate"}, mapEnv(nil), time.Now, strings.NewReader(""), &stdout, &stderr); err != errUsage {
		t.Errorf("err = %v", err)
	}
	if !strings.HasPrefix(stderr.String(), `tokend: unknown command "frobnicate"`) {
		t.Errorf("stderr = %s", stderr.String())
	}
	stdout, stderr = syncBuffer{}, syncBuffer{}
	if err := run(context.Background(), []string{"tokend", "help"}, mapEnv(nil), time.Now, strings.NewReader(""), &stdout, &stderr); err != nil || stdout.String() != usage {
		t.Errorf("help: %v %q", err, stdout.String())
	}
}
