package main

// Benchmarks of the login path, run by `make bench`. The targets of issue 3
// are compared as ratios or against generous bounds within one run, never
// in a timed test: the build machine is shared and noisy.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

const (
	benchUser     = "alice"
	benchPassword = "correct horse battery staple"
	benchBody     = `{"username":"alice","password":"correct horse battery staple"}`
)

// benchConfig is testConfig with tokend's default limits, cache and wait.
func benchConfig(b *testing.B) *Config {
	cfg := testConfig()
	s := &settings{lookup: mapEnv(nil)}
	s.guard(cfg)
	if err := s.err(); err != nil {
		b.Fatal(err)
	}
	return cfg
}

// unlimited lifts the per-address request limit so one benchmark client
// can send as fast as it likes; the limiter still runs on every request.
func unlimited(cfg *Config) *Config {
	cfg.Limits.AddrRequests = 1 << 30
	cfg.Limits.AddrRequestsPerSecond = 1e12
	cfg.Limits.AddrFailures = 1 << 30
	cfg.Limits.AddrFailuresPerHour = 1e12
	cfg.Limits.UserFailures = 1 << 30
	cfg.Limits.UserFailuresPerHour = 1e12
	return cfg
}

// benchStack is the auth stack with alice hashed at tokend's real cost and
// tokend's bcrypt slots, as serve builds it.
func benchStack(b *testing.B, cfg *Config) *authStack {
	b.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(benchPassword), userCost)
	if err != nil {
		b.Fatal(err)
	}
	auth, err := newAuthStack(cfg, newUsers(map[string][]byte{benchUser: hash}), bcryptSlots(cfg), time.Now)
	if err != nil {
		b.Fatal(err)
	}
	return auth
}

// benchServer serves h on a loopback port, as tokend's server would.
func benchServer(b *testing.B, h http.Handler) (url string, client *http.Client) {
	b.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ReadHeaderTimeout = 5 * time.Second
	srv.Config.ReadTimeout = 10 * time.Second
	srv.Config.WriteTimeout = 10 * time.Second
	srv.Config.IdleTimeout = 60 * time.Second
	srv.Start()
	b.Cleanup(srv.Close)
	tr := &http.Transport{MaxIdleConnsPerHost: 128, IdleConnTimeout: 60 * time.Second}
	b.Cleanup(tr.CloseIdleConnections)
	return srv.URL, &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func tokenServer(b *testing.B, cfg *Config, auth Authenticator) http.Handler {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return NewServer(log, cfg, auth, nil, newMetrics(), time.Now)
}

// post sends one login and returns its status and how long it took.
func post(client *http.Client, url, body, xff string) (int, time.Duration, error) {
	req, err := http.NewRequest("POST", url+"/token", strings.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, time.Since(start), err
}

// BenchmarkLoginCold is a login that bcrypt must check (the cache is off):
// POST /token over loopback with alice hashed at cost 12.
func BenchmarkLoginCold(b *testing.B) {
	cfg := unlimited(benchConfig(b))
	cfg.AuthCacheTTL = 0
	url, client := benchServer(b, tokenServer(b, cfg, benchStack(b, cfg)))
	var total time.Duration
	for b.Loop() {
		status, d, err := post(client, url, benchBody, "")
		if err != nil || status != 200 {
			b.Fatalf("login: %d %v", status, err)
		}
		total += d
	}
	b.ReportMetric(total.Seconds()*1e3/float64(b.N), "ms/login")
}

// BenchmarkLoginCached is a repeat login answered by the verification
// cache, through the login limits: the password check alone, no HTTP.
func BenchmarkLoginCached(b *testing.B) {
	cfg := unlimited(benchConfig(b))
	st := benchStack(b, cfg)
	auth := st.limits.guard(st, cfg.BcryptMaxWait)
	ctx := withClient(netip.MustParseAddr("198.51.100.7"))
	if err := auth.Authenticate(ctx, benchUser, benchPassword); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for b.Loop() {
		if err := auth.Authenticate(ctx, benchUser, benchPassword); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(time.Since(start).Seconds()*1e6/float64(b.N), "µs/login")
}

// BenchmarkTokenThroughput measures POST /token with a warm cache beside a
// handler that answers constant JSON (a real token response, so the bytes
// on the wire match), over the same loopback HTTP, the same client and the
// same body, in alternating rounds so that noise hits all alike. The
// constant handler is measured twice: bare, and mounted at /token behind
// tokend's own middleware (request log, metrics, CORS, security headers,
// client address), which every route pays for; token/const-stack is
// therefore what the login path itself costs. A fourth server, tokend's
// handler with the password check accepting everyone and no limits, is
// the control that shows what the login guard costs.
func BenchmarkTokenThroughput(b *testing.B) {
	cfg := unlimited(benchConfig(b))
	tokenURL, client := benchServer(b, tokenServer(b, cfg, benchStack(b, cfg)))
	if status, _, err := post(client, tokenURL, benchBody, ""); err != nil || status != 200 {
		b.Fatalf("warm-up login: %d %v", status, err)
	}
	minter := NewMinter(cfg.AccountSID, cfg.APIKeySID, cfg.APIKeySecret, "")
	token, claims, _ := minter.Mint(time.Now(), time.Hour, buildGrants(cfg, cfg.DefaultGrants, benchUser, grantOptions{}))
	constant := []byte(fmt.Sprintf(`{"token":%q,"identity":"alice","expires_at":%q}`+"\n", token, time.Unix(claims.ExpiresAt, 0).UTC().Format(time.RFC3339)))
	constHandler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(constant)
	})
	constURL, _ := benchServer(b, constHandler)
	mux := http.NewServeMux()
	mux.Handle("/token", constHandler)
	constStackURL, _ := benchServer(b, withMiddleware(mux, slog.New(slog.NewTextHandler(io.Discard, nil)), cfg, newMetrics()))
	bare := testConfig() // no limits
	controlURL, _ := benchServer(b, tokenServer(b, bare, acceptAll{}))

	const (
		workers = 8
		rounds  = 3
		round   = 500 * time.Millisecond
	)
	var tokenN, constN, constStackN, controlN int64
	b.ResetTimer()
	for range rounds {
		constN += countRequests(b, client, constURL, workers, round)
		constStackN += countRequests(b, client, constStackURL, workers, round)
		tokenN += countRequests(b, client, tokenURL, workers, round)
		controlN += countRequests(b, client, controlURL, workers, round)
	}
	b.StopTimer()
	secs := (rounds * round).Seconds()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(tokenN)/secs, "token-req/s")
	b.ReportMetric(float64(constN)/secs, "const-req/s")
	b.ReportMetric(float64(constStackN)/secs, "const-stack-req/s")
	b.ReportMetric(float64(tokenN)/float64(constN), "token/const")
	b.ReportMetric(float64(tokenN)/float64(constStackN), "token/const-stack")
	b.ReportMetric(float64(tokenN)/float64(controlN), "token/unguarded")
}

// acceptAll is the control of BenchmarkTokenThroughput: every login passes
// without a check, so its server measures the rest of the handler.
type acceptAll struct{}

func (acceptAll) Authenticate(context.Context, string, string) error { return nil }

// countRequests sends logins from workers clients for d and counts the 200s.
func countRequests(b *testing.B, client *http.Client, url string, workers int, d time.Duration) int64 {
	var n atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for range workers {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				status, _, err := post(client, url, benchBody, "")
				if err != nil || status != 200 {
					b.Errorf("%s: %d %v", url, status, err)
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	return n.Load()
}

// BenchmarkLoginUnderFlood measures a legitimate user with a warm cache
// while a flood of wrong passwords keeps every bcrypt slot busy. The flood
// is the worst the limits cannot stop: each request comes from a new
// address (through a trusted proxy) with a new username, so every one
// reaches bcrypt. The legitimate user, on its own addresses, logs in every
// 2 ms; its p99 is the figure.
func BenchmarkLoginUnderFlood(b *testing.B) {
	cfg := benchConfig(b) // tokend's default limits
	cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	url, client := benchServer(b, tokenServer(b, cfg, benchStack(b, cfg)))
	if status, _, err := post(client, url, benchBody, "198.51.100.1"); err != nil || status != 200 {
		b.Fatalf("warm-up login: %d %v", status, err)
	}

	const (
		floodWorkers = 32
		floodFor     = 3 * time.Second
		every        = 2 * time.Millisecond
	)
	var (
		floodStatus sync.Map // status -> *atomic.Int64
		next        atomic.Int64
		wg          sync.WaitGroup
	)
	b.ResetTimer()
	deadline := time.Now().Add(floodFor)
	for range floodWorkers {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				i := next.Add(1)
				body := fmt.Sprintf(`{"username":"bot%d","password":"guess"}`, i)
				status, _, err := post(client, url, body, fmt.Sprintf("203.0.%d.%d", byte(i>>8), byte(i)))
				if err != nil {
					b.Errorf("flood: %v", err)
					return
				}
				c, _ := floodStatus.LoadOrStore(status, new(atomic.Int64))
				c.(*atomic.Int64).Add(1)
			}
		})
	}
	time.Sleep(200 * time.Millisecond) // let the flood fill the slots first
	var latencies []time.Duration
	for i := 0; time.Now().Before(deadline); i++ {
		start := time.Now()
		// 250 addresses, each well within its request budget.
		status, d, err := post(client, url, benchBody, fmt.Sprintf("198.51.100.%d", 1+i%250))
		if err != nil || status != 200 {
			b.Fatalf("legitimate login under flood: %d %v", status, err)
		}
		latencies = append(latencies, d)
		time.Sleep(every - time.Since(start))
	}
	wg.Wait()
	b.StopTimer()
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return latencies[int(math.Ceil(p*float64(len(latencies))))-1].Seconds() * 1e3
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(len(latencies)), "logins")
	floodStatus.Range(func(k, v any) bool {
		b.ReportMetric(float64(v.(*atomic.Int64).Load()), fmt.Sprintf("flood-%d", k))
		return true
	})
}

// BenchmarkUnknownVsWrong compares the median time of a login as an unknown
// user with that of a known user with a wrong password, through the whole
// password stack at tokend's cost, taken in turns.
func BenchmarkUnknownVsWrong(b *testing.B) {
	cfg := unlimited(benchConfig(b))
	st := benchStack(b, cfg)
	auth := st.limits.guard(st, cfg.BcryptMaxWait)
	ctx := withClient(netip.MustParseAddr("198.51.100.7"))
	const samples = 15
	var unknown, wrong []time.Duration
	timeLogin := func(user string) time.Duration {
		start := time.Now()
		if err := auth.Authenticate(ctx, user, "not the password"); err != errBadCredentials {
			b.Fatalf("%s: %v", user, err)
		}
		return time.Since(start)
	}
	b.ResetTimer()
	for i := range samples {
		if i%2 == 0 {
			unknown = append(unknown, timeLogin("mallory"))
			wrong = append(wrong, timeLogin(benchUser))
		} else {
			wrong = append(wrong, timeLogin(benchUser))
			unknown = append(unknown, timeLogin("mallory"))
		}
	}
	b.StopTimer()
	median := func(d []time.Duration) float64 {
		slices.Sort(d)
		return d[len(d)/2].Seconds() * 1e3
	}
	mu, mw := median(unknown), median(wrong)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(mu, "unknown-ms")
	b.ReportMetric(mw, "wrong-ms")
	b.ReportMetric(mu/mw, "unknown/wrong")
}

// BenchmarkMixedCosts times, in turns, the logins a guesser can tell apart
// only by time when a users file mixes bcrypt costs (htpasswd -B writes 5,
// `tokend user add` 12): an unknown user, a wrong and a right password for
// the cost-5 user, and a wrong password for the cost-12 user. It reports
// each median and its ratio to the unknown user's, which should all be
// near 1. The check runs bcryptAuth alone: no cache, no slots.
func BenchmarkMixedCosts(b *testing.B) {
	low, err := bcrypt.GenerateFromPassword([]byte(benchPassword), 5)
	if err != nil {
		b.Fatal(err)
	}
	high, err := bcrypt.GenerateFromPassword([]byte(benchPassword), userCost)
	if err != nil {
		b.Fatal(err)
	}
	auth, _ := newBcryptAuth(newUserStore(newUsers(map[string][]byte{"low": low, "high": high})))
	logins := []struct {
		name, user, password string
		want                 error
	}{
		{"unknown", "mallory", benchPassword, errBadCredentials},
		{"low-wrong", "low", "not the password", errBadCredentials},
		{"low-right", "low", benchPassword, nil},
		{"high-wrong", "high", "not the password", errBadCredentials},
	}
	const samples = 7
	times := make([][]time.Duration, len(logins))
	b.ResetTimer()
	for i := range samples {
		for j := range logins {
			l := logins[(i+j)%len(logins)] // each kind in each position in turn
			start := time.Now()
			if err := auth.Authenticate(context.Background(), l.user, l.password); err != l.want {
				b.Fatalf("%s: %v", l.name, err)
			}
			times[(i+j)%len(logins)] = append(times[(i+j)%len(logins)], time.Since(start))
		}
	}
	b.StopTimer()
	median := func(d []time.Duration) float64 {
		slices.Sort(d)
		return d[len(d)/2].Seconds() * 1e3
	}
	unknown := median(times[0])
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(unknown, "unknown-ms")
	for j, l := range logins[1:] {
		m := median(times[j+1])
		b.ReportMetric(m, l.name+"-ms")
		b.ReportMetric(m/unknown, l.name+"/unknown")
	}
}
