package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"tokend/internal/session"
)

// runSession is `tokend session list [USER]` and `tokend session revoke
// USER|ID`: it asks a running tokend, on its METRICS_ADDR listener (the
// private one), which holds the sessions whatever the store.
func runSession(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "list" && args[0] != "revoke" {
		fmt.Fprintf(stderr, "tokend session: name a subcommand: list or revoke\n\n%s", usage)
		return errUsage
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet("session "+sub, stderr)
	envFile := envFileFlag(fs)
	adminURL := fs.String("admin", "", "the running tokend's METRICS_ADDR as a `URL` (default: from METRICS_ADDR)")
	byUser := fs.Bool("user", false, "revoke: the argument is a user name, even if it looks like a session ID")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if n := fs.NArg(); sub == "list" && n > 1 || sub == "revoke" && n != 1 {
		fmt.Fprintf(stderr, "tokend session %s: wrong number of arguments\n\n%s", sub, usage)
		return errUsage
	}
	base := *adminURL
	if base == "" {
		lookup, _, err := envLookup(*envFile, getenv)
		if err != nil {
			return err
		}
		if base, err = adminBase(lookup("METRICS_ADDR")); err != nil {
			return err
		}
	}
	client := &http.Client{Timeout: 10 * time.Second}
	switch sub {
	case "list":
		target := base + "/admin/sessions"
		if fs.NArg() == 1 {
			target += "?user=" + url.QueryEscape(fs.Arg(0))
		}
		var list sessionList
		if err := adminCall(client, http.MethodGet, target, &list); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tUSER\tSTARTED\tLAST USED\tENDS IF IDLE\tENDS")
		for _, s := range list.Sessions {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.User, s.Created, s.LastSeen, s.IdleExpiresAt, s.ExpiresAt)
		}
		return tw.Flush()
	default: // revoke
		arg := fs.Arg(0)
		target := base + "/admin/sessions?user=" + url.QueryEscape(arg)
		what := fmt.Sprintf("user %q", arg)
		if !*byUser && looksLikeSessionID(arg) {
			target, what = base+"/admin/sessions/"+arg, "session "+arg
		}
		var res revokeResult
		if err := adminCall(client, http.MethodDelete, target, &res); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: %d session(s) ended\n", what, res.Ended)
		return nil
	}
}

func looksLikeSessionID(s string) bool {
	if len(s) != session.IDLen {
		return false
	}
	return strings.Trim(s, "0123456789abcdef") == ""
}

// adminBase turns METRICS_ADDR into the URL the commands call: a listener
// on every address is called on loopback.
func adminBase(metricsAddr string) (string, error) {
	if metricsAddr == "" {
		return "", fmt.Errorf("the session commands talk to a running tokend on its METRICS_ADDR listener, and METRICS_ADDR is not set: set it (as the server has it) or pass --admin http://HOST:PORT")
	}
	host, port, err := net.SplitHostPort(metricsAddr)
	if err != nil {
		return "", fmt.Errorf("METRICS_ADDR is %q: use HOST:PORT or :PORT", metricsAddr)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// adminCall sends one request to the admin endpoints and decodes the answer
// into out, or returns the problem's detail.
func adminCall(client *http.Client, method, target string, out any) error {
	req, err := http.NewRequest(method, target, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("ask the running tokend: %w (is it running with this METRICS_ADDR?)", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if resp.StatusCode != http.StatusOK {
		var p problem
		if json.Unmarshal(body, &p) == nil && p.Detail != "" {
			return fmt.Errorf("tokend answered %d: %s", resp.StatusCode, p.Detail)
		}
		return fmt.Errorf("tokend answered %s to %s %s: is this tokend's METRICS_ADDR?", resp.Status, method, req.URL.Path)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("tokend's answer to %s %s is not what this version expects: %v", method, req.URL.Path, err)
	}
	return nil
}
