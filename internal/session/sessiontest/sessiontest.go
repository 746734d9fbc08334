// Package sessiontest is the conformance suite every session.Store runs:
// a backend proves itself by passing it.
package sessiontest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"tokend/internal/session"
)

// Run runs the suite; newStore returns an empty store for one subtest.
func Run(t *testing.T, newStore func(t *testing.T) session.Store) {
	// Redis keeps milliseconds: every time here is a whole one. The
	// clock is near the real one, since Redis expires keys by its own.
	base := time.Now().Truncate(time.Millisecond)
	ctx := context.Background()
	newSession := func(user string, created time.Time) session.Session {
		return session.Session{User: user, Credential: "cred-" + user, Created: created, LastSeen: created,
			IdleUntil: created.Add(2 * time.Hour), EndsAt: created.Add(12 * time.Hour)}
	}
	create := func(t *testing.T, st session.Store, s session.Session, perUser int) string {
		t.Helper()
		_, key := session.NewSecret()
		if _, err := st.Create(ctx, key, s, perUser); err != nil {
			t.Fatalf("Create: %v", err)
		}
		return key
	}

	t.Run("CreateAndTouch", func(t *testing.T) {
		st := newStore(t)
		key := create(t, st, newSession("alice", base), 0)
		at := base.Add(30 * time.Minute)
		got, err := st.Touch(ctx, key, at, at.Add(2*time.Hour))
		if err != nil {
			t.Fatalf("Touch: %v", err)
		}
		want := session.Session{ID: key[:session.IDLen], User: "alice", Credential: "cred-alice", Created: base,
			LastSeen: at, IdleUntil: at.Add(2 * time.Hour), EndsAt: base.Add(12 * time.Hour)}
		if err := same(got, want); err != nil {
			t.Error(err)
		}
	})
	t.Run("UnknownKey", func(t *testing.T) {
		st := newStore(t)
		_, key := session.NewSecret()
		if _, err := st.Touch(ctx, key, base, base.Add(time.Hour)); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("Touch of an unknown key: %v, want ErrNotFound", err)
		}
		if err := st.Delete(ctx, key); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("Delete of an unknown key: %v, want ErrNotFound", err)
		}
	})
	t.Run("IdleTimeout", func(t *testing.T) {
		st := newStore(t)
		key := create(t, st, newSession("alice", base), 0)
		late := base.Add(2 * time.Hour) // exactly at the idle deadline: ended
		if _, err := st.Touch(ctx, key, late, late.Add(2*time.Hour)); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("Touch at the idle deadline: %v, want ErrNotFound", err)
		}
		// An ended session is gone, even for a request that claims an earlier time.
		if _, err := st.Touch(ctx, key, base.Add(time.Minute), base.Add(time.Hour)); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("Touch after the idle deadline revived it: %v", err)
		}
	})
	t.Run("AbsoluteLifetime", func(t *testing.T) {
		st := newStore(t)
		key := create(t, st, newSession("alice", base), 0)
		// Hourly renewals keep it going until EndsAt, and the idle
		// deadline never passes EndsAt.
		for h := 1; h < 12; h++ {
			at := base.Add(time.Duration(h) * time.Hour)
			got, err := st.Touch(ctx, key, at, at.Add(2*time.Hour))
			if err != nil {
				t.Fatalf("renewal at hour %d: %v", h, err)
			}
			if want := min(at.Add(2*time.Hour).UnixMilli(), base.Add(12*time.Hour).UnixMilli()); got.IdleUntil.UnixMilli() != want {
				t.Fatalf("hour %d: IdleUntil %v, want %v", h, got.IdleUntil, time.UnixMilli(want))
			}
		}
		at := base.Add(12 * time.Hour)
		if _, err := st.Touch(ctx, key, at, at.Add(2*time.Hour)); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("Touch at EndsAt: %v, want ErrNotFound", err)
		}
	})
	t.Run("Delete", func(t *testing.T) {
		st := newStore(t)
		key := create(t, st, newSession("alice", base), 0)
		other := create(t, st, newSession("alice", base), 0)
		if err := st.Delete(ctx, key); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, err := st.Touch(ctx, key, base, base.Add(time.Hour)); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("Touch after Delete: %v, want ErrNotFound", err)
		}
		if err := st.Delete(ctx, key); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("second Delete: %v, want ErrNotFound", err)
		}
		if _, err := st.Touch(ctx, other, base, base.Add(time.Hour)); err != nil {
			t.Errorf("the user's other session ended too: %v", err)
		}
	})
	t.Run("ListAndDeleteUser", func(t *testing.T) {
		st := newStore(t)
		a1 := create(t, st, newSession("alice", base), 0)
		b1 := create(t, st, newSession("bob", base.Add(time.Second)), 0)
		a2 := create(t, st, newSession("alice", base.Add(2*time.Second)), 0)
		ended := create(t, st, newSession("alice", base.Add(-3*time.Hour)), 0) // idle since an hour ago
		_ = ended
		if err := ids(st.List(ctx, "alice", base.Add(time.Minute))).equal(a1, a2); err != nil {
			t.Errorf("List(alice): %v", err)
		}
		if err := ids(st.List(ctx, "", base.Add(time.Minute))).equal(a1, b1, a2); err != nil {
			t.Errorf("List(all): %v", err)
		}
		if err := ids(st.List(ctx, "carol", base)).equal(); err != nil {
			t.Errorf("List(carol): %v", err)
		}
		n, err := st.DeleteUser(ctx, "alice")
		if err != nil || n < 2 || n > 3 { // the ended one may be gone already
			t.Fatalf("DeleteUser(alice) = %d, %v; want 2 or 3", n, err)
		}
		if err := ids(st.List(ctx, "", base.Add(time.Minute))).equal(b1); err != nil {
			t.Errorf("List(all) after DeleteUser: %v", err)
		}
		for _, k := range []string{a1, a2} {
			if _, err := st.Touch(ctx, k, base.Add(time.Minute), base.Add(time.Hour)); !errors.Is(err, session.ErrNotFound) {
				t.Errorf("alice's session still renews after DeleteUser: %v", err)
			}
		}
		if n, err := st.DeleteUser(ctx, "alice"); n != 0 || err != nil {
			t.Errorf("second DeleteUser = %d, %v; want 0, nil", n, err)
		}
	})
	t.Run("DeleteID", func(t *testing.T) {
		st := newStore(t)
		key := create(t, st, newSession("alice", base), 0)
		keep := create(t, st, newSession("alice", base), 0)
		for _, bad := range []string{"", "*", key[:8], key[:15] + "*", key} {
			if err := st.DeleteID(ctx, bad); !errors.Is(err, session.ErrNotFound) {
				t.Errorf("DeleteID(%q): %v, want ErrNotFound", bad, err)
			}
		}
		if err := st.DeleteID(ctx, key[:session.IDLen]); err != nil {
			t.Fatalf("DeleteID: %v", err)
		}
		if _, err := st.Touch(ctx, key, base, base.Add(time.Hour)); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("Touch after DeleteID: %v", err)
		}
		if _, err := st.Touch(ctx, keep, base, base.Add(time.Hour)); err != nil {
			t.Errorf("the other session ended too: %v", err)
		}
	})
	t.Run("PerUserCap", func(t *testing.T) {
		st := newStore(t)
		var keys []string
		for i := range 3 {
			keys = append(keys, create(t, st, newSession("alice", base.Add(time.Duration(i)*time.Second)), 3))
		}
		bob := create(t, st, newSession("bob", base), 3)
		_, key := session.NewSecret()
		evicted, err := st.Create(ctx, key, newSession("alice", base.Add(3*time.Second)), 3)
		if err != nil || evicted != 1 {
			t.Fatalf("Create beyond the cap = %d, %v; want 1 evicted", evicted, err)
		}
		if err := ids(st.List(ctx, "alice", base.Add(time.Minute))).equal(keys[1], keys[2], key); err != nil {
			t.Errorf("after the cap: %v", err)
		}
		if _, err := st.Touch(ctx, bob, base.Add(time.Minute), base.Add(time.Hour)); err != nil {
			t.Errorf("another user's session was evicted: %v", err)
		}
	})
	t.Run("ConcurrentLogins", func(t *testing.T) {
		// 100 logins of one user at once, with a cap of 5: exactly 5 are left.
		st := newStore(t)
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		for i := range 100 {
			wg.Go(func() {
				_, key := session.NewSecret()
				if _, err := st.Create(ctx, key, newSession("alice", base.Add(time.Duration(i)*time.Millisecond)), 5); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		list, err := st.List(ctx, "alice", base.Add(time.Minute))
		if err != nil || len(list) != 5 {
			t.Errorf("after 100 logins with a cap of 5: %d sessions, %v", len(list), err)
		}
	})
	t.Run("ConcurrentRenewAndDelete", func(t *testing.T) {
		// Renewals racing a logout: once Delete has returned, no renewal succeeds.
		st := newStore(t)
		key := create(t, st, newSession("alice", base), 0)
		var wg sync.WaitGroup
		for i := range 50 {
			wg.Go(func() {
				at := base.Add(time.Duration(i) * time.Millisecond)
				st.Touch(ctx, key, at, at.Add(2*time.Hour))
			})
		}
		if err := st.Delete(ctx, key); err != nil {
			t.Errorf("Delete: %v", err)
		}
		wg.Wait()
		if _, err := st.Touch(ctx, key, base.Add(time.Second), base.Add(time.Hour)); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("a renewal revived a deleted session: %v", err)
		}
	})
	t.Run("Ping", func(t *testing.T) {
		if err := newStore(t).Ping(ctx); err != nil {
			t.Errorf("Ping: %v", err)
		}
	})
}

// same compares two sessions field by field, times to the millisecond.
func same(got, want session.Session) error {
	g := fmt.Sprintf("%s %s %s %d %d %d %d", got.ID, got.User, got.Credential, got.Created.UnixMilli(), got.LastSeen.UnixMilli(), got.IdleUntil.UnixMilli(), got.EndsAt.UnixMilli())
	w := fmt.Sprintf("%s %s %s %d %d %d %d", want.ID, want.User, want.Credential, want.Created.UnixMilli(), want.LastSeen.UnixMilli(), want.IdleUntil.UnixMilli(), want.EndsAt.UnixMilli())
	if g != w {
		return fmt.Errorf("got  %s\nwant %s", g, w)
	}
	return nil
}

type listed struct {
	list []session.Session
	err  error
}

func ids(list []session.Session, err error) listed { return listed{list, err} }

// equal checks that the list holds exactly the sessions of keys, in order.
func (l listed) equal(keys ...string) error {
	if l.err != nil {
		return l.err
	}
	var got, want []string
	for _, s := range l.list {
		got = append(got, s.ID)
	}
	for _, k := range keys {
		want = append(want, k[:session.IDLen])
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		return fmt.Errorf("got IDs %v, want %v", got, want)
	}
	return nil
}
