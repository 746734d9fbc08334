package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// usersTestHash returns a cheap bcrypt hash ($2a$, cost 4) of password.
func usersTestHash(t testing.TB, password string) []byte {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// refusedHash is parseUsers' message for a line whose hash is not bcrypt.
func refusedHash(file string, line int, user, kind string) string {
	return fmt.Sprintf("%s:%d: user %q: unsupported hash type %s; only bcrypt is accepted: "+
		"recreate it with `tokend user add` or `htpasswd -B`", file, line, user, kind)
}

// requireHtpasswd returns the path of Apache's htpasswd. Without it the
// interop tests skip locally but fail in CI, where they must run.
func requireHtpasswd(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("htpasswd")
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("htpasswd is not on PATH: install the Debian package apache2-utils; CI must run the htpasswd interop tests")
	}
	t.Skip("htpasswd is not on PATH: install the Debian package apache2-utils to run the htpasswd interop tests")
	return ""
}

// runHtpasswd runs htpasswd with stdin and returns its stdout and exit code.
func runHtpasswd(t *testing.T, bin, stdin string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return stdout.String(), exit.ExitCode()
	case err != nil:
		t.Fatalf("htpasswd %q: %v\n%s", args, err, stderr.String())
	}
	return stdout.String(), 0
}

func TestParseUsers(t *testing.T) {
	const file = "users.htpasswd"
	ha := string(usersTestHash(t, "alice-pw"))
	hb := string(usersTestHash(t, "bob-pw"))
	hy := "$2y$" + ha[4:] // as htpasswd -B writes it
	h2b := "$2b$" + hb[4:]

	tests := []struct {
		name    string
		in      string
		want    map[string]string // user -> hash
		wantErr string
	}{
		{
			name: "bcrypt variants",
			in:   "alice:" + hy + "\nbob:" + h2b + "\ncarol:" + ha + "\n",
			want: map[string]string{"alice": hy, "bob": h2b, "carol": ha},
		},
		{
			name: "comments and blank lines",
			in:   "# tokend users\n\n   \n\t# indented comment\nalice:" + ha + "\n\n#bob:" + hb + "\n",
			want: map[string]string{"alice": ha},
		},
		{
			name: "CRLF line ends",
			in:   "# made on Windows\r\nalice:" + ha + "\r\n\r\nbob:" + hb + "\r\n",
			want: map[string]string{"alice": ha, "bob": hb},
		},
		{
			name: "no final newline",
			in:   "alice:" + ha,
			want: map[string]string{"alice": ha},
		},
		{
			name: "names with spaces and odd characters",
			in:   "bob smith:" + hb + "\nalice@example.com:" + ha + "\n",
			want: map[string]string{"bob smith": hb, "alice@example.com": ha},
		},
		{
			name: "empty",
			in:   "",
			want: map[string]string{},
		},
		{
			name:    "Apache MD5",
			in:      "alice:" + ha + "\nbob:$apr1$deadbeef$AAAAAAAAAAAAAAAAAAAAAA\n",
			wantErr: refusedHash(file, 2, "bob", "Apache MD5 ($apr1$)"),
		},
		{
			name:    "SHA-1",
			in:      "alice:{SHA}AAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
			wantErr: refusedHash(file, 1, "alice", "SHA-1 ({SHA})"),
		},
		{
			name:    "DES crypt",
			in:      "# old\nalice:deAAAAAAAAAAA\n",
			wantErr: refusedHash(file, 2, "alice", "DES crypt"),
		},
		{
			name:    "SHA-256 crypt",
			in:      "alice:$5$deadbeef$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
			wantErr: refusedHash(file, 1, "alice", "SHA-crypt"),
		},
		{
			name:    "SHA-512 crypt",
			in:      "alice:$6$deadbeef$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
			wantErr: refusedHash(file, 1, "alice", "SHA-crypt"),
		},
		{
			name:    "MD5 crypt",
			in:      "alice:$1$deadbeef$AAAAAAAAAAAAAAAAAAAAAA\n",
			wantErr: refusedHash(file, 1, "alice", "an unknown $ scheme"),
		},
		{
			name:    "unknown bcrypt minor",
			in:      "alice:$2x$" + ha[4:] + "\n",
			wantErr: refusedHash(file, 1, "alice", "an unknown $ scheme"),
		},
		{
			name:    "plain text",
			in:      "alice:alice-pw\n",
			wantErr: refusedHash(file, 1, "alice", "plain text or unknown"),
		},
		{
			name:    "empty hash",
			in:      "alice:\n",
			wantErr: refusedHash(file, 1, "alice", "plain text or unknown"),
		},
		{
			name:    "bcrypt cut short",
			in:      "alice:" + ha[:59] + "\n",
			wantErr: file + `:1: user "alice": malformed bcrypt hash`,
		},
		{
			name:    "bcrypt with trailing space",
			in:      "alice:" + ha + " \n",
			wantErr: file + `:1: user "alice": malformed bcrypt hash`,
		},
		{
			name:    "bcrypt cost out of range",
			in:      "\nalice:$2y$32$" + ha[7:] + "\n",
			wantErr: file + `:2: user "alice": malformed bcrypt hash`,
		},
		{
			name: "bcrypt cost 17, the highest accepted",
			in:   "alice:$2y$17$" + ha[7:] + "\n",
			want: map[string]string{"alice": "$2y$17$" + ha[7:]},
		},
		{
			name: "bcrypt cost 18 refused",
			in:   "alice:$2y$18$" + ha[7:] + "\n",
			wantErr: file + `:1: user "alice": bcrypt cost 18 is above tokend's maximum of 17 (each step doubles the time of every login: cost 18 would take about 12.8s); ` +
				"rehash it with `tokend user add`, which uses cost 12",
		},
		{
			name: "bcrypt cost 31 refused",
			in:   "alice:$2b$31$" + ha[7:] + "\n",
			wantErr: file + `:1: user "alice": bcrypt cost 31 is above tokend's maximum of 17 (each step doubles the time of every login: cost 31 would take about 29 hours); ` +
				"rehash it with `tokend user add`, which uses cost 12",
		},
		{
			name:    "bcrypt cost not a number",
			in:      "alice:$2y$xx$" + ha[7:] + "\n",
			wantErr: file + `:1: user "alice": malformed bcrypt hash`,
		},
		{
			name: "letters, marks and symbols of any script",
			in:   "zoë:" + ha + "\nJosé_Müller:" + hb + "\n山田:" + ha + "\n",
			want: map[string]string{"zoë": ha, "José_Müller": hb, "山田": ha},
		},
		{
			name:    "byte-order mark",
			in:      "\uFEFFalice:" + ha + "\n",
			wantErr: file + ":1: the file starts with a UTF-8 byte-order mark (as Windows Notepad saves): save it as UTF-8 without a BOM, or remove the first 3 bytes",
		},
		{
			name:    "byte-order mark before a comment",
			in:      "\uFEFF# users\nalice:" + ha + "\n",
			wantErr: file + ":1: the file starts with a UTF-8 byte-order mark (as Windows Notepad saves): save it as UTF-8 without a BOM, or remove the first 3 bytes",
		},
		{
			name:    "name not UTF-8",
			in:      "alice:" + ha + "\nbo\xffb:" + hb + "\n",
			wantErr: file + `:2: user "bo\xffb": is not valid UTF-8`,
		},
		{
			name:    "invisible character in a name",
			in:      "alice\u200b:" + ha + "\n",
			wantErr: file + `:1: user "alice\u200b": contains the invisible character U+200B; a name must read as it is`,
		},
		{
			name:    "terminal escape in a name",
			in:      "\x1b]0;pwned\a:" + ha + "\n",
			wantErr: file + `:1: user "\x1b]0;pwned\a": contains the control character U+001B; a name must be printable`,
		},
		{
			name:    "bcrypt with characters outside its alphabet",
			in:      "alice:" + ha[:29] + "!" + ha[30:] + "\n",
			wantErr: file + `:1: user "alice": malformed bcrypt hash: character 30 is not one bcrypt uses (./A-Za-z0-9)`,
		},
		{
			name:    "bcrypt with a non-ASCII character",
			in:      "alice:" + ha[:58] + "é" + "\n",
			wantErr: file + `:1: user "alice": malformed bcrypt hash: character 59 is not one bcrypt uses (./A-Za-z0-9)`,
		},
		{
			name:    "duplicate user",
			in:      "alice:" + ha + "\nbob:" + hb + "\nalice:" + hb + "\n",
			wantErr: file + `:3: user "alice" appears twice`,
		},
		{
			name:    "missing colon",
			in:      "# users\nalice " + ha + "\n",
			wantErr: file + ":2: not a user line: expected NAME:BCRYPT-HASH",
		},
		{
			name:    "empty name",
			in:      ":" + ha + "\n",
			wantErr: file + ":1: not a user line: expected NAME:BCRYPT-HASH",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := parseUsers(strings.NewReader(tt.in), file)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("err = %v\nwant %s", err, tt.wantErr)
				}
				if u != nil {
					t.Errorf("users = %v, want nil", u.Names())
				}
				return
			}
			if err != nil {
				t.Fatalf("parseUsers: %v", err)
			}
			got := map[string]string{}
			for _, name := range u.Names() {
				h, _ := u.Hash(name)
				got[name] = string(h)
			}
			if len(got) != len(tt.want) || u.Len() != len(tt.want) {
				t.Errorf("users = %q, want %q", got, tt.want)
			}
			for name, want := range tt.want {
				if got[name] != want {
					t.Errorf("hash of %q = %q, want %q", name, got[name], want)
				}
			}
			if !slices.IsSorted(u.Names()) {
				t.Errorf("Names() = %q, not sorted", u.Names())
			}
		})
	}
}

// TestUsersCheckPassword checks every bcrypt variant parseUsers accepts.
func TestUsersCheckPassword(t *testing.T) {
	h := string(usersTestHash(t, "alice-pw"))
	for _, prefix := range []string{"$2a$", "$2b$", "$2y$"} {
		hash := []byte(prefix + h[4:])
		tests := []struct {
			password string
			want     bool
		}{
			{"alice-pw", true},
			{"alice-pw ", false},
			{"Alice-pw", false},
			{"", false},
		}
		for _, tt := range tests {
			if got := checkPassword(hash, tt.password); got != tt.want {
				t.Errorf("checkPassword(%s..., %q) = %v, want %v", prefix, tt.password, got, tt.want)
			}
		}
	}
}

// TestHtpasswdFileLoads reads a file written by Apache's own `htpasswd -B`.
func TestHtpasswdFileLoads(t *testing.T) {
	bin := requireHtpasswd(t)
	path := filepath.Join(t.TempDir(), "users.htpasswd")
	if _, code := runHtpasswd(t, bin, "alice-pw\n", "-B", "-C", "5", "-c", "-i", path, "alice"); code != 0 {
		t.Fatalf("htpasswd -c alice: exit %d", code)
	}
	if _, code := runHtpasswd(t, bin, "bob pw with spaces\n", "-B", "-C", "5", "-i", path, "bob"); code != 0 {
		t.Fatalf("htpasswd bob: exit %d", code)
	}
	users, err := loadUsers(path)
	if err != nil {
		t.Fatalf("loadUsers: %v", err)
	}
	if names := users.Names(); !slices.Equal(names, []string{"alice", "bob"}) {
		t.Fatalf("Names = %q, want [alice bob]", names)
	}
	tests := []struct {
		user, password string
		want           bool
	}{
		{"alice", "alice-pw", true},
		{"alice", "alice-pw\n", false},
		{"alice", "bob pw with spaces", false},
		{"bob", "bob pw with spaces", true},
		{"bob", "bob", false},
		{"bob", "", false},
	}
	for _, tt := range tests {
		hash, _ := users.Hash(tt.user)
		if !strings.HasPrefix(string(hash), "$2y$05$") {
			t.Errorf("hash of %s = %q, want $2y$05$...", tt.user, hash)
		}
		if got := checkPassword(hash, tt.password); got != tt.want {
			t.Errorf("checkPassword(%s, %q) = %v, want %v", tt.user, tt.password, got, tt.want)
		}
	}
}

// TestHtpasswdFormatsRefused feeds every non-bcrypt format htpasswd writes
// to parseUsers: each is refused, and named.
func TestHtpasswdFormatsRefused(t *testing.T) {
	bin := requireHtpasswd(t)
	tests := []struct {
		flag string
		kind string // "" means accepted
	}{
		{"-B", ""},
		{"-m", "Apache MD5 ($apr1$)"},
		{"-s", "SHA-1 ({SHA})"},
		{"-2", "SHA-crypt"},
		{"-5", "SHA-crypt"},
		{"-d", "DES crypt"},
		{"-p", "plain text or unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.flag, func(t *testing.T) {
			args := []string{"-n", "-i", tt.flag}
			if tt.flag == "-B" {
				args = append(args, "-C", "4")
			}
			out, code := runHtpasswd(t, bin, "carol-pw\n", append(args, "carol")...)
			if code != 0 {
				t.Fatalf("htpasswd %s: exit %d", tt.flag, code)
			}
			_, err := parseUsers(strings.NewReader(out), "htpasswd-out")
			want := ""
			if tt.kind != "" {
				want = refusedHash("htpasswd-out", 1, "carol", tt.kind)
			}
			if got := errText(err); got != want {
				t.Errorf("parseUsers(%q) err = %q\nwant %q", out, got, want)
			}
		})
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// userTestEnv is the getenv of `tokend user` tests: USERS_FILE only.
func userTestEnv(usersFile string) func(string) string {
	return func(k string) string {
		if k == "USERS_FILE" {
			return usersFile
		}
		return ""
	}
}

// TestUserAddNewFile: `tokend user add` creates a private users file that
// Apache's htpasswd can verify. The password is 72 bytes, the most allowed.
// One bcrypt hash at userCost: slow under -race, so it runs in parallel.
func TestUserAddNewFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "users.htpasswd")
	envFile := filepath.Join(dir, "missing.env")
	password := strings.Repeat("pw-", 24)
	if len(password) != maxPasswordBytes {
		t.Fatalf("password is %d bytes", len(password))
	}
	var stdout, stderr bytes.Buffer
	err := runUser([]string{"add", "--env-file", envFile, "alice"}, userTestEnv(path),
		strings.NewReader(password+"\n"), &stdout, &stderr)
	if err != nil {
		t.Fatalf("user add: %v", err)
	}
	if want := `user "alice" saved in ` + path + "\n"; stdout.String() != want {
		t.Errorf("stdout = %q, want %q", stdout.String(), want)
	}
	if stderr.String() != "" {
		t.Errorf("stderr = %q, want nothing", stderr.String())
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode(); mode != 0o600 {
		t.Errorf("mode = %v, want -rw-------", mode)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"users.htpasswd", "users.htpasswd.lock"}; !slices.Equal(names, want) {
		t.Errorf("dir holds %q, want %q (no temporary left behind)", names, want)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	name, hash, _ := strings.Cut(strings.TrimSuffix(string(data), "\n"), ":")
	if name != "alice" || len(hash) != 60 || strings.Count(string(data), "\n") != 1 {
		t.Errorf("file = %q, want one line alice:<60-character bcrypt hash>", data)
	}
	if cost, err := bcrypt.Cost([]byte(hash)); err != nil || cost != userCost {
		t.Errorf("cost = %d, %v; want %d", cost, err, userCost)
	}

	t.Run("htpasswd -v", func(t *testing.T) {
		bin := requireHtpasswd(t)
		tests := []struct {
			password string
			wantOK   bool
		}{
			{password, true},
			{password[:71], false},
			{"alice-pw", false},
		}
		for _, tt := range tests {
			_, code := runHtpasswd(t, bin, tt.password+"\n", "-v", "-i", path, "alice")
			if ok := code == 0; ok != tt.wantOK {
				t.Errorf("htpasswd -v with %d-byte password: exit %d, want success %v", len(tt.password), code, tt.wantOK)
			}
		}
	})
}

// TestUserAddReplaces: adding an existing user changes only that user's
// line; comments, blank lines, other users and the file mode stay as they
// were. One bcrypt hash at userCost, so it runs in parallel.
func TestUserAddReplaces(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "users.htpasswd")
	oldAlice := string(usersTestHash(t, "old-alice-pw"))
	lines := []string{
		"# tokend users",
		"bob:" + string(usersTestHash(t, "bob-pw")),
		"",
		"  # alice is the admin",
		"alice:" + oldAlice,
		"carol:$2y$04$" + oldAlice[7:],
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil { // whatever the umask
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	err := runUser([]string{"add", "--env-file", filepath.Join(dir, "missing.env"), "alice"}, userTestEnv(path),
		strings.NewReader("new-alice-pw\r\n"), &stdout, &stderr)
	if err != nil {
		t.Fatalf("user add: %v", err)
	}
	if want := `user "alice" saved in ` + path + "\n"; stdout.String() != want {
		t.Errorf("stdout = %q, want %q", stdout.String(), want)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(got) != len(lines) {
		t.Fatalf("file has %d lines, want %d:\n%s", len(got), len(lines), data)
	}
	for i := range lines {
		if i == 4 {
			continue
		}
		if got[i] != lines[i] {
			t.Errorf("line %d = %q, want it unchanged: %q", i+1, got[i], lines[i])
		}
	}
	newAlice, ok := strings.CutPrefix(got[4], "alice:")
	if !ok || newAlice == oldAlice {
		t.Errorf("line 5 = %q, want alice with a new hash", got[4])
	}
	if cost, err := bcrypt.Cost([]byte(newAlice)); err != nil || cost != userCost {
		t.Errorf("cost = %d, %v; want %d", cost, err, userCost)
	}
	if fi, err := os.Stat(path); err != nil {
		t.Error(err)
	} else if fi.Mode() != 0o640 {
		t.Errorf("mode = %v, want -rw-r----- as before", fi.Mode())
	}

	t.Run("htpasswd -v", func(t *testing.T) {
		bin := requireHtpasswd(t)
		tests := []struct {
			user, password string
			wantOK         bool
		}{
			{"alice", "new-alice-pw", true}, // so the CR was not hashed
			{"alice", "old-alice-pw", false},
			{"bob", "bob-pw", true},
		}
		for _, tt := range tests {
			_, code := runHtpasswd(t, bin, tt.password+"\n", "-v", "-i", path, tt.user)
			if ok := code == 0; ok != tt.wantOK {
				t.Errorf("htpasswd -v %s %q: exit %d, want success %v", tt.user, tt.password, code, tt.wantOK)
			}
		}
	})
}

// TestUserAddRefuses covers every refusal that comes before hashing: none
// may create the users file.
func TestUserAddRefuses(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "users.htpasswd")
	env := filepath.Join(dir, "missing.env")
	add := func(name string) []string { return []string{"add", "--env-file", env, name} }

	tests := []struct {
		name    string
		args    []string
		stdin   string
		wantErr string // "usage" means errUsage
	}{
		{"password of 73 bytes", add("alice"), strings.Repeat("x", 73) + "\n", "the password is 73 bytes; bcrypt checks at most 72, so it is refused rather than cut short"},
		{"password of 73 bytes with CRLF", add("alice"), strings.Repeat("x", 73) + "\r\n", "the password is 73 bytes; bcrypt checks at most 72, so it is refused rather than cut short"},
		{"password counted in bytes", add("alice"), strings.Repeat("é", 37), "the password is 74 bytes; bcrypt checks at most 72, so it is refused rather than cut short"},
		{"no password", add("alice"), "", "the password is empty"},
		{"empty line", add("alice"), "\n", "the password is empty"},
		{"empty CRLF line", add("alice"), "\r\n", "the password is empty"},
		{"empty name", add(""), "pw\n", "the user name is empty"},
		{"colon", add("al:ice"), "pw\n", "a user name cannot contain ':' or a line break"},
		{"newline", add("al\nice"), "pw\n", "a user name cannot contain ':' or a line break"},
		{"carriage return", add("alice\r"), "pw\n", "a user name cannot contain ':' or a line break"},
		{"hash", add("#alice"), "pw\n", "a user name cannot start with '#'"},
		{"leading space", add(" alice"), "pw\n", "a user name cannot start or end with a space"},
		{"trailing tab", add("alice\t"), "pw\n", "a user name cannot start or end with a space"},
		{"too long", add(strings.Repeat("é", 257)), "pw\n", "a user name can have at most 256 characters"},
		{"not UTF-8", add("al\xffice"), "pw\n", "the user name is not valid UTF-8"},
		{"zero width space", add("alice\u200b"), "pw\n", "the user name contains the invisible character U+200B; a name must read as it is"},
		{"right-to-left override", add("\u202eecila"), "pw\n", "the user name contains the invisible character U+202E; a name must read as it is"},
		{"Hangul filler", add("al\u3164ice"), "pw\n", "the user name contains the invisible character U+3164; a name must read as it is"},
		{"no-break space", add("bob\u00a0smith"), "pw\n", "the user name contains U+00A0, a space other than ' ' that looks like one"},
		{"ideographic space", add("bob\u3000smith"), "pw\n", "the user name contains U+3000, a space other than ' ' that looks like one"},
		{"terminal escape", add("\x1b[31malice"), "pw\n", "the user name contains the control character U+001B; a name must be printable"},
		{"C1 control", add("alice\u009b"), "pw\n", "the user name contains the control character U+009B; a name must be printable"},
		{"private use", add("alice\ue000"), "pw\n", "the user name contains U+E000, a character that is unassigned or private: a name must be printable"},
		{"no name", []string{"add", "--env-file", env}, "pw\n", "usage"},
		{"two names", []string{"add", "--env-file", env, "alice", "bob"}, "pw\n", "usage"},
		{"unknown flag", []string{"add", "--cost", "4", "alice"}, "pw\n", "usage"},
		{"no subcommand", nil, "pw\n", "usage"},
		{"unknown subcommand", []string{"rename", "--env-file", env, "alice"}, "pw\n", "usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := runUser(tt.args, userTestEnv(path), strings.NewReader(tt.stdin), &stdout, &stderr)
			switch {
			case tt.wantErr == "usage":
				if !errors.Is(err, errUsage) {
					t.Errorf("err = %v, want errUsage", err)
				}
				if stderr.Len() == 0 {
					t.Error("stderr is empty, want the usage")
				}
			case err == nil || err.Error() != tt.wantErr:
				t.Errorf("err = %v\nwant %s", err, tt.wantErr)
			}
			if stdout.String() != "" {
				t.Errorf("stdout = %q, want nothing", stdout.String())
			}
		})
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("users file: %v, want it never created", err)
	}
}

func TestUserDel(t *testing.T) {
	ha := "alice:" + string(usersTestHash(t, "alice-pw"))
	hb := "bob:" + string(usersTestHash(t, "bob-pw"))
	apr1 := "mallory:$apr1$deadbeef$AAAAAAAAAAAAAAAAAAAAAA"
	base := "# tokend users\n" + ha + "\n\n" + hb + "\n# end\n"

	tests := []struct {
		name     string
		file     string // "" means no file
		user     string
		want     string // the file afterwards
		wantErr  string // "" means success; %s is the path
		wantMode os.FileMode
	}{
		{name: "last user", file: base, user: "bob", want: "# tokend users\n" + ha + "\n\n# end\n"},
		{name: "first user", file: base, user: "alice", want: "# tokend users\n\n" + hb + "\n# end\n"},
		{name: "CRLF file", file: "# users\r\n" + ha + "\r\n" + hb + "\r\n", user: "alice", want: "# users\r\n" + hb + "\r\n"},
		{name: "unknown user", file: base, user: "carol", want: base, wantErr: `no user "carol"`},
		{name: "name of a comment", file: base, user: "# tokend users", want: base, wantErr: `no user "# tokend users"`},
		{name: "empty name", file: base, user: "", want: base, wantErr: `no user ""`},
		{name: "no users file", user: "bob", wantErr: `no user "bob"`},
		{name: "user with a refused hash", file: ha + "\n" + apr1 + "\n", user: "mallory", want: ha + "\n"},
		{
			name:    "file with a refused hash is not rewritten",
			file:    ha + "\n" + apr1 + "\n" + hb + "\n",
			user:    "bob",
			want:    ha + "\n" + apr1 + "\n" + hb + "\n",
			wantErr: refusedHash("%s", 2, "mallory", "Apache MD5 ($apr1$)"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "users.htpasswd")
			if tt.file != "" {
				if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var stdout, stderr bytes.Buffer
			err := runUser([]string{"del", "--env-file", filepath.Join(dir, "missing.env"), tt.user}, userTestEnv(path),
				strings.NewReader(""), &stdout, &stderr)
			wantOut := ""
			if tt.wantErr == "" {
				wantOut = `user "` + tt.user + `" removed from ` + path + "\n"
			}
			if got, want := errText(err), strings.ReplaceAll(tt.wantErr, "%s", path); got != want {
				t.Errorf("err = %q\nwant %q", got, want)
			}
			if stdout.String() != wantOut {
				t.Errorf("stdout = %q, want %q", stdout.String(), wantOut)
			}
			data, err := os.ReadFile(path)
			if tt.file == "" {
				if !errors.Is(err, os.ErrNotExist) {
					t.Errorf("users file: %v, want it not created", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(data) != tt.want {
				t.Errorf("file =\n%q\nwant\n%q", data, tt.want)
			}
		})
	}
}

func TestUserList(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string { return writeTestFile(t, dir, name, content) }
	h := string(usersTestHash(t, "pw"))
	three := write("three", "# users\ncarol:"+h+"\nalice:"+h+"\n\nBob:"+h+"\nbob:"+h+"\n")
	empty := write("empty", "# nobody yet\n")
	md5 := write("md5", "alice:"+h+"\nbob:$apr1$deadbeef$AAAAAAAAAAAAAAAAAAAAAA\n")
	missing := filepath.Join(dir, "missing")
	envFile := write("users.env", "USERS_FILE="+three+"\n")
	noEnv := filepath.Join(dir, "missing.env")

	tests := []struct {
		name      string
		usersFile string // from the environment
		envFile   string
		args      []string
		want      string
		wantErr   string
	}{
		{name: "sorted", usersFile: three, envFile: noEnv, want: "Bob\nalice\nbob\ncarol\n"},
		{name: "USERS_FILE from the env file", envFile: envFile, want: "Bob\nalice\nbob\ncarol\n"},
		{name: "environment wins over the env file", usersFile: empty, envFile: envFile, want: ""},
		{name: "missing file", usersFile: missing, envFile: noEnv, wantErr: "users file: open " + missing + ": no such file or directory"},
		{name: "refused hash", usersFile: md5, envFile: noEnv, wantErr: refusedHash(md5, 2, "bob", "Apache MD5 ($apr1$)")},
		{name: "extra argument", usersFile: three, envFile: noEnv, args: []string{"alice"}, wantErr: errUsage.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"list", "--env-file", tt.envFile}, tt.args...)
			err := runUser(args, userTestEnv(tt.usersFile), strings.NewReader(""), &stdout, &stderr)
			if got := errText(err); got != tt.wantErr {
				t.Errorf("err = %q\nwant %q", got, tt.wantErr)
			}
			if stdout.String() != tt.want {
				t.Errorf("stdout = %q, want %q", stdout.String(), tt.want)
			}
		})
	}
}

func TestBcryptAuth(t *testing.T) {
	alice := usersTestHash(t, "alice-pw")
	bob, err := bcrypt.GenerateFromPassword([]byte("bob-pw"), bcrypt.MinCost+1)
	if err != nil {
		t.Fatal(err)
	}
	bobY := append([]byte("$2y$"), bob[4:]...) // as htpasswd -B writes it
	store := newUserStore(newUsers(map[string][]byte{"alice": alice, "bob": bobY}))
	auth, err := newBcryptAuth(store)
	if err != nil {
		t.Fatal(err)
	}
	if got := store.Load().TargetCost(); got != bcrypt.MinCost+1 {
		t.Errorf("target cost = %d; want the users' highest, %d", got, bcrypt.MinCost+1)
	}

	tests := []struct {
		user, password string
		want           error
	}{
		{"alice", "alice-pw", nil},
		{"bob", "bob-pw", nil},
		{"alice", "bob-pw", errBadCredentials},
		{"alice", "", errBadCredentials},
		{"alice", "alice-pw ", errBadCredentials},
		{"Alice", "alice-pw", errBadCredentials},
		{"carol", "alice-pw", errBadCredentials},
		{"", "", errBadCredentials},
	}
	check := func(t *testing.T) {
		t.Helper()
		for _, tt := range tests {
			if err := auth.Authenticate(context.Background(), tt.user, tt.password); err != tt.want {
				t.Errorf("Authenticate(%q, %q) = %v, want %v", tt.user, tt.password, err, tt.want)
			}
		}
	}
	check(t)

	// A reload swaps the whole set: carol is in, alice and bob are out.
	store.Store(newUsers(map[string][]byte{"carol": usersTestHash(t, "carol-pw")}))
	tests = []struct {
		user, password string
		want           error
	}{
		{"carol", "carol-pw", nil},
		{"alice", "alice-pw", errBadCredentials},
		{"bob", "bob-pw", errBadCredentials},
	}
	check(t)
}

// TestBcryptAuthUniformCost: whatever mix of costs the file holds, an
// unknown user, a wrong password and a right one each spend the bcrypt
// work of one check at the file's highest cost (2^cost rounds), so timing
// tells none of them apart.
func TestBcryptAuthUniformCost(t *testing.T) {
	hashAt := func(password string, cost int) []byte {
		h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	store := newUserStore(newUsers(map[string][]byte{
		"low":  hashAt("low-pw", 4), // as htpasswd -B -C 4 writes
		"mid":  hashAt("mid-pw", 5),
		"high": hashAt("high-pw", 7),
	}))
	auth, err := newBcryptAuth(store)
	if err != nil {
		t.Fatal(err)
	}
	var costs []int
	auth.compare = func(hash []byte, password string) bool {
		c, err := bcrypt.Cost(hash)
		if err != nil {
			t.Fatalf("compared against a malformed hash: %v", err)
		}
		costs = append(costs, c)
		return checkPassword(hash, password)
	}
	tests := []struct {
		user, password string
		want           error
		wantCosts      []int
	}{
		{"nobody", "pw", errBadCredentials, []int{7}},
		{"high", "wrong", errBadCredentials, []int{7}},
		{"high", "high-pw", nil, []int{7}},
		{"mid", "wrong", errBadCredentials, []int{5, 5, 6}},
		{"mid", "mid-pw", nil, []int{5, 5, 6}},
		{"low", "wrong", errBadCredentials, []int{4, 4, 5, 6}},
		{"low", "low-pw", nil, []int{4, 4, 5, 6}},
	}
	for _, tt := range tests {
		costs = nil
		if err := auth.Authenticate(context.Background(), tt.user, tt.password); err != tt.want {
			t.Errorf("%s/%s: %v, want %v", tt.user, tt.password, err, tt.want)
		}
		if !slices.Equal(costs, tt.wantCosts) {
			t.Errorf("%s/%s: checked at costs %v, want %v", tt.user, tt.password, costs, tt.wantCosts)
		}
		rounds := 0
		for _, c := range costs {
			rounds += 1 << c
		}
		if rounds != 1<<7 {
			t.Errorf("%s/%s: %d bcrypt rounds, want %d as for everyone", tt.user, tt.password, rounds, 1<<7)
		}
	}
}

// TestCostWarnings: start-up, reloads and `tokend check` name the users
// whose cost is below the file's highest, and a file whose highest is low.
func TestCostWarnings(t *testing.T) {
	at := func(cost int) []byte {
		h, _ := bcrypt.GenerateFromPassword([]byte("pw"), cost)
		return h
	}
	tests := []struct {
		name  string
		users map[string][]byte
		want  []string
	}{
		{"none", map[string][]byte{}, nil},
		{"all at 10", map[string][]byte{"a": at(10), "b": at(10)}, nil},
		{"mixed", map[string][]byte{"a": at(10), "bob": at(5), "carol": at(4)}, []string{
			"f: 2 of 3 users have a bcrypt cost below the file's highest, 10: bob (5), carol (4); their logins are padded to cost 10 so that timing does not tell users apart, " +
				"which spends that CPU without the strength: rehash them with `tokend user add NAME`",
		}},
		{"low", map[string][]byte{"a": at(5)}, []string{
			"f: the highest bcrypt cost is 5 (htpasswd -B uses 5 unless given -C), cheap to crack if the file leaks: rehash with `tokend user add NAME` (cost 12) or `htpasswd -B -C 12`",
		}},
		{"many", map[string][]byte{"a": at(6), "b": at(4), "c": at(4), "d": at(4), "e": at(4), "f": at(4), "g": at(4), "h": at(4)}, []string{
			"f: 7 of 8 users have a bcrypt cost below the file's highest, 6: b (4), c (4), d (4), e (4), f (4) and 2 more; their logins are padded to cost 6 so that timing does not tell users apart, " +
				"which spends that CPU without the strength: rehash them with `tokend user add NAME`",
			"f: the highest bcrypt cost is 6 (htpasswd -B uses 5 unless given -C), cheap to crack if the file leaks: rehash with `tokend user add NAME` (cost 12) or `htpasswd -B -C 12`",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := costWarnings(newUsers(tt.users), "f"); !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// writeTestFile writes content to dir/name, readable by its owner only, and
// returns the path.
func writeTestFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
