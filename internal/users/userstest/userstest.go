// Package userstest is the conformance suite every users.Store runs: a new
// backend proves itself by passing it.
package userstest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"tokend/internal/users"
)

// Users is what every store under test holds: names chosen to catch
// quoting, case folding, trimming and prefix matching.
var Users = map[string]string{
	"alice":           "$2b$04$XUXTUrSe0EkRKAx4QeRxs.JcbL/Fyq.7B5/wnCdGI7dTrmpqPhb4S",
	"Bob":             "$2a$04$EfF1nIAJpGfmO5bKk6n16uPfmgDUhsNFrYvf0CfslzYl2jrJWmhMW",
	"o'brien":         "$2y$04$0q4YQHwSFkYxOo0Q0MDQ0.Rx0s4HQsVXWe8JfQqbpP2BD5aGZd3XK",
	"zoë":             "$2b$04$RgQqJH2GcF5sYQ5r8o2dqe1C2G0n6oWqjR9i8T9WJ7qg8qEeJ8D1K",
	"name with space": "$2b$04$u7C8b2vVXhQq0y6jVZ8aGe6VJ3Q0b2p2J3yP3m3nH4u5b8l0Q0r2W",
}

// NewStore returns a store holding exactly the given users (name → hash).
type NewStore func(t *testing.T, users map[string]string) users.Store

// Run runs the suite against the stores newStore makes.
func Run(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	t.Run("Lookup", func(t *testing.T) {
		s := newStore(t, Users)
		for name, want := range Users {
			got, err := s.Lookup(ctx, name)
			if err != nil || got != want {
				t.Errorf("Lookup(%q) = %q, %v; want %q, nil", name, got, err, want)
			}
		}
		for _, name := range []string{"ALICE", "bob", "alic", "alice ", " alice", "alice%", "a%", "_lice", "o''brien",
			"zoe", "' OR '1'='1", "alice' --", "", "nobody", "\x00"} {
			got, err := s.Lookup(ctx, name)
			if !errors.Is(err, users.ErrNotFound) || got != "" {
				t.Errorf("Lookup(%q) = %q, %v; want \"\", ErrNotFound", name, got, err)
			}
		}
	})
	t.Run("Check", func(t *testing.T) {
		if err := newStore(t, Users).Check(ctx); err != nil {
			t.Fatalf("Check = %v; want nil", err)
		}
	})
	t.Run("Sample", func(t *testing.T) {
		s := newStore(t, Users)
		got, err := s.Sample(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, h := range Users {
			want = append(want, h)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("Sample(100) = %d hashes, not the %d stored", len(got), len(want))
		}
		if got, err := s.Sample(ctx, 2); err != nil || len(got) != 2 {
			t.Fatalf("Sample(2) = %d hashes, %v; want 2", len(got), err)
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		s := newStore(t, Users)
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		for i := range 100 {
			wg.Go(func() {
				name := []string{"alice", "Bob", "nobody", "zoë"}[i%4]
				got, err := s.Lookup(ctx, name)
				switch {
				case name == "nobody" && !errors.Is(err, users.ErrNotFound):
					errs <- err
				case name != "nobody" && (err != nil || got != Users[name]):
					errs <- errors.Join(errors.New("wrong hash for "+name), err)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
	t.Run("CanceledNeverNotFound", func(t *testing.T) {
		// A store that cannot answer must never say "no such user": that
		// would turn an outage into wrong-password answers.
		s := newStore(t, Users)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		got, err := s.Lookup(cctx, "alice")
		if errors.Is(err, users.ErrNotFound) || (err == nil && got != Users["alice"]) {
			t.Fatalf("Lookup(canceled) = %q, %v; want the hash or ErrUnavailable", got, err)
		}
		if err != nil && !errors.Is(err, users.ErrUnavailable) {
			t.Fatalf("Lookup(canceled) error %v does not wrap ErrUnavailable", err)
		}
	})
}
