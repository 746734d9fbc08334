package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// maxPasswordBytes is where bcrypt stops reading a password: longer ones are
// refused rather than silently truncated.
const maxPasswordBytes = 72

// userCost is the bcrypt cost `tokend user add` hashes with.
const userCost = 12

// Users is an immutable set of users read from an htpasswd file whose
// hashes are all bcrypt, as `htpasswd -B` writes it.
type Users struct {
	hashes map[string][]byte
}

// Hash returns the bcrypt hash of user name.
func (u *Users) Hash(name string) ([]byte, bool) {
	h, ok := u.hashes[name]
	return h, ok
}

// Names returns the user names, sorted.
func (u *Users) Names() []string {
	names := make([]string, 0, len(u.hashes))
	for name := range u.hashes {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Len is the number of users.
func (u *Users) Len() int {
	if u == nil {
		return 0
	}
	return len(u.hashes)
}

// parseUsers reads an htpasswd file. Blank lines and lines starting with #
// are skipped. Any hash other than bcrypt is refused with the line number,
// so a file written by `htpasswd` without -B cannot slip through.
func parseUsers(r io.Reader, file string) (*Users, error) {
	u := &Users{hashes: map[string][]byte{}}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		name, hash, ok := strings.Cut(line, ":")
		if !ok || name == "" {
			return nil, fmt.Errorf("%s:%d: not a user line: expected NAME:BCRYPT-HASH", file, n)
		}
		if _, dup := u.hashes[name]; dup {
			return nil, fmt.Errorf("%s:%d: user %q appears twice", file, n, name)
		}
		if err := checkHash(hash); err != nil {
			return nil, fmt.Errorf("%s:%d: user %q: %v", file, n, name, err)
		}
		u.hashes[name] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return u, nil
}

// checkHash accepts only well-formed bcrypt hashes and names what it refuses.
func checkHash(hash string) error {
	kind := ""
	switch {
	case strings.HasPrefix(hash, "$2y$"), strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"):
		if _, err := bcrypt.Cost([]byte(hash)); err != nil || len(hash) != 60 {
			return errors.New("malformed bcrypt hash")
		}
		return nil
	case strings.HasPrefix(hash, "$apr1$"):
		kind = "Apache MD5 ($apr1$)"
	case strings.HasPrefix(hash, "{SHA}"):
		kind = "SHA-1 ({SHA})"
	case strings.HasPrefix(hash, "$5$"), strings.HasPrefix(hash, "$6$"):
		kind = "SHA-crypt"
	case strings.HasPrefix(hash, "$"):
		kind = "an unknown $ scheme"
	case len(hash) == 13:
		kind = "DES crypt"
	default:
		kind = "plain text or unknown"
	}
	return fmt.Errorf("unsupported hash type %s; only bcrypt is accepted: recreate it with `tokend user add` or `htpasswd -B`", kind)
}

// loadUsers reads the users file at path.
func loadUsers(path string) (*Users, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("users file: %w", err)
	}
	defer f.Close()
	return parseUsers(f, path)
}

// checkPassword reports whether password matches the bcrypt hash.
func checkPassword(hash []byte, password string) bool {
	return bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil
}

// checkUserName returns why name cannot be a user name, or "".
func checkUserName(name string) string {
	switch {
	case name == "":
		return "the user name is empty"
	case strings.ContainsAny(name, ":\r\n"):
		return "a user name cannot contain ':' or a line break"
	case strings.HasPrefix(name, "#"):
		return "a user name cannot start with '#'"
	case strings.TrimSpace(name) != name:
		return "a user name cannot start or end with a space"
	case len([]rune(name)) > maxIdentityAny:
		return fmt.Sprintf("a user name can have at most %d characters", maxIdentityAny)
	}
	return ""
}

// editUsersFile rewrites the users file at path with edit applied to its
// lines, keeping comments and other users' lines as they are. The new file
// replaces the old one atomically and is readable only by its owner when new.
func editUsersFile(path string, edit func(lines []string) ([]string, error)) error {
	data, err := os.ReadFile(path)
	mode := os.FileMode(0o600)
	switch {
	case errors.Is(err, os.ErrNotExist):
		data = nil
	case err != nil:
		return fmt.Errorf("users file: %w", err)
	default:
		if fi, err := os.Stat(path); err == nil {
			mode = fi.Mode().Perm()
		}
	}
	var lines []string
	if len(data) > 0 {
		lines = strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	}
	lines, err = edit(lines)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	for _, l := range lines {
		out.WriteString(l)
		out.WriteByte('\n')
	}
	// Refuse to write a file that tokend itself would refuse to load.
	if _, err := parseUsers(bytes.NewReader(out.Bytes()), path); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".users-*.tmp")
	if err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(out.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("users file: %w", err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("users file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	return os.Rename(tmp.Name(), path)
}

// lineUser returns the user name of an htpasswd line, or "" for comments
// and blank lines.
func lineUser(line string) string {
	t := strings.TrimSpace(line)
	if t == "" || strings.HasPrefix(t, "#") {
		return ""
	}
	name, _, _ := strings.Cut(line, ":")
	return name
}

// setUser adds user name with hash, or replaces its hash.
func setUser(name string, hash []byte) func([]string) ([]string, error) {
	return func(lines []string) ([]string, error) {
		entry := name + ":" + string(hash)
		for i, l := range lines {
			if lineUser(l) == name {
				lines[i] = entry
				return lines, nil
			}
		}
		return append(lines, entry), nil
	}
}

// deleteUser removes user name; it is an error if there is none.
func deleteUser(name string) func([]string) ([]string, error) {
	return func(lines []string) ([]string, error) {
		for i, l := range lines {
			if name != "" && lineUser(l) == name { // "" is lineUser's answer for comments
				return append(lines[:i], lines[i+1:]...), nil
			}
		}
		return nil, fmt.Errorf("no user %q", name)
	}
}
