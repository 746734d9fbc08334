package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// usersReloader keeps the users current while tokend serves: it reads the
// users file again on SIGHUP and when the file changes on disk, and swaps
// the new set in at once, so a request in flight finishes with the set it
// started with. A file that does not load (a bad line, an unsupported hash,
// no users) changes nothing: the last good set keeps serving and the log
// names the line at fault.
//
// Changes are found by polling the file's metadata rather than with
// inotify: a stat every few seconds costs nothing, needs no dependency, and
// works where inotify does not (network filesystems, bind mounts from
// another kernel, a ConfigMap whose symlink is swapped under it).
type usersReloader struct {
	path string
	auth *authStack
	log  *slog.Logger
	last os.FileInfo // the file as last seen; nil when it could not be read
	// onChange, when set, hears of the users whose hash changed or who
	// are gone, after the new set is in place: their sessions end.
	onChange func(users *Users, changed []string)
}

func newUsersReloader(log *slog.Logger, path string, auth *authStack) *usersReloader {
	r := &usersReloader{path: path, auth: auth, log: log}
	if path != "" {
		r.last, _ = os.Stat(path)
	}
	return r
}

// start reloads on every signal from hup and, when every is above 0, when a
// look at the file every `every` finds it changed. stop ends it and waits.
func (r *usersReloader) start(ctx context.Context, hup <-chan os.Signal, every time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.watch(ctx, hup, every)
	}()
	return func() {
		cancel()
		<-done
	}
}

func (r *usersReloader) watch(ctx context.Context, hup <-chan os.Signal, every time.Duration) {
	var tick <-chan time.Time
	if every > 0 && r.path != "" {
		t := time.NewTicker(every)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			r.reload("SIGHUP")
		case <-tick:
			if r.changed() {
				r.reload("file changed")
			}
		}
	}
}

// changed reports whether the file is not the one last seen: another file
// renamed into place (as `tokend user add` and most editors do), or the
// same file with another size or modification time.
func (r *usersReloader) changed() bool {
	fi, err := os.Stat(r.path)
	if err != nil {
		if r.last != nil {
			r.log.Error("users file unreadable; keeping the users loaded", "file", r.path, "users", r.auth.store.Load().Len(), "err", err)
		}
		r.last = nil
		return false
	}
	same := r.last != nil && os.SameFile(fi, r.last) && fi.Size() == r.last.Size() && fi.ModTime().Equal(r.last.ModTime())
	r.last = fi
	return !same
}

// reload reads the users file and, if it loads, swaps it in.
func (r *usersReloader) reload(reason string) error {
	if r.path == "" {
		r.log.Info("no users file to reload in development mode", "reason", reason)
		return nil
	}
	if fi, err := os.Stat(r.path); err == nil {
		r.last = fi
	}
	old := r.auth.store.Load()
	users, err := loadUsers(r.path)
	if err == nil && users.Len() == 0 {
		err = fmt.Errorf("%s has no users", r.path)
	}
	if err == nil {
		added, changed := diffUsers(old, users)
		if err = r.auth.swapUsers(users, changed); err == nil {
			r.log.Info("users reloaded", "reason", reason, "file", r.path, "users", users.Len(), "added", added, "changed_or_removed", len(changed))
			if r.onChange != nil && len(changed) > 0 {
				r.onChange(users, changed)
			}
			return nil
		}
	}
	// The error names the file and line (parseUsers), never a hash.
	r.log.Error("users file not reloaded; keeping the last good users", "reason", reason, "users", old.Len(), "err", err)
	return errors.Join(errors.New("users file not reloaded"), err)
}

// diffUsers counts the users new adds to old, and names those whose hash
// changed or who are gone.
func diffUsers(old, new *Users) (added int, changed []string) {
	for _, name := range old.Names() {
		oh, _ := old.Hash(name)
		if nh, ok := new.Hash(name); !ok || !bytes.Equal(oh, nh) {
			changed = append(changed, name)
		}
	}
	for _, name := range new.Names() {
		if _, ok := old.Hash(name); !ok {
			added++
		}
	}
	return added, changed
}
