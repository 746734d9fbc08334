package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// runUnlock is `tokend unlock --user NAME` or `--address ADDR`: it asks the
// running tokend, on its METRICS_ADDR listener, to lift that login lock
// (POST /admin/unlock), and says whether there was one.
func runUnlock(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("unlock", stderr)
	envFile := envFileFlag(fs)
	user := fs.String("user", "", "lift the lock of the username `NAME`")
	address := fs.String("address", "", "lift the locks of the client address `ADDR` (IPv6: its /64)")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if (*user == "") == (*address == "") {
		fmt.Fprintln(stderr, "tokend unlock: give exactly one of --user NAME or --address ADDR")
		shortUsage(stderr, "unlock")
		return errUsage
	}
	lookup, _, err := envLookup(*envFile, getenv)
	if err != nil {
		return err
	}
	metricsAddr := strings.TrimSpace(lookup("METRICS_ADDR"))
	if metricsAddr == "" {
		return errors.New("METRICS_ADDR is not set: locks are lifted on that listener only, never beside /token; without it, restarting tokend clears every lock")
	}
	host, port, err := net.SplitHostPort(metricsAddr)
	if err != nil {
		return fmt.Errorf("METRICS_ADDR is %q: use HOST:PORT or :PORT, such as 127.0.0.1:9090", metricsAddr)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1" // listening on every address: this machine is one of them
	}
	q := url.Values{}
	if *user != "" {
		q.Set("username", *user)
	} else {
		q.Set("address", *address)
	}
	target := "http://" + net.JoinHostPort(host, port) + "/admin/unlock?" + q.Encode()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("ask tokend on METRICS_ADDR %s: %w (is tokend running with this METRICS_ADDR?)", metricsAddr, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		var p problem
		if json.Unmarshal(body, &p) == nil && p.Detail != "" {
			return fmt.Errorf("tokend refused: %s", p.Detail)
		}
		return fmt.Errorf("tokend answered %s", resp.Status)
	}
	var ans unlocked
	if err := json.Unmarshal(body, &ans); err != nil {
		return fmt.Errorf("tokend's answer is not the expected JSON: %w", err)
	}
	what := fmt.Sprintf("username %q", ans.Username) // quoted: a name never reaches the terminal raw
	if ans.Address != "" {
		what = "address " + ans.Address
	}
	if ans.WasLocked {
		fmt.Fprintf(stdout, "%s was locked; unlocked\n", what)
	} else {
		fmt.Fprintf(stdout, "%s was not locked\n", what)
	}
	return nil
}
