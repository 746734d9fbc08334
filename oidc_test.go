package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const testClientID = "tokend-test-client"

// testIdP is a small OpenID provider running in the test: it serves a
// discovery document and a key set (both as go-jose marshals them) and
// signs ID tokens with its keys. It can be taken down (503 on every
// request) and its keys rotated, and it counts key set fetches.
type testIdP struct {
	srv         *httptest.Server
	mu          sync.Mutex
	keys        map[string]crypto.Signer // kid -> private key, published
	down        atomic.Bool
	requests    atomic.Int64 // every request, answered or not
	jwksFetches atomic.Int64
}

func newTestIdP(t testing.TB) *testIdP {
	t.Helper()
	p := &testIdP{keys: map[string]crypto.Signer{}}
	p.addKey(t, "key-1")
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                p.srv.URL,
			"jwks_uri":                              p.srv.URL + "/jwks",
			"authorization_endpoint":                p.srv.URL + "/authorize",
			"token_endpoint":                        p.srv.URL + "/token",
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
		})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		p.jwksFetches.Add(1)
		p.mu.Lock()
		var set jose.JSONWebKeySet
		for kid, k := range p.keys {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public(), KeyID: kid, Use: "sig", Algorithm: algOf(k)})
		}
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(set)
	})
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		if p.down.Load() {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func algOf(k crypto.Signer) string {
	if _, ok := k.(*ecdsa.PrivateKey); ok {
		return "ES256"
	}
	return "RS256"
}

// addKey publishes a new key: RSA for kids starting "key-", else P-256.
func (p *testIdP) addKey(t testing.TB, kid string) crypto.Signer {
	t.Helper()
	var k crypto.Signer
	var err error
	if strings.HasPrefix(kid, "key-") {
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.keys[kid] = k
	p.mu.Unlock()
	return k
}

func (p *testIdP) removeKey(kid string) {
	p.mu.Lock()
	delete(p.keys, kid)
	p.mu.Unlock()
}

func (p *testIdP) key(kid string) crypto.Signer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keys[kid]
}

// claims are an ID token's claims for the test client at now.
func (p *testIdP) claims(now time.Time, sub string) map[string]any {
	return map[string]any{
		"iss": p.srv.URL, "aud": testClientID, "sub": sub,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

// sign signs claims with key, naming kid in the header.
func signIDToken(t testing.TB, key crypto.Signer, kid string, claims map[string]any) string {
	t.Helper()
	alg := jose.SignatureAlgorithm(algOf(key))
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// handMadeJWT builds a JWT with any header, signed with HMAC-SHA256 under
// hmacKey, or unsigned when hmacKey is nil: the forgeries go-jose will not make.
func handMadeJWT(header, claims map[string]any, hmacKey []byte) string {
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	if hmacKey == nil {
		return input + "."
	}
	mac := hmac.New(sha256.New, hmacKey)
	mac.Write([]byte(input))
	return input + "." + enc.EncodeToString(mac.Sum(nil))
}

func testOIDCConfig(issuer string) *OIDCConfig {
	return &OIDCConfig{
		Issuer: issuer, Audience: testClientID, IdentityClaim: "sub", IdentityMap: "none",
		Algorithms: asymmetricAlgorithms, ClockSkew: time.Minute, JWKSRefresh: 15 * time.Minute,
	}
}

// oidcServer is tokend with ID token logins from idp (and alice's password),
// on a clock the test moves.
type oidcServer struct {
	http.Handler
	idp   *testIdP
	login *oidcLogin
	clock *testClock
}

func newOIDCServer(t testing.TB, idp *testIdP, edit func(*OIDCConfig), discover bool) *oidcServer {
	t.Helper()
	return newOIDCServerLimits(t, idp, edit, discover, Limits{AddrFailures: 1000, AddrFailuresPerHour: 1000, MaxKeys: 100})
}

func newOIDCServerLimits(t testing.TB, idp *testIdP, edit func(*OIDCConfig), discover bool, limits Limits) *oidcServer {
	t.Helper()
	oc := testOIDCConfig(idp.srv.URL)
	if edit != nil {
		edit(oc)
	}
	clock := &testClock{t: time.Now().Truncate(time.Second)}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	login := newOIDCLogin(oc, log, idp.srv.Client(), clock.now)
	if discover {
		if _, err := login.discover(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	store := testUsers(t, map[string]string{"alice": "correct horse"})
	auth, err := newBcryptAuth(store)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.OIDC = oc
	cfg.DemoPage = true
	cfg.Limits = limits
	h := NewServer(log, cfg, auth, store, newMetrics(), clock.now, withOIDC(login))
	return &oidcServer{Handler: h, idp: idp, login: login, clock: clock}
}

func (s *oidcServer) post(token string) *httptest.ResponseRecorder {
	return serveOne(s, "POST", "/token", "", "Bearer "+token, "")
}

func problemDetail(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var p problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	return p.Detail
}

// TestOIDCLogin checks the answers to good and bad ID tokens: status,
// challenge and detail, exactly.
func TestOIDCLogin(t *testing.T) {
	idp := newTestIdP(t)
	s := newOIDCServer(t, idp, nil, true)
	now := s.clock.now()
	good := idp.claims(now, "user_42")
	with := func(k string, v any) map[string]any {
		c := idp.claims(now, "user_42")
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	pubDER, _ := x509.MarshalPKIXPublicKey(idp.key("key-1").Public())
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	key1 := idp.key("key-1")
	for _, tt := range []struct {
		name, token string
		status      int
		detail      string
	}{
		{"good", signIDToken(t, key1, "key-1", good), 200, ""},
		{"expired", signIDToken(t, key1, "key-1", with("exp", now.Add(-2*time.Minute).Unix())), 401,
			fmt.Sprintf("the ID token expired at %s; ask the provider's SDK for a fresh one (getIdToken) and send it again", now.Add(-2*time.Minute).UTC().Format(time.RFC3339))},
		{"expired within the clock skew", signIDToken(t, key1, "key-1", with("exp", now.Add(-30*time.Second).Unix())), 200, ""},
		{"no exp", signIDToken(t, key1, "key-1", with("exp", nil)), 401, "the ID token has no exp (expiry) claim"},
		{"another audience", signIDToken(t, key1, "key-1", with("aud", "another-app")), 401,
			"the ID token is for another audience; ask the provider for an ID token for this app's client ID (OIDC_AUDIENCE)"},
		{"another issuer", signIDToken(t, key1, "key-1", with("iss", "https://evil.example")), 401,
			"the ID token was issued by another issuer; this server accepts ID tokens from " + idp.srv.URL},
		{"signed by another key with a known kid", signIDToken(t, otherKey, "key-1", good), 401,
			"the ID token has a signature that does not verify; it was altered or not issued by " + idp.srv.URL},
		{"alg none", handMadeJWT(map[string]any{"alg": "none", "kid": "key-1"}, good, nil), 401,
			"the ID token is not a signed JWT (three base64url parts separated by dots); send the provider's ID token, not its access token"},
		{"HS256 signed with the public key", handMadeJWT(map[string]any{"alg": "HS256", "kid": "key-1", "typ": "JWT"}, good, pubPEM), 401,
			"the ID token is signed with an algorithm this server does not accept; it accepts " + strings.Join(asymmetricAlgorithms, ", ")},
		{"no kid, signed by a published key", signIDToken(t, key1, "", good), 200, ""},
		{"no kid, signed by another key", signIDToken(t, otherKey, "", good), 401,
			"the ID token has a signature that does not verify; it was altered or not issued by " + idp.srv.URL},
		{"no identity claim", signIDToken(t, key1, "key-1", with("sub", nil)), 401,
			`the ID token has no "sub" claim (a non-empty string), which is the identity on this server`},
		{"garbage", "not-a-jwt", 401,
			"the ID token is not a signed JWT (three base64url parts separated by dots); send the provider's ID token, not its access token"},
		{"three parts of garbage", "eyJ.e30.!!", 401,
			"the ID token is not a signed JWT (three base64url parts separated by dots); send the provider's ID token, not its access token"},
		{"empty bearer", "", 401,
			"the ID token is not a signed JWT (three base64url parts separated by dots); send the provider's ID token, not its access token"},
		{"voice refuses the identity", signIDToken(t, key1, "key-1", with("sub", "auth0|abc")), 400,
			`identity: the identity is the ID token's "sub" claim "auth0|abc", which Twilio Voice allows only letters, digits and _ in an identity; use a username without other characters, or a token without the voice grant`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := s.post(tt.token)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if tt.status == 200 {
				var resp tokenResponse
				json.Unmarshal(rec.Body.Bytes(), &resp)
				if resp.Identity != "user_42" {
					t.Errorf("identity %q, want user_42", resp.Identity)
				}
				return
			}
			if got := problemDetail(t, rec); got != tt.detail {
				t.Errorf("detail\n got %s\nwant %s", got, tt.detail)
			}
			if tt.token != "" && strings.Contains(rec.Body.String(), tt.token) {
				t.Errorf("the answer quotes the token")
			}
			if tt.status == 401 {
				if got := rec.Header().Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
					t.Errorf("WWW-Authenticate %q", got)
				}
			}
		})
	}
}

// TestOIDCIdentityRules checks the identity claim, the email rule, the
// required claims, the allowlist and the escape mapping.
func TestOIDCIdentityRules(t *testing.T) {
	idp := newTestIdP(t)
	for _, tt := range []struct {
		name     string
		edit     func(*OIDCConfig)
		claims   map[string]any
		status   int
		identity string // on 200
		detail   string // otherwise
	}{
		{"escape maps auth0|abc", func(c *OIDCConfig) { c.IdentityMap = "escape" }, map[string]any{"sub": "auth0|abc_d"}, 200, "auth0_7Cabc__d", ""},
		{"email verified", func(c *OIDCConfig) { c.IdentityClaim = "email"; c.IdentityMap = "escape" },
			map[string]any{"email": "a@b.example", "email_verified": true}, 200, "a_40b_2Eexample", ""},
		{"email verified as a string (Cognito)", func(c *OIDCConfig) { c.IdentityClaim = "email"; c.IdentityMap = "escape" },
			map[string]any{"email": "a@b.example", "email_verified": "true"}, 200, "a_40b_2Eexample", ""},
		{"email not verified", func(c *OIDCConfig) { c.IdentityClaim = "email"; c.IdentityMap = "escape" },
			map[string]any{"email": "a@b.example", "email_verified": false}, 403, "",
			"the email in the ID token is not verified at the identity provider; verify it there, then sign in again"},
		{"required group present", func(c *OIDCConfig) { c.RequiredClaims = []requiredClaim{{"groups", "twilio"}} },
			map[string]any{"groups": []string{"staff", "twilio"}}, 200, "user_42", ""},
		{"required group missing", func(c *OIDCConfig) { c.RequiredClaims = []requiredClaim{{"groups", "twilio"}} },
			map[string]any{"groups": []string{"staff"}}, 403, "", `the ID token's "groups" claim is not "twilio", which this server requires`},
		{"allowed", func(c *OIDCConfig) { c.AllowedIdentities = map[string]bool{"user_42": true} }, nil, 200, "user_42", ""},
		{"not allowed", func(c *OIDCConfig) { c.AllowedIdentities = map[string]bool{"user_7": true} }, nil, 403, "",
			"this identity is not allowed to get tokens here; ask the operator to add it to OIDC_ALLOWED_IDENTITIES"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newOIDCServer(t, idp, tt.edit, true)
			c := idp.claims(s.clock.now(), "user_42")
			for k, v := range tt.claims {
				c[k] = v
			}
			rec := s.post(signIDToken(t, idp.key("key-1"), "key-1", c))
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if tt.status != 200 {
				if got := problemDetail(t, rec); got != tt.detail {
					t.Errorf("detail\n got %s\nwant %s", got, tt.detail)
				}
				return
			}
			var resp tokenResponse
			json.Unmarshal(rec.Body.Bytes(), &resp)
			if resp.Identity != tt.identity {
				t.Errorf("identity %q, want %q", resp.Identity, tt.identity)
			}
		})
	}
}

func TestEscapeIdentity(t *testing.T) {
	for in, want := range map[string]string{
		"abc":        "abc",
		"auth0|abc":  "auth0_7Cabc",
		"a_b":        "a__b",
		"a_7Cb":      "a__7Cb", // not the image of "a|b"
		"a|b":        "a_7Cb",
		"é":          "_C3_A9",
		"x@y.z":      "x_40y_2Ez",
		"google-oau": "google_2Doau",
	} {
		if got := escapeIdentity(in); got != want {
			t.Errorf("escapeIdentity(%q) = %q, want %q", in, got, want)
		}
		if !isVoiceIdentity(escapeIdentity(in)) {
			t.Errorf("escapeIdentity(%q) is not a Voice identity", in)
		}
	}
}

// TestOIDCKeyRotation: a new kid is fetched without a restart; a removed
// key stops working after the periodic refresh; unknown kids fetch at
// most once per interval.
func TestOIDCKeyRotation(t *testing.T) {
	idp := newTestIdP(t)
	s := newOIDCServer(t, idp, nil, true)
	before := idp.jwksFetches.Load()
	k2 := idp.addKey(t, "key-2")
	if rec := s.post(signIDToken(t, k2, "key-2", idp.claims(s.clock.now(), "u1"))); rec.Code != 200 {
		t.Fatalf("new kid: %d %s", rec.Code, rec.Body)
	}
	if got := idp.jwksFetches.Load() - before; got != 1 {
		t.Errorf("new kid: %d key set fetches, want 1", got)
	}
	// The provider drops key-1; the periodic refresh (what run does
	// every JWKSRefresh) forgets it.
	k1 := idp.key("key-1")
	idp.removeKey("key-1")
	if rec := s.post(signIDToken(t, k1, "key-1", idp.claims(s.clock.now(), "u1"))); rec.Code != 200 {
		t.Fatalf("key-1 before the refresh: %d %s", rec.Code, rec.Body)
	}
	if err := s.login.keys.fetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	rec := s.post(signIDToken(t, k1, "key-1", idp.claims(s.clock.now(), "u1")))
	if rec.Code != 401 || problemDetail(t, rec) != "the ID token is signed by a key the identity provider does not publish; it was not issued by "+idp.srv.URL {
		t.Fatalf("removed key-1: %d %s", rec.Code, rec.Body)
	}
}

// TestOIDCGarbageKidFlood: 100 logins at once with made-up kids make at
// most one key set fetch per interval, and all get 401.
func TestOIDCGarbageKidFlood(t *testing.T) {
	idp := newTestIdP(t)
	s := newOIDCServer(t, idp, nil, true)
	forger, _ := rsa.GenerateKey(rand.Reader, 2048)
	tokens := make([]string, 100)
	for i := range tokens {
		tokens[i] = signIDToken(t, forger, rand.Text(), idp.claims(s.clock.now(), "u1"))
	}
	flood := func() map[int]int {
		before := idp.jwksFetches.Load()
		var mu sync.Mutex
		codes := map[int]int{}
		var wg sync.WaitGroup
		for _, tok := range tokens {
			wg.Go(func() {
				rec := s.post(tok)
				mu.Lock()
				codes[rec.Code]++
				mu.Unlock()
			})
		}
		wg.Wait()
		codes[-1] = int(idp.jwksFetches.Load() - before)
		return codes
	}
	for i := range 3 {
		if got := flood(); got[401] != 100 || got[-1] != 1 {
			t.Errorf("interval %d: %d 401s and %d fetches, want 100 and 1 (%v)", i, got[401], got[-1], got)
		}
		if got := flood(); got[401] != 100 || got[-1] != 0 {
			t.Errorf("interval %d, again: %d 401s and %d fetches, want 100 and 0 (%v)", i, got[401], got[-1], got)
		}
		s.clock.advance(oidcMinRefetch)
	}
}

// TestOIDCProviderDown: tokend starts with the provider down (503 and not
// ready), recovers when it comes up; later, with it down again, cached
// keys work and an unknown kid is a 503 with Retry-After.
func TestOIDCProviderDown(t *testing.T) {
	idp := newTestIdP(t)
	idp.down.Store(true)
	s := newOIDCServer(t, idp, nil, false)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.login.run(ctx) })
	defer wg.Wait()
	defer cancel()

	tok := signIDToken(t, idp.key("key-1"), "key-1", idp.claims(s.clock.now(), "u1"))
	rec := s.post(tok)
	if rec.Code != 503 || rec.Header().Get("Retry-After") != "5" {
		t.Fatalf("provider down at start: %d Retry-After %q %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	want := "the identity provider " + idp.srv.URL + " has not been reached yet, so no ID token can be verified; try again in 5 seconds"
	if got := problemDetail(t, rec); got != want {
		t.Errorf("detail %q", got)
	}
	if rec := serveOne(s, "GET", "/readyz", "", "", ""); rec.Code != 503 {
		t.Errorf("/readyz with the provider down: %d", rec.Code)
	}
	// Password logins work meanwhile.
	if rec := serveOne(s, "POST", "/token", "", basic("alice", "correct horse"), ""); rec.Code != 200 {
		t.Errorf("password login with the provider down: %d %s", rec.Code, rec.Body)
	}

	for i := 0; idp.requests.Load() == 0; i++ { // run has tried once, and failed
		if i > 500 {
			t.Fatal("run did not try the provider in 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	idp.down.Store(false)
	for i := 0; s.login.ready() != ""; i++ { // run retries after 1s
		if i > 500 {
			t.Fatal("not ready 5s after the provider came up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if rec := serveOne(s, "GET", "/readyz", "", "", ""); rec.Code != 200 {
		t.Errorf("/readyz with the provider up: %d %s", rec.Code, rec.Body)
	}
	if rec := s.post(tok); rec.Code != 200 {
		t.Fatalf("provider up: %d %s", rec.Code, rec.Body)
	}

	idp.down.Store(true)
	s.clock.advance(oidcMinRefetch)
	if rec := s.post(tok); rec.Code != 200 {
		t.Errorf("cached key, provider down: %d %s", rec.Code, rec.Body)
	}
	k3 := idp.addKey(t, "key-3")
	tok3 := signIDToken(t, k3, "key-3", idp.claims(s.clock.now(), "u1"))
	rec = s.post(tok3)
	if rec.Code != 503 || rec.Header().Get("Retry-After") != "30" {
		t.Errorf("unknown kid, provider down: %d Retry-After %q %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	idp.down.Store(false)
	s.clock.advance(oidcMinRefetch)
	if rec := s.post(tok3); rec.Code != 200 {
		t.Errorf("provider back: %d %s", rec.Code, rec.Body)
	}
}

// TestOIDCOnly: without passwords, a login without a bearer token is told
// to send one, with the Bearer challenge; /readyz needs no users.
func TestOIDCOnly(t *testing.T) {
	idp := newTestIdP(t)
	oc := testOIDCConfig(idp.srv.URL)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	login := newOIDCLogin(oc, log, idp.srv.Client(), time.Now)
	if _, err := login.discover(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.OIDC = oc
	h := NewServer(log, cfg, nil, nil, newMetrics(), time.Now, withOIDC(login))
	rec := serveOne(h, "POST", "/token", "", basic("alice", "correct horse"), "")
	if rec.Code != 401 || rec.Header().Get("WWW-Authenticate") != `Bearer realm="tokend"` ||
		problemDetail(t, rec) != "this server signs in with an identity provider only; send its ID token as Authorization: Bearer <ID token>" {
		t.Errorf("password on an IdP-only server: %d %q %s", rec.Code, rec.Header().Get("WWW-Authenticate"), rec.Body)
	}
	if rec := serveOne(h, "GET", "/readyz", "", "", ""); rec.Code != 200 {
		t.Errorf("/readyz: %d %s", rec.Code, rec.Body)
	}
	tok := signIDToken(t, idp.key("key-1"), "key-1", idp.claims(time.Now(), "u1"))
	if rec := serveOne(h, "POST", "/token", "", "Bearer "+tok, ""); rec.Code != 200 {
		t.Errorf("ID token: %d %s", rec.Code, rec.Body)
	}
}

// TestOIDCConfig checks the OIDC_ settings: what they give and every
// problem's message.
func TestOIDCConfig(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		cfg, err := loadConfig(cfgEnv(map[string]string{"OIDC_ISSUER": "https://idp.example/", "OIDC_AUDIENCE": "app"}))
		if err != nil {
			t.Fatal(err)
		}
		want := &OIDCConfig{Issuer: "https://idp.example/", Audience: "app", IdentityClaim: "sub", IdentityMap: "none",
			Algorithms: asymmetricAlgorithms, ClockSkew: time.Minute, JWKSRefresh: 15 * time.Minute}
		if fmt.Sprint(cfg.OIDC) != fmt.Sprint(want) {
			t.Errorf("OIDC = %+v\nwant %+v", cfg.OIDC, want)
		}
	})
	t.Run("all set", func(t *testing.T) {
		cfg, err := loadConfig(cfgEnv(map[string]string{"OIDC_ISSUER": "http://127.0.0.1:5556/dex", "OIDC_AUDIENCE": "app",
			"OIDC_IDENTITY_CLAIM": "email", "OIDC_IDENTITY_MAP": "escape", "OIDC_REQUIRED_CLAIMS": "groups=twilio, hd=example.com",
			"OIDC_ALLOWED_IDENTITIES": "a@example.com,b@example.com", "OIDC_ALGORITHMS": "ES256", "OIDC_CLOCK_SKEW": "0", "OIDC_JWKS_REFRESH": "1h"}))
		if err != nil {
			t.Fatal(err)
		}
		want := &OIDCConfig{Issuer: "http://127.0.0.1:5556/dex", Audience: "app", IdentityClaim: "email", IdentityMap: "escape",
			RequiredClaims:    []requiredClaim{{"groups", "twilio"}, {"hd", "example.com"}},
			AllowedIdentities: map[string]bool{"a@example.com": true, "b@example.com": true},
			Algorithms:        []string{"ES256"}, ClockSkew: 0, JWKSRefresh: time.Hour}
		if fmt.Sprint(cfg.OIDC) != fmt.Sprint(want) {
			t.Errorf("OIDC = %+v\nwant %+v", cfg.OIDC, want)
		}
	})
	for _, tt := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"audience without issuer", map[string]string{"OIDC_AUDIENCE": "app"},
			[]string{"OIDC_AUDIENCE is set but OIDC_ISSUER is not: set OIDC_ISSUER to turn on ID token logins, or remove OIDC_AUDIENCE"}},
		{"plain http issuer", map[string]string{"OIDC_ISSUER": "http://idp.example", "OIDC_AUDIENCE": "app"},
			[]string{`OIDC_ISSUER is "http://idp.example": use the provider's issuer URL exactly as its ID tokens' iss claim says it, with https (http only for a loopback host)`}},
		{"no audience", map[string]string{"OIDC_ISSUER": "https://idp.example"},
			[]string{"OIDC_AUDIENCE is not set: the app's client ID at the identity provider; ID tokens for other apps are refused"}},
		{"HS256 and none", map[string]string{"OIDC_ISSUER": "https://idp.example", "OIDC_AUDIENCE": "app", "OIDC_ALGORITHMS": "RS256,HS256,none"},
			[]string{
				`OIDC_ALGORITHMS has "HS256": use asymmetric JWS algorithms (` + strings.Join(asymmetricAlgorithms, ", ") + `); HMAC and none are never accepted`,
				`OIDC_ALGORITHMS has "none": use asymmetric JWS algorithms (` + strings.Join(asymmetricAlgorithms, ", ") + `); HMAC and none are never accepted`,
			}},
		{"bad map, claims and skew", map[string]string{"OIDC_ISSUER": "https://idp.example", "OIDC_AUDIENCE": "app",
			"OIDC_IDENTITY_MAP": "lowercase", "OIDC_REQUIRED_CLAIMS": "email_verified", "OIDC_CLOCK_SKEW": "1h"},
			[]string{
				`OIDC_CLOCK_SKEW is "1h": use 0 (off) or a duration from 0s to 5m0s, such as 90s or 5m`,
				`OIDC_IDENTITY_MAP is "lowercase": use none (refuse identities Twilio does not accept) or escape (map them, see the README)`,
				`OIDC_REQUIRED_CLAIMS has "email_verified": use NAME=VALUE pairs separated by commas, such as email_verified=true,groups=twilio`,
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(cfgEnv(tt.env))
			if got := configProblems(t, err); !slices.Equal(got, tt.want) {
				t.Errorf("problems =\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

// TestLoadAllIdPOnly: with OIDC on, no users file means passwords are off;
// a users file named but missing is still an error.
func TestLoadAllIdPOnly(t *testing.T) {
	t.Chdir(t.TempDir())
	oidcEnv := map[string]string{"OIDC_ISSUER": "https://idp.example", "OIDC_AUDIENCE": "app"}
	cfg, users, err := loadAll(cfgEnv(oidcEnv))
	if err != nil || cfg.OIDC == nil || users != nil {
		t.Fatalf("IdP-only: cfg.OIDC %v, users %v, err %v", cfg.OIDC, users, err)
	}
	oidcEnv["USERS_FILE"] = "named.htpasswd"
	_, _, err = loadAll(cfgEnv(oidcEnv))
	if got := configProblems(t, err); len(got) != 1 || !strings.HasPrefix(got[0], "USERS_FILE: users file: open named.htpasswd") {
		t.Errorf("named users file missing: %q", got)
	}
}

// TestCheckOIDC: `tokend check` does the discovery and says what it found,
// and fails naming the issuer when the provider is down.
func TestCheckOIDC(t *testing.T) {
	idp := newTestIdP(t)
	t.Chdir(t.TempDir())
	env := cmdEnv("OIDC_ISSUER", idp.srv.URL, "OIDC_AUDIENCE", testClientID, "OIDC_ALGORITHMS", "RS256,ES384")
	stdout, _, err := runTokend(t, env, specTime, "", "check", "--env-file", "absent.env")
	if err != nil {
		t.Fatal(err)
	}
	want := "  users:      none (no users.htpasswd): ID token logins only\n" +
		"  grants:     video,voice,sync enabled; video,voice,sync by default\n" +
		"  token ttl:  3600s by default, at most 86400s\n" +
		"  listen:     :8080\n" +
		"  cors:       none: CORS_ALLOWED_ORIGINS is empty, so browsers block pages on other origins\n" +
		"  oidc:       issuer " + idp.srv.URL + ", client ID " + testClientID + "\n" +
		"              keys: 1 from " + idp.srv.URL + "/jwks\n" +
		"              identity: the \"sub\" claim (map: none)\n" +
		"              algorithms: provider signs with RS256, ES256; accepted: RS256, ES384\n"
	if _, rest, _ := strings.Cut(stdout, "  users:"); "  users:"+rest != want {
		t.Errorf("stdout:\n%s\nwant the end:\n%s", stdout, want)
	}
	idp.down.Store(true)
	_, _, err = runTokend(t, env, specTime, "", "check", "--env-file", "absent.env")
	if err == nil || !strings.HasPrefix(err.Error(), "OIDC_ISSUER "+idp.srv.URL+": discovery at "+idp.srv.URL+"/.well-known/openid-configuration: ") {
		t.Errorf("provider down: %v", err)
	}
}

// TestOIDCFailuresAreLimited: a bad ID token is a failed login of the
// client address, counted in the metrics; past the budget even a good
// token gets 429, and a 403 (a valid token) is not charged.
func TestOIDCFailuresAreLimited(t *testing.T) {
	idp := newTestIdP(t)
	s := newOIDCServerLimits(t, idp, func(c *OIDCConfig) { c.AllowedIdentities = map[string]bool{"u1": true} }, true,
		Limits{AddrFailures: 3, AddrFailuresPerHour: 1, MaxKeys: 100})
	key := idp.key("key-1")
	forbidden := signIDToken(t, key, "key-1", idp.claims(s.clock.now(), "u2"))
	for range 5 {
		if rec := s.post(forbidden); rec.Code != 403 {
			t.Fatalf("not allowed: %d %s", rec.Code, rec.Body)
		}
	}
	expired := idp.claims(s.clock.now(), "u1")
	expired["exp"] = s.clock.now().Add(-time.Hour).Unix()
	bad := signIDToken(t, key, "key-1", expired)
	for i := range 3 {
		if rec := s.post(bad); rec.Code != 401 {
			t.Fatalf("bad token %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	rec := s.post(signIDToken(t, key, "key-1", idp.claims(s.clock.now(), "u1")))
	if rec.Code != 429 || rec.Header().Get("Retry-After") == "" {
		t.Errorf("good token past the budget: %d %s", rec.Code, rec.Body)
	}
	metrics := serveOne(s, "GET", "/metrics", "", "", "").Body.String()
	if !strings.Contains(metrics, `tokend_auth_failures_total{reason="invalid_id_token"} 3`+"\n") {
		t.Errorf("metrics do not count 3 invalid ID tokens")
	}
}

// TestServeIdPOnly starts tokend through run, as the shell does, with OIDC
// on, no users file and the provider down: it serves, /readyz is 503 until
// the provider is up, and then an ID token gets a Twilio token.
func TestServeIdPOnly(t *testing.T) {
	idp := newTestIdP(t)
	idp.down.Store(true)
	t.Chdir(t.TempDir())
	addr := freeAddr(t)
	env := cmdEnv("LISTEN_ADDR", addr, "OIDC_ISSUER", idp.srv.URL, "OIDC_AUDIENCE", testClientID)
	var stdout, stderr syncBuffer
	errc := startRun(t, []string{"serve", "--env-file", "absent.env"}, env, &stdout, &stderr)
	base := "http://" + addr
	waitReady(t, base, errc)
	get := func(path string) int {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("/readyz"); code != 503 {
		t.Errorf("/readyz with the provider down: %d", code)
	}
	idp.down.Store(false)
	for i := 0; get("/readyz") != 200; i++ {
		if i > 500 {
			t.Fatalf("not ready 5s after the provider came up; log:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	req, _ := http.NewRequest("POST", base+"/token", nil)
	req.Header.Set("Authorization", "Bearer "+signIDToken(t, idp.key("key-1"), "key-1", idp.claims(time.Now(), "user_42")))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body tokenResponse
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 200 || body.Identity != "user_42" {
		t.Errorf("ID token login: %d %+v", resp.StatusCode, body)
	}
	mresp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	for _, want := range []string{`tokend_oidc_key_fetches_total{result="ok"} 1` + "\n", `tokend_oidc_key_fetches_total{result="error"} 0` + "\n"} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if !strings.Contains(stderr.String(), "identity provider not reached") {
		t.Errorf("the log does not say the provider was not reached:\n%s", stderr.String())
	}
}

// TestOIDCPeriodicRefresh: run fetches the keys every JWKSRefresh, so a key
// the provider removed is refused after the next refresh, with no login
// asking for it.
func TestOIDCPeriodicRefresh(t *testing.T) {
	idp := newTestIdP(t)
	s := newOIDCServer(t, idp, func(c *OIDCConfig) { c.JWKSRefresh = 20 * time.Millisecond }, false)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.login.run(ctx) })
	defer wg.Wait()
	defer cancel()
	for i := 0; s.login.ready() != ""; i++ {
		if i > 500 {
			t.Fatal("not ready in 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	tok := signIDToken(t, idp.key("key-1"), "key-1", idp.claims(s.clock.now(), "u1"))
	if rec := s.post(tok); rec.Code != 200 {
		t.Fatalf("before removal: %d %s", rec.Code, rec.Body)
	}
	idp.addKey(t, "key-2")
	idp.removeKey("key-1")
	for i := 0; s.login.keys.count() != 1 || len(s.login.keys.lookup("key-2")) != 1; i++ {
		if i > 500 {
			t.Fatal("the key set was not refreshed in 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if rec := s.post(tok); rec.Code != 401 {
		t.Errorf("after removal and refresh: %d %s", rec.Code, rec.Body)
	}
}
