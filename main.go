// Command tokend trades a user's login for a short-lived Twilio access token.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal starts a graceful shutdown; a second one ends
	// tokend at once, for whoever will not wait for it.
	context.AfterFunc(ctx, stop)
	if err := run(withEnviron(ctx, os.Environ()), os.Args, os.Getenv, time.Now, os.Stdin, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "tokend:", err)
		}
		os.Exit(1)
	}
}

// errUsage reports a command line that was wrong; the usage has been printed.
var errUsage = errors.New("usage")

// usage is the whole help: `tokend help`, `tokend -h`.
var usage = `tokend trades a user's login for a short-lived Twilio access token.

Usage:
  tokend [serve] [--dev] [--pprof]
                              serve POST /token, GET /healthz, /readyz and /metrics
                              (--dev: development mode, fake credentials, the demo page
                              at GET /); SIGINT or SIGTERM stops it after the requests
                              in flight; --pprof: Go's profiler on METRICS_ADDR
  tokend check                check the settings and the users file as start-up does;
                              exit 1 with every problem listed
  tokend mint --identity NAME [--grant G]... [--room ROOM] [--ttl SECONDS]
              [--voice-param NAME=VALUE]...
                              print a token signed with the configured API key, checked
                              as POST /token checks a request; --grant repeats or takes
                              a comma list (default TOKEN_GRANTS); no users file needed
  tokend mint --zoom --session NAME [--role host] [--ttl SECONDS] [--identity NAME]
              [--session-key KEY] [--geo-regions US,DE]
                              print a Zoom Video SDK token (needs only the ZOOM_ settings)
  tokend decode [TOKEN | -]   print a token's header and claims, its expiry, and whether
                              its signature verifies with TWILIO_API_KEY_SECRET, or with
                              ZOOM_VIDEO_SDK_SECRET for a Zoom token (exit 1 when not);
                              reads the token from stdin with - or no TOKEN
  tokend user add NAME        add a user or change their password (password from stdin,
                              or prompted without echo on a terminal)
  tokend user del NAME        remove a user
  tokend user list            list the users
  tokend unlock --user NAME | --address ADDR
                              lift a login lock now, through the running tokend's
                              METRICS_ADDR listener (a restart also clears every lock)
  tokend session list [USER]  list the live login sessions (of USER), asking the running
                              tokend on METRICS_ADDR (or --admin URL), else REDIS_URL's Redis
  tokend session revoke USER|ID
                              end every session of USER, or the one session ID
                              (--user: USER even if it looks like an ID)
  tokend version              print the version and the commit it was built from
  tokend help [COMMAND]       show this help, or one command's

The commands that read settings take --env-file FILE (default .env). Real
environment variables win over the file. Settings (see .env.example and README.md):
` + settingsUsage() + `
While serving, SIGHUP (or a change to USERS_FILE) reloads the users.
"tokend help COMMAND" or "tokend COMMAND -h" says more about one command.
`

// run is tokend's whole program; main only connects it to the process, so
// tests call it exactly as the shell does, with their own clock.
func run(ctx context.Context, args []string, getenv func(string) string, now func() time.Time, stdin io.Reader, stdout, stderr io.Writer) error {
	args = args[1:]
	switch {
	case len(args) == 0:
	case isHelpFlag(args[0]), len(args) == 1 && args[0] == "help":
		fmt.Fprint(stdout, usage)
		return nil
	case args[0] == "help":
		args = append(slices.Clone(args[1:]), "-h") // tokend help CMD is tokend CMD -h
	}
	cmd := "serve"
	if len(args) > 0 && (len(args[0]) == 0 || args[0][0] != '-') {
		cmd, args = args[0], args[1:]
	}
	if _, known := commandHelp[cmd]; known && wantsHelp(args) {
		// The command shows its help through its own flag set, and
		// does nothing else; help is asked for, so it goes to stdout.
		stderr = stdout
		if (cmd == "user" || cmd == "session") && len(args) > 0 && !isHelpFlag(args[0]) {
			args = []string{args[0], "-h"}
		} else {
			args = []string{"-h"}
		}
	}
	err := dispatch(ctx, cmd, args, getenv, now, stdin, stdout, stderr)
	if errors.Is(err, errHelp) {
		return nil
	}
	return err
}

// dispatch runs the command cmd with its args.
func dispatch(ctx context.Context, cmd string, args []string, getenv func(string) string, now func() time.Time, stdin io.Reader, stdout, stderr io.Writer) error {
	switch cmd {
	case "serve":
		fs := newFlagSet("serve", stderr)
		envFile := envFileFlag(fs)
		dev := fs.Bool("dev", false, "development mode: fake credentials, a demo user, loopback only")
		withPprof := fs.Bool("pprof", false, "serve Go's profiler at /debug/pprof/ on METRICS_ADDR (for measuring)")
		if err := parseFlags(fs, args, 0); err != nil {
			return err
		}
		lookup, found, err := envLookup(*envFile, getenv)
		if err != nil {
			return err
		}
		return serve(ctx, lookup, serveOptions{dev: *dev, pprof: *withPprof, envFile: *envFile, envFound: found, environ: environFrom(ctx), now: now}, stdout, stderr)
	case "check":
		return runCheck(args, getenv, environFrom(ctx), stdout, stderr)
	case "mint":
		return runMint(args, getenv, now, stdout, stderr)
	case "decode":
		return runDecode(args, getenv, now, stdin, stdout, stderr)
	case "user":
		return runUser(args, getenv, stdin, stdout, stderr)
	case "unlock":
		return runUnlock(ctx, args, getenv, stdout, stderr)
	case "session":
		return runSession(args, getenv, now, stdout, stderr)
	case "version":
		return runVersion(args, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "tokend: unknown command %q\n", cmd)
		shortUsage(stderr, "")
		return errUsage
	}
}

// envFileFlag adds --env-file, which every command that reads settings
// takes, to fs.
func envFileFlag(fs *flag.FlagSet) *string {
	return fs.String("env-file", ".env", "read settings from `FILE`")
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("tokend "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args and checks that exactly nargs arguments remain;
// see parseArgs.
func parseFlags(fs *flag.FlagSet, args []string, nargs int) error {
	return parseArgs(fs, args, nargs, nargs)
}
