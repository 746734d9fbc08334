package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// maxPasswordBytes is where bcrypt stops reading a password: longer ones are
// refused rather than silently truncated.
const maxPasswordBytes = 72

// userCost is the bcrypt cost `tokend user add` hashes with.
const userCost = 12

// lockWait is how long `tokend user add/del` waits for another one
// editing the same users file; an edit holds the lock for milliseconds.
const lockWait = 10 * time.Second

// bcryptAlphabet is the characters of bcrypt's salt and digest.
const bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// maxBcryptCost is the highest bcrypt cost a users file may hold. Each step
// doubles the work: cost 12 takes about 0.2 s on one core, so 17 takes about
// 6 s, the most that still answers within the server's 10 s write timeout,
// and 18 would not. It is also htpasswd's own limit (`htpasswd -B -C`
// accepts 4 to 17). Higher costs are refused, not clamped: cost 31 would
// take days per login.
const maxBcryptCost = 17

// Users is an immutable set of users read from an htpasswd file whose
// hashes are all bcrypt, as `htpasswd -B` writes it.
type Users struct {
	hashes map[string][]byte
	target int // TargetCost
}

// newUsers returns the users with these hashes, which must be bcrypt.
func newUsers(hashes map[string][]byte) *Users {
	u := &Users{hashes: hashes, target: userCost}
	if len(hashes) > 0 {
		u.target = bcrypt.MinCost
		for _, h := range hashes {
			if c, err := bcrypt.Cost(h); err == nil && c > u.target {
				u.target = min(c, maxBcryptCost)
			}
		}
	}
	return u
}

// TargetCost is the cost every login is checked at: the highest among the
// hashes, or userCost when there are none.
func (u *Users) TargetCost() int { return u.target }

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
// so a file written by `htpasswd` without -B cannot slip through, and so
// are a byte-order mark and names a person cannot read (nameCharProblem).
func parseUsers(r io.Reader, file string) (*Users, error) {
	hashes := map[string][]byte{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if n == 1 && strings.HasPrefix(line, "\uFEFF") {
			// Else it would become part of the first user's name.
			return nil, fmt.Errorf("%s:1: the file starts with a UTF-8 byte-order mark (as Windows Notepad saves): save it as UTF-8 without a BOM, or remove the first 3 bytes", file)
		}
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		name, hash, ok := strings.Cut(line, ":")
		if !ok || name == "" {
			return nil, fmt.Errorf("%s:%d: not a user line: expected NAME:BCRYPT-HASH", file, n)
		}
		if problem := nameCharProblem(name); problem != "" {
			return nil, fmt.Errorf("%s:%d: user %q: %s", file, n, name, problem)
		}
		if _, dup := hashes[name]; dup {
			return nil, fmt.Errorf("%s:%d: user %q appears twice", file, n, name)
		}
		if err := checkHash(hash); err != nil {
			return nil, fmt.Errorf("%s:%d: user %q: %v", file, n, name, err)
		}
		hashes[name] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return newUsers(hashes), nil
}

// checkHash accepts only well-formed bcrypt hashes and names what it refuses.
func checkHash(hash string) error {
	kind := ""
	switch {
	case strings.HasPrefix(hash, "$2y$"), strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"):
		cost, err := bcrypt.Cost([]byte(hash))
		if err != nil || len(hash) != 60 || hash[6] != '$' {
			return errors.New("malformed bcrypt hash")
		}
		// Else a check fails at once, not after a full bcrypt: a timing
		// tell that this user exists.
		if i := strings.IndexFunc(hash[7:], func(r rune) bool { return !strings.ContainsRune(bcryptAlphabet, r) }); i >= 0 {
			return fmt.Errorf("malformed bcrypt hash: character %d is not one bcrypt uses (./A-Za-z0-9)", 7+i+1)
		}
		if cost > maxBcryptCost {
			return fmt.Errorf("bcrypt cost %d is above tokend's maximum of %d (each step doubles the time of every login: cost %d would take %s); rehash it with `tokend user add`, which uses cost %d",
				cost, maxBcryptCost, cost, costTime(cost), userCost)
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

// costTime is roughly how long one bcrypt check at cost takes on one
// core (about 0.2 s at cost 12), for messages.
func costTime(cost int) string {
	d := 200 * time.Millisecond
	for c := 12; c < cost; c++ {
		d *= 2
	}
	for c := 12; c > cost; c-- {
		d /= 2
	}
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("about %d days", d/(24*time.Hour))
	case d >= 2*time.Hour:
		return fmt.Sprintf("about %d hours", d/time.Hour)
	case d >= 2*time.Minute:
		return fmt.Sprintf("about %d minutes", d/time.Minute)
	}
	return "about " + d.Round(100*time.Millisecond).String()
}

// costWarnings says what is weak or wasteful in the users' bcrypt costs,
// for start-up, reloads and `tokend check`; nil when nothing is.
func costWarnings(u *Users, file string) []string {
	var warnings []string
	var cheap []string
	for _, name := range u.Names() {
		if c, err := bcrypt.Cost(u.hashes[name]); err == nil && c < u.target {
			cheap = append(cheap, fmt.Sprintf("%s (%d)", name, c))
		}
	}
	if len(cheap) > 0 {
		list := strings.Join(cheap[:min(len(cheap), 5)], ", ")
		if len(cheap) > 5 {
			list += fmt.Sprintf(" and %d more", len(cheap)-5)
		}
		warnings = append(warnings, fmt.Sprintf("%s: %d of %d users have a bcrypt cost below the file's highest, %d: %s; "+
			"their logins are padded to cost %d so that timing does not tell users apart, which spends that CPU without the strength: "+
			"rehash them with `tokend user add NAME`", file, len(cheap), u.Len(), u.target, list, u.target))
	}
	if u.Len() > 0 && u.target < 10 {
		warnings = append(warnings, fmt.Sprintf("%s: the highest bcrypt cost is %d (htpasswd -B uses 5 unless given -C), cheap to crack if the file leaks: "+
			"rehash with `tokend user add NAME` (cost %d) or `htpasswd -B -C %d`", file, u.target, userCost, userCost))
	}
	return warnings
}

// loadUsers reads the users file at path.
func loadUsers(path string) (*Users, error) {
	u, _, err := loadUsersFile(path)
	return u, err
}

// loadUsersFile reads and parses the users file at path, and returns the
// file's state as read, for the reloader to compare.
func loadUsersFile(path string) (*Users, os.FileInfo, error) {
	data, fi, err := readUsersFile(path)
	if err != nil {
		return nil, nil, err
	}
	u, err := parseUsers(bytes.NewReader(data), path)
	return u, fi, err
}

// usersFileAdvice is what to do about err from loading the users file at
// path, to follow the error: "" when the error says it already (a bad
// line or hash names its fix).
func usersFileAdvice(err error, path string) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return " (create it with `tokend user add NAME`, or set USERS_FILE to where the users file is)"
	case errors.Is(err, fs.ErrPermission):
		return fmt.Sprintf(" (tokend runs as uid %d, which may not read it: make that user its owner, `chown %d %s`, or give it a group tokend is in, with mode 600 or 640)", os.Getuid(), os.Getuid(), path)
	case errors.Is(err, syscall.EISDIR):
		return fmt.Sprintf(" (USERS_FILE must name a file, not a directory: for example %s)", filepath.Join(path, "users.htpasswd"))
	}
	return ""
}

// errUsersFileChanging is readUsersFile's answer for a file that kept
// changing while it was read.
var errUsersFileChanging = errors.New("the file kept changing while it was read; it is read again once it is still")

// readUsersFile reads the file at path whole, and makes sure it did not
// change while it was read: an editor or script rewriting it in place
// could otherwise hand tokend half a file, which might parse, with users
// missing. A read that saw a change is tried again, a few times.
func readUsersFile(path string) ([]byte, os.FileInfo, error) {
	for range 3 {
		data, fi, err := readFileOnce(path)
		if !errors.Is(err, errUsersFileChanging) {
			return data, fi, err
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, nil, fmt.Errorf("users file %s: %w", path, errUsersFileChanging)
}

func readFileOnce(path string) ([]byte, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("users file: %w", err)
	}
	defer f.Close()
	before, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("users file: %w", err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, nil, fmt.Errorf("users file: %w", err)
	}
	after, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("users file: %w", err)
	}
	now, err := os.Stat(path) // another file renamed over it meanwhile?
	if err != nil || !sameFileState(before, after) || !sameFileState(before, now) || (after.Mode().IsRegular() && int64(len(data)) != after.Size()) {
		return nil, nil, errUsersFileChanging
	}
	return data, after, nil
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
	case nameCharProblem(name) != "":
		return "the user name " + nameCharProblem(name)
	case len([]rune(name)) > maxIdentityAny:
		return fmt.Sprintf("a user name can have at most %d characters", maxIdentityAny)
	}
	return ""
}

// nameCharProblem returns why name has characters no user name may have,
// or "": bytes that are not UTF-8 (JSON would turn them into U+FFFD, a
// token for another identity), and characters a person cannot see or that
// act on a terminal: control characters (escape sequences), invisible
// formatting such as U+200B (alice\u200b would display as alice), spaces
// other than ' ', and blank letters. Names are shown back by
// `tokend user list`, the log and the token's identity.
func nameCharProblem(name string) string {
	if !utf8.ValidString(name) {
		return "is not valid UTF-8"
	}
	for _, r := range name {
		switch {
		case r == ' ':
		case unicode.IsControl(r):
			return fmt.Sprintf("contains the control character %U; a name must be printable", r)
		case unicode.IsSpace(r):
			return fmt.Sprintf("contains %U, a space other than ' ' that looks like one", r)
		case unicode.Is(unicode.Cf, r) || blankLetters[r]:
			return fmt.Sprintf("contains the invisible character %U; a name must read as it is", r)
		case !unicode.IsGraphic(r):
			return fmt.Sprintf("contains %U, a character that is unassigned or private: a name must be printable", r)
		}
	}
	return ""
}

// blankLetters are letters that fonts draw as nothing.
var blankLetters = map[rune]bool{0x115F: true, 0x1160: true, 0x3164: true, 0xFFA0: true, 0x2800: true}

// printableName is name for a terminal: as it is when every character
// shows, else quoted with escapes, so that nothing read from a file can
// move the cursor or recolour the screen.
func printableName(name string) string {
	if nameCharProblem(name) == "" {
		return name
	}
	return strconv.QuoteToASCII(name)
}

// editUsersFile rewrites the users file at path with edit applied to its
// lines, keeping comments and other users' lines as they are, under a lock
// that concurrent edits wait for (see lockUsersFile). When path is
// a symlink, the file it points to is rewritten and the link kept. The new
// content replaces the old file atomically (see replaceFile), with the old
// file's owner, group and mode; a new file is readable by its owner only.
func editUsersFile(path string, edit func(lines []string) ([]string, error)) error {
	target, err := usersFileTarget(path)
	if err != nil {
		return err
	}
	unlock, err := lockUsersFile(target, lockWait)
	if err != nil {
		return err
	}
	defer unlock()
	data, err := os.ReadFile(target)
	var old os.FileInfo
	switch {
	case errors.Is(err, os.ErrNotExist):
		data = nil
	case err != nil:
		return fmt.Errorf("users file: %w", err)
	default:
		if old, err = os.Stat(target); err != nil {
			return fmt.Errorf("users file: %w", err)
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
	return replaceFile(target, out.Bytes(), old)
}

// usersFileTarget returns the file path names after following symlinks,
// even to a file that does not exist yet, so that an edit replaces the
// file a link points to instead of the link (a ConfigMap, or a file kept
// in /etc/tokend linked from the service's directory).
func usersFileTarget(path string) (string, error) {
	target, err := filepath.EvalSymlinks(path)
	if err == nil {
		return target, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("users file: %w", err)
	}
	p := path
	for range 40 { // as many links as Linux follows
		link, err := os.Readlink(p)
		if err != nil {
			return p, nil // not a link: the file to create
		}
		if !filepath.IsAbs(link) {
			link = filepath.Join(filepath.Dir(p), link)
		}
		p = link
	}
	return "", fmt.Errorf("users file %s: too many levels of symbolic links", path)
}

// replaceFile puts data in place of the file target atomically: it writes
// a new file beside it with old's owner, group and mode (old is nil for a
// new file, which gets 0600), flushes it to disk, renames it over target
// and flushes the directory. A crash leaves the old file or the new one,
// never an empty or partial one (without the fsyncs, ext4 and xfs may
// commit the rename before the data).
func replaceFile(target string, data []byte, old os.FileInfo) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(target), "."+filepath.Base(target)+".*.tmp")
	if err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	mode := os.FileMode(0o600)
	if old != nil {
		mode = old.Mode().Perm()
		if err = keepOwner(tmp, old); err != nil {
			return err
		}
	}
	if err = tmp.Chmod(mode); err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	if err = os.Rename(tmp.Name(), target); err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	return syncDir(filepath.Dir(target))
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
