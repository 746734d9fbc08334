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
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal starts a graceful shutdown; a second one ends
	// tokend at once, for whoever will not wait for it.
	context.AfterFunc(ctx, stop)
	if err := run(ctx, os.Args, os.Getenv, time.Now, os.Stdin, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "tokend:", err)
		}
		os.Exit(1)
	}
}

// errUsage reports a command line that was wrong; the usage has been printed.
var errUsage = errors.New("usage")

const usage = `tokend trades a user's login for a short-lived Twilio access token.

Usage:
  tokend [serve] [--dev]      serve POST /token, GET /healthz, /readyz and /metrics
                              (--dev: development mode, fake credentials, the demo page
                              at GET /); SIGINT or SIGTERM stops it after the requests
                              in flight
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
  tokend version              print the version and the commit it was built from
  tokend help                 show this help

The commands that read settings take --env-file FILE (default .env). Real
environment variables win over the file. Settings (see .env.example and README.md):
  TWILIO_ACCOUNT_SID TWILIO_API_KEY_SID TWILIO_API_KEY_SECRET      required
  TWILIO_TWIML_APP_SID TWILIO_VOICE_INCOMING TWILIO_PUSH_CREDENTIAL_SID
  TWILIO_CHAT_PUSH_CREDENTIAL_SID
  TWILIO_CONVERSATIONS_SERVICE_SID TWILIO_CHAT_SERVICE_SID TWILIO_SYNC_SERVICE_SID
  TWILIO_REGION VIDEO_ROOM TOKEN_GRANTS TOKEN_TTL TOKEN_MAX_TTL
  USERS_FILE LISTEN_ADDR CORS_ALLOWED_ORIGINS DEMO_PAGE
  LOG_FORMAT LOG_LEVEL METRICS_ADDR SHUTDOWN_TIMEOUT TLS_CERT_FILE TLS_KEY_FILE
  TRUSTED_PROXIES LIMIT_USER_FAILURES LIMIT_USER_FAILURES_PER_HOUR
  LIMIT_ADDR_FAILURES LIMIT_ADDR_FAILURES_PER_HOUR LIMIT_ADDR_REQUESTS
  LIMIT_ADDR_REQUESTS_PER_SECOND LIMIT_MAX_KEYS AUTH_CACHE_TTL AUTH_CACHE_SIZE
  BCRYPT_SLOTS BCRYPT_MAX_WAIT USERS_RELOAD_INTERVAL
  ZOOM_VIDEO_SDK_KEY ZOOM_VIDEO_SDK_SECRET ZOOM_HOSTS ZOOM_SESSIONS ZOOM_SESSION
  ZOOM_TTL ZOOM_MAX_TTL                                            POST /zoom/token

While serving, SIGHUP (or a change to USERS_FILE) reloads the users.
`

// run is tokend's whole program; main only connects it to the process, so
// tests call it exactly as the shell does, with their own clock.
func run(ctx context.Context, args []string, getenv func(string) string, now func() time.Time, stdin io.Reader, stdout, stderr io.Writer) error {
	args = args[1:]
	cmd := "serve"
	if len(args) > 0 && (len(args[0]) == 0 || args[0][0] != '-') {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		fs := newFlagSet("serve", stderr)
		envFile := envFileFlag(fs)
		dev := fs.Bool("dev", false, "development mode: fake credentials, a demo user, loopback only")
		if err := parseFlags(fs, args, 0); err != nil {
			return err
		}
		lookup, found, err := envLookup(*envFile, getenv)
		if err != nil {
			return err
		}
		return serve(ctx, lookup, serveOptions{dev: *dev, envFile: *envFile, envFound: found, now: now}, stdout, stderr)
	case "check":
		return runCheck(args, getenv, stdout, stderr)
	case "mint":
		return runMint(args, getenv, now, stdout, stderr)
	case "decode":
		return runDecode(args, getenv, now, stdin, stdout, stderr)
	case "user":
		return runUser(args, getenv, stdin, stdout, stderr)
	case "version":
		return runVersion(args, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "tokend: unknown command %q\n\n%s", cmd, usage)
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

// parseFlags parses args and checks that exactly nargs arguments remain.
func parseFlags(fs *flag.FlagSet, args []string, nargs int) error {
	if err := fs.Parse(args); err != nil {
		return errUsage // the flag package has said what was wrong
	}
	if fs.NArg() != nargs {
		fmt.Fprintf(fs.Output(), "%s: want %d argument(s), got %d\n\n%s", fs.Name(), nargs, fs.NArg(), usage)
		return errUsage
	}
	return nil
}
