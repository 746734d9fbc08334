package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"
)

// TestUnlockCommand: `tokend unlock` lifts a lock through the running
// server's METRICS_ADDR listener, and says what it did or what is wrong.
func TestUnlockCommand(t *testing.T) {
	cfg := testConfig()
	cfg.Limits = Limits{UserFailures: 1, UserFailuresPerHour: 90, AddrFailures: 100, AddrFailuresPerHour: 100, MaxKeys: 100}
	g := newGuardedServer(t, cfg, map[string]string{"alice": "correct horse"})
	admin := httptest.NewServer(adminRoutes(slog.New(slog.NewTextHandler(io.Discard, nil)), newMetrics(), g.auth.limits, false))
	defer admin.Close()
	g.login(addrA, "alice", "wrong")
	if status, _, _ := g.login(addrA, "alice", "correct horse"); status != 429 {
		t.Fatalf("alice not locked: %d", status)
	}
	envFile := filepath.Join(t.TempDir(), "none.env")
	unlock := func(env map[string]string, args ...string) (string, string, error) {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), append([]string{"tokend", "unlock", "--env-file", envFile}, args...), mapEnv(env), time.Now, nil, &stdout, &stderr)
		return stdout.String(), stderr.String(), err
	}
	env := map[string]string{"METRICS_ADDR": admin.Listener.Addr().String()}
	tests := []struct {
		env              map[string]string
		args             []string
		wantOut, wantErr string
		wantUsage        bool
	}{
		{env: env, args: []string{"--user", "alice"}, wantOut: "username \"alice\" was locked; unlocked\n"},
		{env: env, args: []string{"--user", "alice"}, wantOut: "username \"alice\" was not locked\n"},
		{env: env, args: []string{"--address", "198.51.100.7"}, wantOut: "address 198.51.100.7 was not locked\n"},
		{env: env, args: []string{"--address", "nowhere"}, wantErr: "tokend refused: address: is not an IP address such as 198.51.100.7 or 2001:db8::1"},
		{env: nil, args: []string{"--user", "alice"}, wantErr: "METRICS_ADDR is not set: locks are lifted on that listener only, never beside /token; without it, restarting tokend clears every lock"},
		{env: env, args: []string{"--user", "alice", "--address", "198.51.100.7"}, wantUsage: true},
		{env: env, args: nil, wantUsage: true},
	}
	for i, tt := range tests {
		out, stderr, err := unlock(tt.env, tt.args...)
		switch {
		case tt.wantUsage:
			if err != errUsage || stderr == "" {
				t.Errorf("%d %v: err %v, stderr %q; want the usage", i, tt.args, err, stderr)
			}
		case tt.wantErr != "":
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("%d %v: err %v\nwant %s", i, tt.args, err, tt.wantErr)
			}
		default:
			if err != nil || out != tt.wantOut {
				t.Errorf("%d %v: %q %v, want %q", i, tt.args, out, err, tt.wantOut)
			}
		}
	}
	if status, _, body := g.login(addrA, "alice", "correct horse"); status != 200 {
		t.Errorf("after tokend unlock: %d %s", status, body)
	}
}
