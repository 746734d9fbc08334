package main

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// gateAuth blocks every check until the test lets it through, and tells
// the test when a check has started.
type gateAuth struct {
	started chan string
	release chan struct{}
}

func newGateAuth() *gateAuth {
	return &gateAuth{started: make(chan string, 16), release: make(chan struct{})}
}

func (g *gateAuth) Authenticate(_ context.Context, username, _ string) error {
	g.started <- username
	<-g.release
	return nil
}

// TestSlotsBusy: with every slot taken, a check waits at most maxWait and
// then gets a 503 that says when to retry; the checks holding the slots
// finish as usual.
func TestSlotsBusy(t *testing.T) {
	gate := newGateAuth()
	a := newSlotAuth(gate, 2, 20*time.Millisecond)
	done := make(chan error, 2)
	for _, user := range []string{"alice", "bob"} {
		go func() { done <- a.Authenticate(context.Background(), user, "pw") }()
		<-gate.started // holds a slot until released
	}
	err := a.Authenticate(context.Background(), "carol", "pw")
	var re *Error
	if !errors.As(err, &re) || re.Code != EUNAVAILABLE || re.RetryAfter != time.Second ||
		re.Message != "the server is busy checking other logins; try again in 1 second" {
		t.Fatalf("third check with both slots taken: %#v", err)
	}
	select {
	case user := <-gate.started:
		t.Fatalf("%s was checked beyond the slots", user)
	default:
	}
	close(gate.release)
	for range 2 {
		if err := <-done; err != nil {
			t.Errorf("check holding a slot: %v", err)
		}
	}
	if err := a.Authenticate(context.Background(), "carol", "pw"); err != nil {
		t.Errorf("with free slots: %v", err)
	}
}

// TestSlotsWaitTheirTurn: a check that gets a slot within maxWait runs.
func TestSlotsWaitTheirTurn(t *testing.T) {
	gate := newGateAuth()
	a := newSlotAuth(gate, 1, time.Minute)
	first := make(chan error, 1)
	go func() { first <- a.Authenticate(context.Background(), "alice", "pw") }()
	<-gate.started
	second := make(chan error, 1)
	go func() { second <- a.Authenticate(context.Background(), "bob", "pw") }()
	select {
	case user := <-gate.started:
		t.Fatalf("%s ran while the only slot was taken", user)
	case <-time.After(50 * time.Millisecond):
		// Not a timing assertion: only a broken semaphore lets bob in.
	}
	gate.release <- struct{}{}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if user := <-gate.started; user != "bob" {
		t.Fatalf("started %s", user)
	}
	gate.release <- struct{}{}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
}

// TestBusyHTTP: the 503 reaches the client with Retry-After and a
// problem+json body, and is not counted as a failed login.
func TestBusyHTTP(t *testing.T) {
	cfg := testConfig()
	cfg.BcryptMaxWait = 10 * time.Millisecond
	cfg.Limits = Limits{UserFailures: 1, UserFailuresPerHour: 1, AddrFailures: 1, AddrFailuresPerHour: 1, MaxKeys: 100}
	g := newGuardedServer(t, cfg, map[string]string{"alice": "correct horse", "bob": "battery staple"})
	started, release := make(chan struct{}), make(chan struct{})
	g.auth.bcrypt.compare = func(hash []byte, password string) bool {
		if password == "hold" {
			started <- struct{}{}
			<-release
		}
		return checkPassword(hash, password)
	}
	held := make(chan int, 2)
	for i, addr := range []string{"192.0.2.1:1", "192.0.2.2:1"} { // the test server has two slots
		go func() {
			status, _, _ := g.login(addr, fmt.Sprintf("mallory%d", i), "hold")
			held <- status
		}()
		<-started
	}
	want := problemBody(EUNAVAILABLE, "Service unavailable", 503, "the server is busy checking other logins; try again in 1 second")
	if status, retry, body := g.login(addrA, "alice", "correct horse"); status != 503 || retry != "1" || body != want {
		t.Errorf("busy: %d %q %s", status, retry, body)
	}
	close(release)
	for range 2 {
		if status := <-held; status != 401 {
			t.Errorf("held check: %d", status)
		}
	}
	// With budgets of one failure, a 503 counted as a failure would lock
	// alice and addrA now.
	if status, _, body := g.login(addrA, "alice", "correct horse"); status != 200 {
		t.Errorf("after the 503: %d %s", status, body)
	}
}

// TestSlotsClientGone: a client that leaves while waiting for a slot gets
// the 499 of a closed request, not the 503 of an overloaded server.
func TestSlotsClientGone(t *testing.T) {
	gate := newGateAuth()
	a := newSlotAuth(gate, 1, time.Minute)
	held := make(chan error, 1)
	go func() { held <- a.Authenticate(context.Background(), "alice", "pw") }()
	<-gate.started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := a.Authenticate(ctx, "bob", "pw")
	var e *Error
	if !errors.As(err, &e) || e.Code != ECANCELED || func() int { s, _, _ := problemKind(e.Code); return s }() != 499 || e.RetryAfter != 0 {
		t.Errorf("waiting check whose client left: %#v", err)
	}
	close(gate.release)
	if err := <-held; err != nil {
		t.Errorf("check holding the slot: %v", err)
	}
}
