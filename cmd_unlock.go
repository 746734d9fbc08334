package main

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	base, err := adminBase(metricsAddr)
	if err != nil {
		return err
	}
	q := url.Values{}
	if *user != "" {
		q.Set("username", *user)
	} else {
		q.Set("address", *address)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var ans unlocked
	err = newAdminClient(base).call(ctx, http.MethodPost, "/admin/unlock?"+q.Encode(), &ans)
	var refused *adminRefusal
	if errors.As(err, &refused) {
		return fmt.Errorf("tokend refused: %s", refused.detail)
	}
	if err != nil {
		return err
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
