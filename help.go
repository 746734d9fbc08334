package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// errHelp reports that help was asked for and shown: not a failure.
var errHelp = errors.New("help shown")

// commandHelp is what `tokend help CMD`, `tokend CMD -h` and a usage error
// say about each command: its synopsis, and a few lines on what it does.
// The flag set lists the flags.
var commandHelp = map[string]struct{ synopsis, about string }{
	"serve": {"tokend [serve] [--dev] [--pprof] [--env-file FILE]",
		"Serve POST /token, GET /healthz, /readyz and /metrics. --dev: development mode,\nwith fake credentials, a demo user and the demo page at GET /. --pprof: Go's\nprofiler at /debug/pprof/ on METRICS_ADDR. SIGINT or SIGTERM stops it after the\nrequests in flight; SIGHUP reloads the users file."},
	"check": {"tokend check [--env-file FILE]",
		"Check the settings and the users file as start-up does: print a summary and\nany warnings, or exit 1 with every problem listed."},
	"mint": {"tokend mint --identity NAME [--grant G]... [--room ROOM] [--ttl SECONDS] [--voice-param NAME=VALUE]... [--env-file FILE]",
		"Print a token signed with the configured API key, checked as POST /token checks\na request. No users file is needed. With --zoom --session NAME, print a Zoom\nVideo SDK token instead (needs only the ZOOM_ settings)."},
	"decode": {"tokend decode [--env-file FILE] [TOKEN | -]",
		"Print a token's header and claims, its expiry, and whether its signature\nverifies with TWILIO_API_KEY_SECRET (exit 1 when not). Reads the token from\nstdin with - or no TOKEN; a pasted \"Bearer …\" or {\"token\": …} answer will do."},
	"user": {"tokend user add|del|list [--env-file FILE] [NAME]",
		"Edit the users file (USERS_FILE): add a user or change their password, remove\none, or list them. Passwords come from stdin, or are prompted for without echo."},
	"user add": {"tokend user add [--env-file FILE] NAME",
		"Add a user or change their password. The password is read from stdin, or\nprompted for twice without echo on a terminal; never from the command line."},
	"user del":  {"tokend user del [--env-file FILE] NAME", "Remove a user from the users file."},
	"user list": {"tokend user list [--env-file FILE]", "List the users in the users file."},
	"unlock": {"tokend unlock --user NAME | --address ADDR [--env-file FILE]",
		"Lift a login lock now, through the running tokend's METRICS_ADDR listener\n(POST /admin/unlock). A restart also clears every lock."},
	"session": {"tokend session list|revoke [--env-file FILE] [--admin URL] [USER|ID]",
		"List or end login sessions, asking the running tokend on METRICS_ADDR (or\n--admin URL), else REDIS_URL's Redis."},
	"session list": {"tokend session list [--env-file FILE] [--admin URL] [USER]",
		"List the live login sessions, or USER's. Session IDs are short and not secret:\nthe cookie is never shown."},
	"session revoke": {"tokend session revoke [--env-file FILE] [--admin URL] [--user] USER|ID",
		"End every session of USER, or the one session ID (--user: USER even if it\nlooks like an ID)."},
	"version": {"tokend version", "Print the version and the commit tokend was built from."},
}

// isHelpFlag reports whether arg asks for help, as -h and --help do.
func isHelpFlag(arg string) bool {
	return arg == "-h" || arg == "--help" || arg == "-help" || arg == "--h"
}

// wantsHelp reports whether args ask for help anywhere before a "--".
func wantsHelp(args []string) bool {
	if i := slices.Index(args, "--"); i >= 0 {
		args = args[:i]
	}
	return slices.ContainsFunc(args, isHelpFlag)
}

// commandName is the name a flag set was made with, without "tokend ".
func commandName(fs *flag.FlagSet) string {
	return strings.TrimPrefix(fs.Name(), "tokend ")
}

// shortUsage is what a usage error ends with: the synopsis and where the
// rest is, instead of the whole help.
func shortUsage(w io.Writer, cmd string) {
	if h, ok := commandHelp[cmd]; ok {
		fmt.Fprintf(w, "usage: %s\n", h.synopsis)
	}
	topic, _, _ := strings.Cut(cmd, " ")
	fmt.Fprintf(w, "see `%s`\n", strings.TrimSpace("tokend help "+topic))
}

// subcommand splits the args of a command made of subcommands (user,
// session) into the subcommand, one of choices, and the subcommand's args.
func subcommand(cmd, choices string, args []string, stderr io.Writer) (string, []string, error) {
	switch {
	case len(args) == 0:
		fmt.Fprintf(stderr, "tokend %s: name a subcommand: %s\n", cmd, choices)
		shortUsage(stderr, cmd)
		return "", nil, errUsage
	case isHelpFlag(args[0]):
		showHelp(newFlagSet(cmd, stderr))
		return "", nil, errHelp
	}
	if _, ok := commandHelp[cmd+" "+args[0]]; !ok {
		fmt.Fprintf(stderr, "tokend %s: unknown subcommand %q\n", cmd, args[0])
		shortUsage(stderr, cmd)
		return "", nil, errUsage
	}
	return args[0], args[1:], nil
}

// showHelp prints a command's help: synopsis, what it does, its flags.
func showHelp(fs *flag.FlagSet) {
	cmd := commandName(fs)
	w := fs.Output()
	h, ok := commandHelp[cmd]
	if !ok {
		fmt.Fprint(w, usage)
		return
	}
	fmt.Fprintf(w, "usage: %s\n\n%s\n", h.synopsis, h.about)
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprintln(w, "\nflags:")
		fs.PrintDefaults()
	}
}

// parseArgs parses a command's args with fs and checks that between lo
// and hi arguments remain (hi < 0: the command counts them itself). -h or --help anywhere shows the command's help
// (errHelp); a mistake shows what was wrong and the short usage (errUsage).
func parseArgs(fs *flag.FlagSet, args []string, lo, hi int) error {
	if wantsHelp(args) {
		showHelp(fs)
		return errHelp
	}
	// The flag package says what was wrong; it is caught to name the
	// command first, as the other usage errors do.
	out := fs.Output()
	var said strings.Builder
	fs.SetOutput(&said)
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.SetOutput(out)
	if err != nil {
		fmt.Fprintf(out, "%s: %s", fs.Name(), said.String())
		shortUsage(out, commandName(fs))
		return errUsage
	}
	if n := fs.NArg(); hi >= 0 && (n < lo || n > hi) {
		want := fmt.Sprintf("%d arguments", lo)
		switch {
		case lo != hi:
			want = fmt.Sprintf("%d to %d arguments", lo, hi)
		case lo == 0:
			want = "no arguments"
		case lo == 1:
			want = "1 argument"
		}
		fmt.Fprintf(fs.Output(), "%s: want %s, got %d\n", fs.Name(), want, n)
		shortUsage(fs.Output(), commandName(fs))
		return errUsage
	}
	return nil
}

// settingsUsage lists the settings of knownSettings for the help.
func settingsUsage() string {
	var b strings.Builder
	for _, line := range knownSettings {
		b.WriteString("  " + strings.Join(line, " ") + "\n")
	}
	return b.String()
}
