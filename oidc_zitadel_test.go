package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
)

// TestOIDCZitadelProvider runs a complete OpenID provider in the test
// (zitadel/oidc's op package, with its example storage and login page),
// signs in through the authorization code flow as a browser would, and
// trades the ID token it issued for a Twilio token. It checks that tokend
// works with a provider's real discovery document, key set and tokens,
// not only with the ones this repository's test provider makes.
func TestOIDCZitadelProvider(t *testing.T) {
	const (
		clientID    = "web"
		secret      = "secret"
		redirectURI = "http://localhost:9999/auth/callback" // never contacted: the test stops at the redirect
	)
	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	t.Cleanup(srv.Close)
	issuer := srv.URL
	store := storage.NewStorageWithClients(storage.NewUserStore(issuer),
		map[string]*storage.Client{clientID: storage.WebClient(clientID, secret, redirectURI)})
	srv.Config.Handler = exampleop.SetupServer(issuer, store, nil, false)

	// The browser: cookies, and no following the final redirect to the app.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), redirectURI) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	auth := issuer + "/auth?" + url.Values{"client_id": {clientID}, "redirect_uri": {redirectURI},
		"response_type": {"code"}, "scope": {"openid email"}, "state": {"s1"}, "nonce": {"n1"}}.Encode()
	resp, err := browser.Get(auth)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	id := resp.Request.URL.Query().Get("authRequestID") // the login page it landed on
	if id == "" {
		t.Fatalf("the authorize request did not reach the login page: %s", resp.Request.URL)
	}
	host := strings.Split(strings.TrimPrefix(issuer, "http://"), ":")[0]
	resp, err = browser.PostForm(issuer+"/login/username", url.Values{"id": {id}, "username": {"test-user@" + host}, "password": {"verysecure"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound || loc.Query().Get("code") == "" {
		t.Fatalf("login: %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	req, _ := http.NewRequest("POST", issuer+"/oauth/token", strings.NewReader(url.Values{
		"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {redirectURI}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tokens struct {
		IDToken string `json:"id_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tokens)
	resp.Body.Close()
	if tokens.IDToken == "" {
		t.Fatalf("token endpoint: %d, no id_token", resp.StatusCode)
	}

	// tokend, with the provider's client ID as the audience.
	oc := testOIDCConfig(issuer)
	oc.Audience = clientID
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	login := newOIDCLogin(oc, log, nil, time.Now)
	if _, err := login.discover(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.OIDC = oc
	h := NewServer(log, cfg, nil, nil, newMetrics(), time.Now, withOIDC(login))
	rec := serveOne(h, "POST", "/token", "", "Bearer "+tokens.IDToken, "")
	var got tokenResponse
	json.Unmarshal(rec.Body.Bytes(), &got)
	if rec.Code != 200 || got.Identity != "id1" { // the example user's sub
		t.Fatalf("zitadel's ID token: %d %s", rec.Code, rec.Body)
	}
	// The same token for another app is refused.
	oc2 := testOIDCConfig(issuer)
	oc2.Audience = "another-app"
	login2 := newOIDCLogin(oc2, log, nil, time.Now)
	if _, err := login2.discover(context.Background()); err != nil {
		t.Fatal(err)
	}
	h2 := NewServer(log, cfg, nil, nil, newMetrics(), time.Now, withOIDC(login2))
	if rec := serveOne(h2, "POST", "/token", "", "Bearer "+tokens.IDToken, ""); rec.Code != 401 {
		t.Errorf("zitadel's ID token for another audience: %d %s", rec.Code, rec.Body)
	}
}
