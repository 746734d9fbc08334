package main

import (
	"fmt"
	"io"
	"time"
)

// runCheck is `tokend check`: start-up's checks of the settings and the
// users file, without serving, for deploy pipelines. It fails with
// start-up's own error, word for word, since both come from loadAll.
func runCheck(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check", stderr)
	envFile := envFileFlag(fs)
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	lookup, found, err := envLookup(*envFile, getenv)
	if err != nil {
		return err
	}
	cfg, users, err := loadAll(lookup)
	if err != nil {
		return withEnvFileHint(err, *envFile, found)
	}
	source := "settings from " + *envFile + " and the environment"
	if !found {
		source = "settings from the environment; no " + *envFile + " file"
	}
	fmt.Fprintf(stdout, "configuration ok (%s)\n", source)
	fmt.Fprintf(stdout, "  account:    %s, API key %s\n", cfg.AccountSID, cfg.APIKeySID)
	fmt.Fprintf(stdout, "  users:      %d in %s\n", users.Len(), cfg.UsersFile)
	fmt.Fprintf(stdout, "  grants:     %s enabled; %s by default\n", cfg.EnabledGrants, cfg.DefaultGrants)
	fmt.Fprintf(stdout, "  token ttl:  %ds by default, at most %ds\n", cfg.TTL/time.Second, cfg.MaxTTL/time.Second)
	fmt.Fprintf(stdout, "  listen:     %s\n", cfg.ListenAddr)
	if z := cfg.Zoom; z != nil {
		fmt.Fprintf(stdout, "  zoom:       SDK key %s, %d host(s), %s\n", z.Key, len(z.Hosts), z.sessionsSummary())
		for _, w := range z.warnings() {
			fmt.Fprintf(stdout, "  warning:    %s\n", w)
		}
	}
	return nil
}
