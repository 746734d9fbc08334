//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package main

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// lockUsersFile takes an exclusive flock on a lock file beside the users
// file target, so that concurrent `tokend user add/del` read, edit and
// write one after the other instead of losing each other's changes. The
// lock is on a file of its own, not the users file, because the users
// file is replaced by a rename: a lock on it would stay on the old one.
// The lock file is left in place: removing it would let a waiter lock a
// file another command has just unlinked.
func lockUsersFile(target string, wait time.Duration) (unlock func(), err error) {
	name := target + ".lock"
	f, err := os.OpenFile(name, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		// Whoever may edit the users file may take its lock: root
		// making the lock file must not shut the service account out.
		if old, err := os.Stat(target); err == nil {
			keepOwner(f, old)
			f.Chmod(old.Mode().Perm())
		}
	case errors.Is(err, os.ErrExist):
		f, err = os.Open(name)
	}
	if err != nil {
		return nil, fmt.Errorf("users file lock: %w", err)
	}
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("users file lock %s: %w", name, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("another `tokend user` command has been editing %s for over %s (it holds %s); try again", target, wait, name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// keepOwner gives the new file f the owner and group of the file it
// replaces, as described by old. Root running `tokend user add` on a file
// owned by the service account must not leave it unreadable to tokend.
func keepOwner(f *os.File, old os.FileInfo) error {
	st, ok := old.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	uid, gid := int(st.Uid), int(st.Gid)
	if err := f.Chown(uid, gid); err != nil {
		return fmt.Errorf("users file: cannot give the new file the owner %d:%d of the old one (%w); run the command as that user or as root", uid, gid, err)
	}
	return nil
}

// syncDir flushes a directory, so that a rename in it survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return fmt.Errorf("users file: flush %s: %w", dir, err)
	}
	return nil
}
