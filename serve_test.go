package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// testEnv returns the settings of a real configuration with user alice,
// whose password is "alice password", listening on a free loopback port.
func testEnv(t *testing.T) map[string]string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("alice password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(t.TempDir(), "users.htpasswd")
	if err := os.WriteFile(users, []byte("alice:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"TWILIO_ACCOUNT_SID":    testAccountSID,
		"TWILIO_API_KEY_SID":    testAPIKeySID,
		"TWILIO_API_KEY_SECRET": testSecret,
		"USERS_FILE":            users,
		"LISTEN_ADDR":           freeAddr(t),
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key to dir and
// returns their paths and a pool that trusts the certificate.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tokend test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestOperationSettings checks the settings of logs, metrics, shutdown and
// TLS: their defaults, and every problem named in one error.
func TestOperationSettings(t *testing.T) {
	certFile, keyFile, _ := selfSigned(t, t.TempDir())
	base := map[string]string{
		"TWILIO_ACCOUNT_SID":    testAccountSID,
		"TWILIO_API_KEY_SID":    testAPIKeySID,
		"TWILIO_API_KEY_SECRET": testSecret,
	}
	type op struct {
		LogFormat       string
		LogLevel        slog.Level
		MetricsAddr     string
		ShutdownTimeout time.Duration
		TLS             bool
	}
	tests := []struct {
		name string
		env  map[string]string
		want op
		errs []string
	}{
		{name: "defaults", want: op{"text", slog.LevelInfo, "", 15 * time.Second, false}},
		{name: "all set", env: map[string]string{"LOG_FORMAT": "JSON", "LOG_LEVEL": "debug", "METRICS_ADDR": "127.0.0.1:9090",
			"SHUTDOWN_TIMEOUT": "30", "TLS_CERT_FILE": certFile, "TLS_KEY_FILE": keyFile},
			want: op{"json", slog.LevelDebug, "127.0.0.1:9090", 30 * time.Second, true}},
		{name: "warn", env: map[string]string{"LOG_LEVEL": "WARN"}, want: op{"text", slog.LevelWarn, "", 15 * time.Second, false}},
		{name: "every problem", env: map[string]string{"LOG_FORMAT": "logfmt", "LOG_LEVEL": "loud", "METRICS_ADDR": "9090",
			"SHUTDOWN_TIMEOUT": "0", "TLS_CERT_FILE": certFile},
			errs: []string{
				`LOG_FORMAT is "logfmt": use text or json`,
				`LOG_LEVEL is "loud": use debug, info, warn or error`,
				`SHUTDOWN_TIMEOUT is "0": use a whole number of seconds from 1 to 600`,
				`TLS_CERT_FILE and TLS_KEY_FILE go together: set both to serve HTTPS, or neither`,
				`METRICS_ADDR is "9090": use HOST:PORT or :PORT with a port number, such as 127.0.0.1:9090`,
			}},
		{name: "key only", env: map[string]string{"TLS_KEY_FILE": keyFile},
			errs: []string{`TLS_CERT_FILE and TLS_KEY_FILE go together: set both to serve HTTPS, or neither`}},
		{name: "key and certificate swapped", env: map[string]string{"TLS_CERT_FILE": keyFile, "TLS_KEY_FILE": certFile},
			errs: []string{`TLS_CERT_FILE and TLS_KEY_FILE: tls: failed to find certificate PEM data in certificate input, but did find a private key; PEM inputs may have been switched`}},
		{name: "missing certificate", env: map[string]string{"TLS_CERT_FILE": "/nonexistent/cert.pem", "TLS_KEY_FILE": keyFile},
			errs: []string{`TLS_CERT_FILE and TLS_KEY_FILE: open /nonexistent/cert.pem: no such file or directory`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tt.env {
				env[k] = v
			}
			cfg, err := loadConfig(mapEnv(env))
			if tt.errs != nil {
				var cerr *ConfigError
				if !errors.As(err, &cerr) || !reflect.DeepEqual(cerr.Problems, tt.errs) {
					t.Errorf("err = %v\nwant problems %q", err, tt.errs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := op{cfg.LogFormat, cfg.LogLevel, cfg.MetricsAddr, cfg.ShutdownTimeout, cfg.TLSCert != nil}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// get fetches url with client and returns the status and body.
func get(t *testing.T, client *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestRunMetricsAddr: with METRICS_ADDR, /metrics is served there and not
// beside /token.
func TestRunMetricsAddr(t *testing.T) {
	env := testEnv(t)
	metricsAddr := freeAddr(t)
	env["METRICS_ADDR"] = metricsAddr
	var stdout, stderr syncBuffer
	errc := startRun(t, []string{"serve", "--env-file", filepath.Join(t.TempDir(), ".env")}, env, &stdout, &stderr)
	base := "http://" + env["LISTEN_ADDR"]
	waitReady(t, base, errc)
	if resp, body := postJSON(t, base+"/token", map[string]string{"username": "alice", "password": "alice password"}); resp.StatusCode != 200 {
		t.Fatalf("token: %d %v", resp.StatusCode, body)
	}
	status, body := get(t, http.DefaultClient, base+"/metrics")
	if want := `{"type":"urn:tokend:problem:not-found","title":"Not found","status":404,"detail":"no such endpoint /metrics; tokens are issued by POST /token"}` + "\n"; status != 404 || body != want {
		t.Errorf("/metrics beside /token: %d %s", status, body)
	}
	status, body = get(t, http.DefaultClient, "http://"+metricsAddr+"/metrics")
	if status != 200 || !strings.Contains(body, "\n"+`tokend_tokens_issued_total{grant="video"} 1`+"\n") {
		t.Errorf("/metrics on METRICS_ADDR: %d\n%s", status, body)
	}
	if status, _ := get(t, http.DefaultClient, "http://"+metricsAddr+"/token"); status != 404 {
		t.Errorf("/token on METRICS_ADDR: %d", status)
	}
	// Lifting a login lock is for operators: on METRICS_ADDR only.
	if resp, _ := postJSON(t, base+"/admin/unlock?username=alice", nil); resp.StatusCode != 404 {
		t.Errorf("/admin/unlock beside /token: %d", resp.StatusCode)
	}
	resp, err := http.Post("http://"+metricsAddr+"/admin/unlock?username=alice", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `{"username":"alice","was_locked":false}` + "\n"; resp.StatusCode != 200 || string(b) != want {
		t.Errorf("/admin/unlock on METRICS_ADDR: %d %s", resp.StatusCode, b)
	}
	if status, _ := get(t, http.DefaultClient, "http://"+metricsAddr+"/debug/pprof/"); status != 404 {
		t.Errorf("/debug/pprof/ without --pprof: %d", status)
	}
	if !strings.Contains(stderr.String(), "metrics_addr="+metricsAddr) {
		t.Errorf("start-up does not name METRICS_ADDR: %s", stderr.String())
	}
}

// TestRunPprof: serve --pprof serves Go's profiler on METRICS_ADDR only, and
// refuses to start without it.
func TestRunPprof(t *testing.T) {
	env := testEnv(t)
	envFile := filepath.Join(t.TempDir(), ".env")
	var stdout, stderr syncBuffer
	err := run(context.Background(), []string{"tokend", "serve", "--pprof", "--env-file", envFile}, mapEnv(env), time.Now, strings.NewReader(""), &stdout, &stderr)
	if want := "--pprof serves the profiler on the METRICS_ADDR listener, never beside /token: set METRICS_ADDR"; err == nil || err.Error() != want {
		t.Errorf("--pprof without METRICS_ADDR: %v", err)
	}
	metricsAddr := freeAddr(t)
	env["METRICS_ADDR"] = metricsAddr
	errc := startRun(t, []string{"serve", "--pprof", "--env-file", envFile}, env, &stdout, &stderr)
	base := "http://" + env["LISTEN_ADDR"]
	waitReady(t, base, errc)
	if status, body := get(t, http.DefaultClient, "http://"+metricsAddr+"/debug/pprof/"); status != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/ on METRICS_ADDR: %d", status)
	}
	if status, _ := get(t, http.DefaultClient, base+"/debug/pprof/"); status != 404 {
		t.Errorf("/debug/pprof/ beside /token: %d", status)
	}
}

// TestRunTLS serves HTTPS with a certificate the test makes, and refuses
// clients that cannot speak TLS 1.2.
func TestRunTLS(t *testing.T) {
	env := testEnv(t)
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
	env["TLS_CERT_FILE"], env["TLS_KEY_FILE"] = certFile, keyFile
	var stdout, stderr syncBuffer
	errc := startRun(t, []string{"serve", "--env-file", filepath.Join(t.TempDir(), ".env")}, env, &stdout, &stderr)
	base := "https://" + env["LISTEN_ADDR"]
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	t.Cleanup(client.CloseIdleConnections)
	deadline := time.Now().Add(90 * time.Second) // as waitReady's: only for a server that never starts
	for {
		select {
		case err := <-errc:
			t.Fatalf("server stopped: %v\n%s", err, stderr.String())
		default:
		}
		resp, err := client.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready over HTTPS: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	resp, err := client.Post(base+"/token", jsonCT, strings.NewReader(`{"username":"alice","password":"alice password"}`))
	if err != nil {
		t.Fatal(err)
	}
	var body tokenResponse
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 200 || body.Identity != "alice" || resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Fatalf("token over HTTPS: %d %+v %+v", resp.StatusCode, body, resp.TLS)
	}
	verify(t, body.Token, testSecret, time.Now())

	old := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}}}
	if _, err := old.Get(base + "/healthz"); err == nil || !strings.Contains(err.Error(), "protocol version not supported") {
		t.Errorf("a TLS 1.1 client: err = %v, want the server to refuse its protocol version", err)
	}
	if !strings.Contains(stderr.String(), "tls=true") {
		t.Errorf("start-up does not say TLS is on: %s", stderr.String())
	}
	// A scanner's failed handshakes come at any rate: one line a minute
	// says how many there were, not one line each.
	for range 20 {
		old.Get(base + "/healthz")
	}
	old.CloseIdleConnections()
	if n := strings.Count(stderr.String(), `kind="http: TLS handshake error"`); n != 1 {
		t.Errorf("21 failed handshakes logged %d lines, want 1:\n%s", n, stderr.String())
	}
}

// TestServerErrorsThrottled: each kind of net/http server error is logged at
// most once an interval, with how many there were since its last line.
func TestServerErrorsThrottled(t *testing.T) {
	var logs bytes.Buffer
	clock := specTime
	errs := newServerErrors(newLogger(&logs, "text", slog.LevelInfo), func() time.Time { return clock }, time.Minute)
	l := stdlog.New(errs, "", 0)
	handshake := func(port int) { l.Printf("http: TLS handshake error from 192.0.2.1:%d: EOF", port) }
	handshake(1)
	for p := 2; p <= 5; p++ {
		clock = clock.Add(time.Second)
		handshake(p)
	}
	l.Printf("http: URL query contains semicolon, which is no longer a supported separator; parts of the query may be stripped when parsed; see golang.org/issue/25192")
	clock = specTime.Add(61 * time.Second)
	handshake(6)
	handshake(7)
	var lines []string
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		_, rest, _ := strings.Cut(line, " level=")
		lines = append(lines, "level="+rest)
	}
	want := []string{
		`level=WARN msg="http server error" kind="http: TLS handshake error" count=1 per=1m0s last="http: TLS handshake error from 192.0.2.1:1: EOF"`,
		`level=WARN msg="http server error" kind="http: URL query contains semicolon" count=1 per=1m0s last="http: URL query contains semicolon, which is no longer a supported separator; parts of the query may be stripped when parsed; see golang.org/issue/25192"`,
		`level=WARN msg="http server error" kind="http: TLS handshake error" count=5 per=1m0s last="http: TLS handshake error from 192.0.2.1:6: EOF"`,
	}
	if !slices.Equal(lines, want) {
		t.Errorf("logs:\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

// heldRequest is a POST /token whose handler is running: its headers are
// sent, the server has asked for the body (100 Continue), and the body is
// not sent yet. It is how a test keeps a request in flight as long as it
// needs, without a slow handler or a sleep.
type heldRequest struct {
	conn net.Conn
	br   *bufio.Reader
	body string
}

func holdRequest(t *testing.T, addr, body string) *heldRequest {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(conn, "POST /token HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", addr, len(body))
	h := &heldRequest{conn: conn, br: bufio.NewReader(conn), body: body}
	resp, err := http.ReadResponse(h.br, nil)
	if err != nil || resp.StatusCode != http.StatusContinue {
		t.Fatalf("want 100 Continue: %v %v", resp, err)
	}
	return h
}

// finish sends the body in two writes and returns the answer.
func (h *heldRequest) finish(t *testing.T) (int, string) {
	t.Helper()
	half := len(h.body) / 2
	if _, err := io.WriteString(h.conn, h.body[:half]); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(h.conn, h.body[half:]); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(h.br, nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitFor polls cond until it holds, failing the test after 15 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// startBinary builds tokend and starts it with env and nothing else in its
// environment; the channel receives its exit.
func startBinary(t *testing.T, env map[string]string) (*exec.Cmd, <-chan error, *syncBuffer) {
	t.Helper()
	cmd, exited, stderr := startBinaryNoWait(t, env)
	waitReady(t, "http://"+env["LISTEN_ADDR"], exited)
	return cmd, exited, stderr
}

// startBinaryNoWait is startBinary without waiting for tokend to be ready.
func startBinaryNoWait(t *testing.T, env map[string]string) (*exec.Cmd, <-chan error, *syncBuffer) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tokend")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "serve", "--env-file", filepath.Join(t.TempDir(), ".env"))
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd, exited, &stderr
}

// TestSIGHUPDuringStartUp: a SIGHUP while tokend is still starting (here,
// hashing its dummy password at the users' cost 13) must not end it, as
// SIGHUP's default action does; once serving, it still reloads.
func TestSIGHUPDuringStartUp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	env := testEnv(t)
	// alice's password, at cost 13: the dummy hash made at start-up
	// takes about half a second of CPU.
	const slowHash = "$2a$13$GTIKmpyv47k25v6VFy35puH.GUsrL2S.P6i6Hsn11TmupxPZpzCpG"
	if err := os.WriteFile(env["USERS_FILE"], []byte("alice:"+slowHash+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, exited, stderr := startBinaryNoWait(t, env)
	// The Go runtime ends a process on SIGHUP until main asks for it,
	// which no program can help: wait until tokend is past that, in
	// bcrypt, which the CPU time it has used (50ms and more) shows.
	waitFor(t, "tokend to start hashing", func() bool {
		select {
		case err := <-exited:
			t.Fatalf("exited during start-up: %v\n%s", err, stderr.String())
		default:
		}
		return cpuTicks(t, cmd.Process.Pid) >= 5
	})
	url := "http://" + env["LISTEN_ADDR"] + "/healthz"
	hups := 0
	waitFor(t, "tokend to serve", func() bool {
		if err := cmd.Process.Signal(syscall.SIGHUP); err == nil {
			hups++
		}
		select {
		case err := <-exited:
			t.Fatalf("SIGHUP %d during start-up ended tokend: %v\n%s", hups, err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	cmd.Process.Signal(syscall.SIGTERM)
	if err := <-exited; err != nil {
		t.Errorf("exit after %d SIGHUPs during start-up: %v\n%s", hups, err, stderr.String())
	}
}

// cpuTicks returns the clock ticks of CPU time process pid has used, from
// /proc (the test skips where there is none).
func cpuTicks(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Skipf("no /proc to tell when tokend is starting: %v", err)
	}
	// Fields after the command name (in parentheses): utime and stime
	// are the 12th and 13th.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	return utime + stime
}

// waitClosed waits until addr refuses connections: shutdown has begun.
func waitClosed(t *testing.T, addr string) {
	t.Helper()
	waitFor(t, "the listener to close", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
}

// TestSIGTERMFinishesRequestsInFlight builds tokend, starts it, holds two
// logins in flight, sends the process a real SIGTERM and checks that it
// stops accepting, answers both, and exits 0.
func TestSIGTERMFinishesRequestsInFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	env := testEnv(t)
	env["SHUTDOWN_TIMEOUT"] = "30"
	addr := env["LISTEN_ADDR"]
	cmd, exited, stderr := startBinary(t, env)

	good := holdRequest(t, addr, `{"username":"alice","password":"alice password","grants":"video"}`)
	bad := holdRequest(t, addr, `{"username":"alice","password":"not the password"}`)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, addr)
	select {
	case err := <-exited:
		t.Fatalf("exited with requests in flight: %v\n%s", err, stderr.String())
	default:
	}

	status, body := good.finish(t)
	var tok tokenResponse
	if err := json.Unmarshal([]byte(body), &tok); status != 200 || err != nil || tok.Identity != "alice" {
		t.Errorf("login in flight: %d %s", status, body)
	} else {
		verify(t, tok.Token, testSecret, time.Now())
	}
	status, body = bad.finish(t)
	if want := `{"type":"urn:tokend:problem:unauthorized","title":"Unauthorized","status":401,"detail":"the username or password is wrong, or none was sent; send them as JSON {\"username\", \"password\"}, a form, or HTTP Basic auth"}` + "\n"; status != 401 || body != want {
		t.Errorf("wrong password in flight: %d %s", status, body)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit: %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("still running after its requests were answered:\n%s", stderr.String())
	}
	logs := stderr.String()
	if !strings.Contains(logs, "msg=\"shutting down: no new connections; waiting for requests in flight\" timeout=30s") || !strings.Contains(logs, "msg=stopped") {
		t.Errorf("logs:\n%s", logs)
	}
}

// TestSecondSignalStopsAtOnce: an operator who sends a second signal does
// not wait for the requests in flight.
func TestSecondSignalStopsAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	env := testEnv(t)
	cmd, exited, stderr := startBinary(t, env)
	held := holdRequest(t, env["LISTEN_ADDR"], `{"username":"alice","password":"alice password"}`)
	cmd.Process.Signal(os.Interrupt)
	waitClosed(t, env["LISTEN_ADDR"])
	// The first signal's handler is released just after shutdown begins:
	// signal until the default action, ending the process, takes over.
	var err error
	waitFor(t, "the process to end", func() bool {
		cmd.Process.Signal(os.Interrupt)
		select {
		case err = <-exited:
			return true
		case <-time.After(50 * time.Millisecond):
			return false
		}
	})
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !exit.Sys().(syscall.WaitStatus).Signaled() || exit.Sys().(syscall.WaitStatus).Signal() != os.Interrupt {
		t.Errorf("exit = %v, want killed by the second SIGINT\n%s", err, stderr.String())
	}
	if _, err := http.ReadResponse(held.br, nil); err == nil {
		t.Error("the request in flight was answered")
	}
}

// TestShutdownTimeout: a request still in flight after SHUTDOWN_TIMEOUT is
// cut off, and run says so instead of returning success.
func TestShutdownTimeout(t *testing.T) {
	env := testEnv(t)
	env["SHUTDOWN_TIMEOUT"] = "1"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"tokend", "serve", "--env-file", filepath.Join(t.TempDir(), ".env")}, mapEnv(env), time.Now, strings.NewReader(""), &stdout, &stderr)
	}()
	waitReady(t, "http://"+env["LISTEN_ADDR"], errc)
	held := holdRequest(t, env["LISTEN_ADDR"], `{"username":"alice","password":"alice password"}`)
	cancel()
	select {
	case err := <-errc:
		want := "shutdown: requests still in flight after SHUTDOWN_TIMEOUT (1s) were cut off: context deadline exceeded"
		if err == nil || err.Error() != want {
			t.Errorf("run = %v, want %s", err, want)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return")
	}
	if _, err := http.ReadResponse(held.br, nil); err == nil {
		t.Error("the cut-off request got an answer")
	}
}
