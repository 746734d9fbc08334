package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"tokend/internal/passhash"
)

// runCheck is `tokend check`: start-up's checks of the settings and the
// users file, without serving, for deploy pipelines. It fails with
// start-up's own error, word for word, since both come from loadAll.
func runCheck(args []string, getenv func(string) string, environ []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check", stderr)
	envFile := envFileFlag(fs)
	formats := fs.Bool("users", false, "also report the password hash formats the users have (never the hashes)")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	lookup, found, err := envLookup(*envFile, getenv)
	if err != nil {
		return err
	}
	cfg, users, warnings, err := loadChecked(lookup, *envFile, found, environ)
	if err != nil {
		return err
	}
	source := "settings from " + *envFile + " and the environment"
	if !found {
		source = "settings from the environment; no " + *envFile + " file"
	}
	fmt.Fprintf(stdout, "configuration ok (%s)\n", source)
	fmt.Fprintf(stdout, "  account:    %s, API key %s\n", cfg.AccountSID, cfg.APIKeySID)
	sample, err := checkUsers(cfg, users, *formats, stdout)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "  grants:     %s enabled; %s by default\n", cfg.EnabledGrants, cfg.DefaultGrants)
	fmt.Fprintf(stdout, "  token ttl:  %ds by default, at most %ds\n", cfg.TTL/time.Second, cfg.MaxTTL/time.Second)
	fmt.Fprintf(stdout, "  listen:     %s\n", cfg.ListenAddr)
	if cfg.MetricsAddr != "" {
		fmt.Fprintf(stdout, "  metrics:    %s\n", cfg.MetricsAddr)
	}
	fmt.Fprintf(stdout, "  cors:       %s\n", corsSummary(cfg.CORSOrigins))
	for _, w := range warnings {
		fmt.Fprintf(stderr, "tokend: warning: %s\n", w)
	}
	if users != nil {
		for _, w := range costWarnings(users, cfg.UsersFile) {
			fmt.Fprintf(stdout, "warning: %s\n", w)
		}
	}
	if *formats {
		reportFormats(stdout, sample, cfg.HashLimits)
	}
	if z := cfg.Zoom; z != nil {
		fmt.Fprintf(stdout, "  zoom:       SDK key %s, %d host(s), %s\n", z.Key, len(z.Hosts), z.sessionsSummary())
		for _, w := range z.warnings() {
			fmt.Fprintf(stdout, "  warning:    %s\n", w)
		}
	}
	if cfg.OIDC != nil {
		return checkOIDC(cfg.OIDC, stdout, stderr)
	}
	return nil
}

// checkOIDC does what start-up does in the background: discovery and the
// first key set, and says what it found, so that a wrong issuer or an
// unreachable provider shows in the deploy pipeline, not at the first login.
func checkOIDC(c *OIDCConfig, stdout, stderr io.Writer) error {
	idp := newOIDCLogin(c, newLogger(stderr, "text", slog.LevelError), nil, time.Now)
	d, err := idp.discover(context.Background())
	if err != nil {
		return fmt.Errorf("OIDC_ISSUER %s: %w", c.Issuer, err)
	}
	fmt.Fprintf(stdout, "  oidc:       issuer %s, client ID %s\n", d.Issuer, c.Audience)
	fmt.Fprintf(stdout, "              keys: %d from %s\n", idp.keys.count(), d.JWKSURI)
	fmt.Fprintf(stdout, "              identity: the %q claim (map: %s)\n", c.IdentityClaim, c.IdentityMap)
	var usable []string
	for _, a := range d.Algorithms {
		if slices.Contains(c.Algorithms, a) {
			usable = append(usable, a)
		}
	}
	if len(d.Algorithms) > 0 && len(usable) == 0 {
		return fmt.Errorf("OIDC_ALGORITHMS: the provider signs ID tokens with %s, none of which tokend accepts (%s)", strings.Join(d.Algorithms, ", "), strings.Join(c.Algorithms, ", "))
	}
	fmt.Fprintf(stdout, "              algorithms: provider signs with %s; accepted: %s\n", strings.Join(d.Algorithms, ", "), strings.Join(c.Algorithms, ", "))
	return nil
}

// checkUsers prints where the users are. With a user database it connects
// and runs USERS_QUERY for a name no one has, so a wrong URL, table or
// column fails the check; with sample it also reads USERS_SAMPLE_QUERY (or
// the file's hashes) for reportFormats.
func checkUsers(cfg *Config, users *Users, sample bool, stdout io.Writer) ([]string, error) {
	if cfg.UsersDB.URL == "" && users == nil {
		fmt.Fprintf(stdout, "  users:      none (no %s): ID token logins only\n", cfg.UsersFile)
		return nil, nil
	}
	if cfg.UsersDB.URL == "" {
		fmt.Fprintf(stdout, "  users:      %d in %s\n", users.Len(), cfg.UsersFile)
		return hashesOf(users), nil
	}
	db, err := cfg.UsersDB.open()
	if err != nil {
		return nil, err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*cfg.UsersDB.QueryTimeout)
	defer cancel()
	start := time.Now()
	if err := db.Check(ctx); err != nil {
		return nil, fmt.Errorf("user database %s: USERS_QUERY for a user that does not exist failed: %w", db.Target(), err)
	}
	fmt.Fprintf(stdout, "  users:      in PostgreSQL %s; USERS_QUERY ok (%s)\n", db.Target(), time.Since(start).Round(time.Millisecond))
	if !sample {
		return nil, nil
	}
	if cfg.UsersDB.SampleQuery == "" {
		fmt.Fprintln(stdout, "  formats:    unknown: set USERS_SAMPLE_QUERY (such as SELECT password FROM auth_user LIMIT 1000) to report them")
		return nil, nil
	}
	hashes, err := db.Sample(ctx, 100000)
	if err != nil {
		return nil, fmt.Errorf("user database %s: USERS_SAMPLE_QUERY failed: %w", db.Target(), err)
	}
	return hashes, nil
}

// reportFormats prints how many hashes there are of each format, and how
// many tokend cannot check (whose users cannot log in).
func reportFormats(stdout io.Writer, hashes []string, lim passhash.Limits) {
	if len(hashes) == 0 {
		return
	}
	count := map[string]int{}
	for _, h := range hashes {
		key := passhash.Prefix(h)
		if err := passhash.Check(h, lim); err != nil {
			key += " (cannot be checked: " + checkReason(err) + ")"
		}
		count[key]++
	}
	fmt.Fprintf(stdout, "  formats:    %d hashes read\n", len(hashes))
	for _, k := range slices.Sorted(maps.Keys(count)) {
		fmt.Fprintf(stdout, "    %6d  %s\n", count[k], k)
	}
}

func checkReason(err error) string {
	switch {
	case errors.Is(err, passhash.ErrTooCostly):
		return "above the limits"
	case errors.Is(err, passhash.ErrMalformed):
		return "malformed"
	}
	return "unsupported format"
}
