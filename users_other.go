//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package main

import (
	"os"
	"time"
)

// lockUsersFile does nothing here: this system has no flock. Run one
// `tokend user add/del` at a time.
func lockUsersFile(string, time.Duration) (func(), error) { return func() {}, nil }

// keepOwner does nothing here: ownership is not a uid and gid.
func keepOwner(*os.File, os.FileInfo) error { return nil }

// syncDir does nothing here: directories cannot be flushed on their own.
func syncDir(string) error { return nil }
