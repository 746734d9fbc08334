package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// FuzzParseUsers: parseUsers never panics, refuses with an error naming
// the file, and what it accepts survives tokend's own rewrite of the file
// (as `tokend user add` does it) unchanged.
func FuzzParseUsers(f *testing.F) {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		f.Fatal(err)
	}
	h := string(hash)
	for _, seed := range []string{
		"alice:" + h + "\n",
		"# team\r\nalice:" + h + "\r\n\r\nbob smith:" + h,
		"  # indented comment\n\talice:" + h + "\n",
		"alice:" + h + "\nalice:" + h + "\n",
		"alice:$apr1$abcdefgh$0123456789abcdefghijkl\n",
		"alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n",
		"alice:abcdefghijklm\n",
		"alice:" + h[:59] + "\n",
		"alice:$2y$99$" + h[7:] + "\n",
		":" + h + "\n",
		"no colon\n",
		"é:" + h + "\n\x00:" + h + "\n",
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := parseUsers(bytes.NewReader(data), "users.htpasswd")
		if err != nil {
			if u != nil || !strings.HasPrefix(err.Error(), "users.htpasswd") {
				t.Fatalf("refusal %v does not name the file, or comes with users", err)
			}
			return
		}
		for _, name := range u.Names() {
			if name == "" || strings.ContainsAny(name, ":\n") {
				t.Fatalf("accepted user name %q", name)
			}
			if hash, _ := u.Hash(name); checkHash(string(hash)) != nil {
				t.Fatalf("accepted hash %q", hash)
			}
		}
		// Rewrite the file setting every user to its own hash: a no-op
		// that must read back as the same users.
		path := filepath.Join(t.TempDir(), "users.htpasswd")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, name := range u.Names() {
			hash, _ := u.Hash(name)
			if err := editUsersFile(path, setUser(name, hash)); err != nil {
				t.Fatalf("rewriting user %q: %v", name, err)
			}
		}
		again, err := loadUsers(path)
		if err != nil {
			t.Fatalf("the rewritten file does not load: %v", err)
		}
		if !reflect.DeepEqual(again.hashes, u.hashes) {
			t.Fatalf("users %v became %v", u.hashes, again.hashes)
		}
	})
}
