package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"time"
)

// usersReloader keeps the users current while tokend serves: it reads the
// users file again on SIGHUP and when the file changes on disk, and swaps
// the new set in at once, so a request in flight finishes with the set it
// started with. A file with no users is the operator's word that nobody
// may log in (`tokend user del` of the last user writes one): it is
// applied, every login fails and /readyz answers 503. A file that cannot
// be read or parsed (a bad line, an unsupported hash, permissions, the
// file gone) says nothing about intent: it changes nothing, the last good
// set keeps serving, and the log names the fault.
//
// Changes are found by polling the file's metadata rather than with
// inotify: a stat every few seconds costs nothing, needs no dependency, and
// works where inotify does not (network filesystems, bind mounts from
// another kernel, a ConfigMap whose symlink is swapped under it).
//
// A change is loaded once two polls in a row have seen the file alike, so
// an editor or script rewriting it in place is not read half-way; and a
// read during which the file changed is thrown away (see readUsersFile).
// A load that fails is tried again at every poll, each failure logged at
// ERROR, until it succeeds: fixing a file's permissions changes nothing
// the poll compares, and a fault must not go quiet while old users serve.
type usersReloader struct {
	path string
	auth *authStack
	log  *slog.Logger
	// onChange, when set, hears of the users whose hash changed or who
	// are gone, after the new set is in place: their sessions end.
	onChange func(users *Users, changed []string)
	loaded   os.FileInfo // the file as it was when last loaded well
	seen     os.FileInfo // the file as the last poll saw it; nil when unreadable
	failed   bool        // the last load failed
	// stale, when set, is told whether the file on disk is failing to
	// load (true) or loaded (false): the tokend_users_file_stale gauge.
	stale func(bool)
}

// stopWait is how long stopping waits for a reload in progress.
const stopWait = time.Second

func newUsersReloader(log *slog.Logger, path string, auth *authStack) *usersReloader {
	r := &usersReloader{path: path, auth: auth, log: log}
	if path != "" {
		r.loaded, _ = os.Stat(path)
		r.seen = r.loaded
	}
	return r
}

// start reloads on every signal from hup and, when every is above 0, when a
// look at the file every `every` finds it changed. stop ends it and waits
// for a reload in progress, up to stopWait.
func (r *usersReloader) start(ctx context.Context, hup <-chan os.Signal, every time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.watch(ctx, hup, every)
	}()
	return func() {
		cancel()
		// A reload is a read and a parse, done in milliseconds, but a
		// read can hang on a dead network filesystem: shutdown does not
		// wait for it past stopWait.
		select {
		case <-done:
		case <-time.After(stopWait):
			r.log.Warn("a users file reload is still running at shutdown; not waiting for it", "file", r.path)
		}
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
			r.poll()
		}
	}
}

// poll looks at the file and loads it when it is due: it changed since
// the last good load and looks as it did at the previous poll, or the
// last load failed.
func (r *usersReloader) poll() {
	fi, err := os.Stat(r.path)
	if err != nil {
		// Failed, so that the file's return is loaded even if it looks
		// as it did: what came back may not be what left.
		r.seen, r.failed = nil, true
		r.setStale(true)
		r.log.Error("users file unreadable; keeping the last good users", "file", r.path, "users", r.auth.store.Load().Len(), "err", err)
		return
	}
	settled := sameFileState(fi, r.seen)
	r.seen = fi
	switch {
	case r.failed && settled:
		r.reload("retrying a failed load")
	case sameFileState(fi, r.loaded):
	case settled:
		r.reload("file changed")
	}
}

func (r *usersReloader) setStale(stale bool) {
	if r.stale != nil {
		r.stale(stale)
	}
}

// sameFileState reports whether a and b are the same file with the same
// size and modification time: another file renamed into place (as
// `tokend user add` and most editors do), or an edit in place, is not.
func sameFileState(a, b os.FileInfo) bool {
	return a != nil && b != nil && os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// reload reads the users file and, if it loads, swaps it in.
func (r *usersReloader) reload(reason string) error {
	if r.path == "" {
		r.log.Info("no users file to reload in development mode", "reason", reason)
		return nil
	}
	old := r.auth.store.Load()
	users, fi, err := loadUsersFile(r.path)
	if err == nil {
		added, changed := diffUsers(old, users)
		if err = r.auth.swapUsers(users, changed); err == nil {
			r.loaded, r.failed = fi, false
			r.setStale(false)
			for _, w := range costWarnings(users, r.path) {
				r.log.Warn(w)
			}
			r.log.Info("users reloaded", "reason", reason, "file", r.path, "users", users.Len(), "added", added, "changed_or_removed", len(changed))
			if users.Len() == 0 {
				r.log.Warn("the users file has no users: every login is refused and /readyz answers 503 until one is added with `tokend user add NAME`", "file", r.path)
			}
			if r.onChange != nil && len(changed) > 0 {
				r.onChange(users, changed)
			}
			return nil
		}
	}
	r.failed = true
	r.setStale(true)
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
