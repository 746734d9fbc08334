package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestEditKeepsFile: `tokend user add/del` through a symlink rewrite the
// file the link points to, keep the link, and keep the file's owner, group
// and mode; a new file gets 0600; no temporary file is left behind.
func TestEditKeepsFile(t *testing.T) {
	hash := usersTestHash(t, "pw")
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) (path, target string) // path is USERS_FILE
		mode  os.FileMode
		owner int // uid and gid to give the file first; -1: leave as made
	}{
		{"relative symlink", func(t *testing.T, dir string) (string, string) {
			os.Mkdir(filepath.Join(dir, "etc"), 0o755)
			target := writeTestFile(t, filepath.Join(dir, "etc"), "users", usersFileLines(t, "alice", "pw"))
			link := filepath.Join(dir, "users")
			if err := os.Symlink("etc/users", link); err != nil {
				t.Fatal(err)
			}
			return link, target
		}, 0o640, -1},
		{"chain of symlinks to a new file", func(t *testing.T, dir string) (string, string) {
			target := filepath.Join(dir, "real")
			os.Symlink(target, filepath.Join(dir, "middle"))
			link := filepath.Join(dir, "users")
			os.Symlink("middle", link)
			return link, target
		}, 0o600, -1},
		{"owned by the service account", func(t *testing.T, dir string) (string, string) {
			if os.Geteuid() != 0 {
				t.Skip("not root: cannot give the file another owner to keep")
			}
			os.Chmod(dir, 0o755) // so that nobody may read its file
			target := writeTestFile(t, dir, "users", usersFileLines(t, "alice", "pw"))
			return target, target
		}, 0o440, 65534},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path, target := tt.setup(t, dir)
			if _, err := os.Stat(target); err == nil {
				os.Chmod(target, tt.mode)
				if tt.owner >= 0 {
					if err := os.Chown(target, tt.owner, tt.owner); err != nil {
						t.Fatal(err)
					}
				}
			}
			before, _ := os.Lstat(path)
			if err := editUsersFile(path, setUser("bob", hash)); err != nil {
				t.Fatal(err)
			}
			after, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if before != nil && after.Mode().Type() != before.Mode().Type() {
				t.Errorf("%s changed from %v to %v", path, before.Mode().Type(), after.Mode().Type())
			}
			fi, err := os.Stat(target)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode() != tt.mode {
				t.Errorf("mode %v, want %v", fi.Mode(), tt.mode)
			}
			if lock, err := os.Stat(target + ".lock"); err != nil || lock.Mode() != tt.mode || lock.Sys().(*syscall.Stat_t).Uid != fi.Sys().(*syscall.Stat_t).Uid {
				t.Errorf("lock file: %v, want mode %v and the users file's owner", err, tt.mode)
			}
			st := fi.Sys().(*syscall.Stat_t)
			wantOwner := uint32(os.Geteuid())
			if tt.owner >= 0 {
				wantOwner = uint32(tt.owner)
			}
			if st.Uid != wantOwner || st.Gid != wantOwner && tt.owner >= 0 {
				t.Errorf("owner %d:%d, want %d", st.Uid, st.Gid, wantOwner)
			}
			users, err := loadUsers(path)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := users.Hash("bob"); !ok {
				t.Errorf("bob not in %s: %q", path, users.Names())
			}
			err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
				if strings.HasSuffix(p, ".tmp") {
					t.Errorf("temporary file left: %s", p)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestConcurrentEdits: eight `tokend user del` at once, each slow between
// reading the file and writing it back, all take effect: none writes back
// a file read before another's change.
func TestConcurrentEdits(t *testing.T) {
	dir := t.TempDir()
	var logins []string
	for i := range 10 {
		logins = append(logins, fmt.Sprintf("user%d", i), "pw")
	}
	path := writeTestFile(t, dir, "users", usersFileLines(t, logins...))
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range 8 {
		wg.Go(func() {
			del := deleteUser(fmt.Sprintf("user%d", i))
			errs[i] = editUsersFile(path, func(lines []string) ([]string, error) {
				time.Sleep(20 * time.Millisecond) // what a busy disk or a slow NFS does
				return del(lines)
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("del user%d: %v", i, err)
		}
	}
	users, err := loadUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := users.Names(), []string{"user8", "user9"}; !slices.Equal(got, want) {
		t.Errorf("users left: %q, want %q", got, want)
	}
}

// TestEditLockWaits: an edit waits while another holds the lock, and goes
// ahead once it is released.
func TestEditLockWaits(t *testing.T) {
	dir := t.TempDir()
	path := writeTestFile(t, dir, "users", usersFileLines(t, "alice", "pw"))
	unlock, err := lockUsersFile(path, lockWait)
	if err != nil {
		t.Fatal(err)
	}
	// Another waiter gives up in time, and says who holds the lock.
	if _, err := lockUsersFile(path, 50*time.Millisecond); errText(err) != "another `tokend user` command has been editing "+path+" for over 50ms (it holds "+path+".lock); try again" {
		t.Errorf("err = %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- editUsersFile(path, deleteUser("alice")) }()
	select {
	case err := <-done:
		t.Fatalf("the edit ran while the lock was held: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if users, _ := loadUsers(path); users.Len() != 0 {
		t.Errorf("users left: %q", users.Names())
	}
}

// TestUserListNeverPrintsControls: a name with a terminal escape never
// reaches the terminal raw, neither listed nor in the error that refuses it.
func TestUserListNeverPrintsControls(t *testing.T) {
	dir := t.TempDir()
	path := writeTestFile(t, dir, "users", "\x1b[2Jalice:"+string(usersTestHash(t, "pw"))+"\n")
	var stdout, stderr strings.Builder
	err := runUser([]string{"list", "--env-file", filepath.Join(dir, ".env")}, userTestEnv(path), strings.NewReader(""), &stdout, &stderr)
	if want := path + `:1: user "\x1b[2Jalice": contains the control character U+001B; a name must be printable`; errText(err) != want {
		t.Errorf("err = %q\nwant %q", errText(err), want)
	}
	if out := stdout.String() + stderr.String() + errText(err); strings.ContainsRune(out, 0x1b) {
		t.Errorf("raw escape printed: %q", out)
	}
	for name, want := range map[string]string{
		"alice":        "alice",
		"bob smith":    "bob smith",
		"zoë":          "zoë",
		"\x1b[31mred":  `"\x1b[31mred"`,
		"alice\u200b":  `"alice\u200b"`,
		"bad\xffbytes": `"bad\xffbytes"`,
	} {
		if got := printableName(name); got != want {
			t.Errorf("printableName(%q) = %s, want %s", name, got, want)
		}
	}
}

// TestUsersFileAdvice: each way the users file fails to load gets its own
// advice, and errors that carry their fix get none.
func TestUsersFileAdvice(t *testing.T) {
	const path = "/etc/tokend/users"
	uid := os.Getuid()
	tests := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("users file: %w", &fs.PathError{Op: "open", Path: path, Err: syscall.ENOENT}),
			" (create it with `tokend user add NAME`, or set USERS_FILE to where the users file is)"},
		{fmt.Errorf("users file: %w", &fs.PathError{Op: "open", Path: path, Err: syscall.EACCES}),
			fmt.Sprintf(" (tokend runs as uid %d, which may not read it: make that user its owner, `chown %d %s`, or give it a group tokend is in, with mode 600 or 640)", uid, uid, path)},
		{fmt.Errorf("users file: %w", &fs.PathError{Op: "read", Path: path, Err: syscall.EISDIR}),
			" (USERS_FILE must name a file, not a directory: for example /etc/tokend/users/users.htpasswd)"},
		{errors.New(path + `:2: user "bob": unsupported hash type Apache MD5 ($apr1$); only bcrypt is accepted: recreate it with ` + "`tokend user add` or `htpasswd -B`"), ""},
		{fmt.Errorf("users file %s: %w", path, errUsersFileChanging), ""},
	}
	for _, tt := range tests {
		if got := usersFileAdvice(tt.err, path); got != tt.want {
			t.Errorf("%v:\n got %q\nwant %q", tt.err, got, tt.want)
		}
	}
}

// TestUserAddVoiceWarning: a name Twilio Voice refuses is saved, with a
// warning when the voice grant is enabled or the settings cannot tell.
func TestUserAddVoiceWarning(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	noEnv := filepath.Join(dir, ".env")
	users := filepath.Join(dir, "users")
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"bob smith", cmdEnv("USERS_FILE", users),
			`warning: Twilio Voice allows only letters, digits and _ in an identity, so "bob smith" will get no token with the voice grant (which these settings enable); a name such as "bob_smith" would` + "\n"},
		{"alice@example.com", map[string]string{"USERS_FILE": users},
			`warning: Twilio Voice allows only letters, digits and _ in an identity, so "alice@example.com" will get no token with the voice grant (if tokend serves the voice grant); a name such as "alice_example_com" would` + "\n"},
		{"carol smith", cmdEnv("USERS_FILE", users, "TWILIO_TWIML_APP_SID", "", "TWILIO_VOICE_INCOMING", "false"), ""},
		{"dave_2", cmdEnv("USERS_FILE", users), ""},
	}
	for _, tt := range tests {
		_, stderr, err := runTokend(t, tt.env, specTime, "pw\n", "user", "add", "--env-file", noEnv, tt.name)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if stderr != tt.want {
			t.Errorf("%s: stderr %q\nwant %q", tt.name, stderr, tt.want)
		}
	}
}
