package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/term"
)

// runUser is `tokend user add|del|list`: it edits the users file named by
// USERS_FILE. Passwords never come from the command line, where they would
// land in shell history and the process list.
func runUser(args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	sub, args, err := subcommand("user", "add, del or list", args, stderr)
	if err != nil {
		return err
	}
	fs := newFlagSet("user "+sub, stderr)
	envFile := envFileFlag(fs)
	nargs := 1
	if sub == "list" {
		nargs = 0
	}
	if err := parseFlags(fs, args, nargs); err != nil {
		return err
	}
	lookup, _, err := envLookup(*envFile, getenv)
	if err != nil {
		return err
	}
	path := usersFile(lookup)
	switch sub {
	case "add":
		name := fs.Arg(0)
		if problem := checkUserName(name); problem != "" {
			return errors.New(problem)
		}
		password, err := readNewPassword(stdin, stderr)
		if err != nil {
			return err
		}
		hash, err := bcrypt.GenerateFromPassword([]byte(password), userCost)
		if err != nil {
			return fmt.Errorf("hash password: %w", err)
		}
		if err := editUsersFile(path, setUser(name, hash)); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "user %q saved in %s\n", name, path)
		if w := voiceNameWarning(name, lookup); w != "" {
			fmt.Fprintln(stderr, w)
		}
		return nil
	case "del":
		name := fs.Arg(0)
		var left int
		err := editUsersFile(path, func(lines []string) ([]string, error) {
			lines, err := deleteUser(name)(lines)
			for _, l := range lines {
				if lineUser(l) != "" {
					left++
				}
			}
			return lines, err
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "user %q removed from %s\n", name, path)
		if left == 0 {
			fmt.Fprintf(stdout, "no users are left: a running tokend now refuses every login and /readyz answers 503; it will not start again until a user is added with `tokend user add NAME`\n")
		}
		return nil
	case "list":
		users, err := loadUsers(path)
		if err != nil {
			return err
		}
		for _, name := range users.Names() {
			fmt.Fprintln(stdout, printableName(name))
		}
		return nil
	default: // checked above
		return fmt.Errorf("tokend user: unknown subcommand %q", sub)
	}
}

// readNewPassword reads a password: prompted twice without echo when stdin
// is a terminal, else the first line of stdin.
func readNewPassword(stdin io.Reader, stderr io.Writer) (string, error) {
	var password string
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "Password: ")
		first, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		fmt.Fprint(stderr, "Again: ")
		second, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if string(first) != string(second) {
			return "", errors.New("the passwords do not match")
		}
		password = string(first)
	} else {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read password from stdin: %w", err)
		}
		password = strings.TrimRight(line, "\r\n")
	}
	switch {
	case password == "":
		return "", errors.New("the password is empty")
	case len(password) > maxPasswordBytes:
		return "", fmt.Errorf("the password is %d bytes; bcrypt checks at most %d, so it is refused rather than cut short", len(password), maxPasswordBytes)
	}
	return password, nil
}

// voiceNameWarning warns when name cannot be a Twilio Voice identity and
// the settings enable the voice grant (or cannot tell, being incomplete):
// the name logs in, but every token with the voice grant is refused.
func voiceNameWarning(name string, lookup func(string) string) string {
	if isVoiceIdentity(name) {
		return ""
	}
	where := "if tokend serves the voice grant"
	if cfg, err := loadConfig(lookup); err == nil {
		if !cfg.EnabledGrants.has(grantVoice) {
			return ""
		}
		where = "which these settings enable"
	}
	var suggestion strings.Builder
	for _, r := range name {
		if r < utf8.RuneSelf && isVoiceIdentity(string(r)) {
			suggestion.WriteRune(r)
		} else if !strings.HasSuffix(suggestion.String(), "_") {
			suggestion.WriteByte('_')
		}
	}
	return fmt.Sprintf("warning: Twilio Voice allows only letters, digits and _ in an identity, so %q will get no token with the voice grant (%s); a name such as %q would",
		name, where, suggestion.String())
}
