package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"tokend/internal/session"
)

// sessionAdmin is what `tokend session` asks: a running tokend's admin
// endpoints (adminClient), or the Redis store itself (adminStore).
type sessionAdmin interface {
	list(ctx context.Context, user string) (sessionList, error)
	revokeUser(ctx context.Context, user string) (int, error)
	revokeID(ctx context.Context, id string) error
}

// runSession is `tokend session list [USER]` and `tokend session revoke
// USER|ID`. It asks the running tokend on its METRICS_ADDR listener (the
// private one), which holds the sessions whatever the store; without
// METRICS_ADDR and with REDIS_URL, it asks Redis directly.
func runSession(args []string, getenv func(string) string, now func() time.Time, stdout, stderr io.Writer) error {
	sub, args, err := subcommand("session", "list or revoke", args, stderr)
	if err != nil {
		return err
	}
	fs := newFlagSet("session "+sub, stderr)
	envFile := envFileFlag(fs)
	adminURL := fs.String("admin", "", "the running tokend's METRICS_ADDR as a `URL` (default: from METRICS_ADDR)")
	byUser := fs.Bool("user", false, "revoke: the argument is a user name, even if it looks like a session ID")
	lo, hi := 0, 1
	if sub == "revoke" {
		lo = 1
	}
	if err := parseArgs(fs, args, lo, hi); err != nil {
		return err
	}
	admin, closeAdmin, err := openSessionAdmin(*adminURL, *envFile, getenv, now)
	if err != nil {
		return err
	}
	defer closeAdmin()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	switch sub {
	case "list":
		list, err := admin.list(ctx, fs.Arg(0))
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tUSER\tSTARTED\tLAST USED\tENDS IF IDLE\tENDS")
		for _, s := range list.Sessions {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.User, s.Created, s.LastSeen, s.IdleExpiresAt, s.ExpiresAt)
		}
		return tw.Flush()
	default: // revoke
		arg := fs.Arg(0)
		if !*byUser && session.ValidID(arg) {
			if err := admin.revokeID(ctx, arg); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "session %s: 1 session(s) ended\n", arg)
			return nil
		}
		n, err := admin.revokeUser(ctx, arg)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "user %q: %d session(s) ended\n", arg, n)
		return nil
	}
}

// openSessionAdmin picks what `tokend session` asks: --admin, else
// METRICS_ADDR, else REDIS_URL's store.
func openSessionAdmin(adminURL, envFile string, getenv func(string) string, now func() time.Time) (sessionAdmin, func(), error) {
	if adminURL != "" {
		return newAdminClient(adminURL), func() {}, nil
	}
	lookup, _, err := envLookup(envFile, getenv)
	if err != nil {
		return nil, nil, err
	}
	metrics, redisURL := strings.TrimSpace(lookup("METRICS_ADDR")), strings.TrimSpace(lookup("REDIS_URL"))
	switch {
	case metrics != "":
		base, err := adminBase(metrics)
		if err != nil {
			return nil, nil, err
		}
		return newAdminClient(base), func() {}, nil
	case redisURL == "":
		return nil, nil, errors.New("the session commands talk to a running tokend on its METRICS_ADDR listener (or to Redis with REDIS_URL), and neither is set: set one as the server has it, or pass --admin http://HOST:PORT")
	}
	rdb, err := newRedisClient(redisURL)
	if err != nil {
		return nil, nil, err
	}
	prefix := strings.TrimSpace(lookup("REDIS_PREFIX"))
	if prefix == "" {
		prefix = defaultRedisPrefix
	}
	return adminStore{session.NewRedisStore(rdb, prefix), now}, func() { rdb.Close() }, nil
}

// list, revokeUser and revokeID make adminClient a sessionAdmin, through
// the running tokend's /admin/sessions endpoints.
func (a adminClient) list(ctx context.Context, user string) (sessionList, error) {
	path := "/admin/sessions"
	if user != "" {
		path += "?user=" + url.QueryEscape(user)
	}
	var list sessionList
	return list, a.call(ctx, http.MethodGet, path, &list)
}

func (a adminClient) revokeUser(ctx context.Context, user string) (int, error) {
	var res revokeResult
	err := a.call(ctx, http.MethodDelete, "/admin/sessions?user="+url.QueryEscape(user), &res)
	return res.Ended, err
}

func (a adminClient) revokeID(ctx context.Context, id string) error {
	var res revokeResult
	return a.call(ctx, http.MethodDelete, "/admin/sessions/"+id, &res)
}

// adminStore asks the session store itself: Redis, which outlives and is
// shared by the replicas.
type adminStore struct {
	store session.Store
	now   func() time.Time
}

func (a adminStore) list(ctx context.Context, user string) (sessionList, error) {
	list, err := a.store.List(ctx, user, a.now())
	return listOf(list), err
}

func (a adminStore) revokeUser(ctx context.Context, user string) (int, error) {
	return a.store.DeleteUser(ctx, user)
}

func (a adminStore) revokeID(ctx context.Context, id string) error {
	err := a.store.DeleteID(ctx, id)
	if errors.Is(err, session.ErrNotFound) {
		return fmt.Errorf("no live session has the ID %q; list them with `tokend session list`", id)
	}
	return err
}
