package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// OIDCConfig is the "sign in with an identity provider" login: POST /token
// with Authorization: Bearer <ID token>. nil in Config.OIDC: off.
type OIDCConfig struct {
	Issuer   string // exact, as the tokens' iss and the discovery document say it
	Audience string // the app's client ID; the tokens' aud must contain it
	// IdentityClaim names the claim whose value is the Twilio identity.
	IdentityClaim string
	// IdentityMap is "none" (an identity Twilio refuses is a 400) or
	// "escape" (escapeIdentity: always applied, so one user has one
	// identity whatever grants the token carries).
	IdentityMap string
	// RequiredClaims must all hold, or the login is a 403.
	RequiredClaims []requiredClaim
	// AllowedIdentities, when not nil, are the only claim values (before
	// mapping) that may log in; others get 403.
	AllowedIdentities map[string]bool
	Algorithms        []string      // signature algorithms accepted; asymmetric only
	ClockSkew         time.Duration // allowance on exp and nbf
	// JWKSRefresh is how often the keys are fetched again, so that a key
	// the provider removed stops working within it.
	JWKSRefresh time.Duration
}

// requiredClaim is one NAME=VALUE of OIDC_REQUIRED_CLAIMS: the claim
// equals VALUE, or, when it is a list (groups, roles), contains it.
type requiredClaim struct{ name, value string }

// asymmetricAlgorithms are the JWS algorithms tokend accepts on an ID
// token. HMAC (HS*) is never accepted: its key would be the client secret,
// or, in the classic confusion attack, the provider's public key. "none"
// is no signature at all.
var asymmetricAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Timings of the provider's endpoints.
const (
	oidcHTTPTimeout   = 10 * time.Second
	oidcMaxJWKSBytes  = 1 << 20
	oidcMinRefetch    = 30 * time.Second // at most one unknown-kid fetch per this
	oidcRetryFirst    = time.Second      // start-up retries: from this...
	oidcRetryMax      = time.Minute      // ...doubling up to this
	oidcNotReadyRetry = 5 * time.Second
)

// oidcLogin verifies ID tokens. Discovery and the first key set are
// fetched in the background (run): until both are in, a bearer login is a
// 503 and /readyz says why, so tokend starts even when the provider is down.
type oidcLogin struct {
	cfg    *OIDCConfig
	log    *slog.Logger
	client *http.Client
	now    func() time.Time
	keys   *jwksCache
	// verifier is nil until discovery has succeeded and keys are in.
	verifier atomic.Pointer[oidc.IDTokenVerifier]
}

func newOIDCLogin(cfg *OIDCConfig, log *slog.Logger, client *http.Client, now func() time.Time) *oidcLogin {
	if client == nil {
		client = &http.Client{Timeout: oidcHTTPTimeout}
	}
	return &oidcLogin{
		cfg: cfg, log: log, client: client, now: now,
		keys: &jwksCache{client: client, now: now, minRefetch: oidcMinRefetch, algs: joseAlgorithms(cfg.Algorithms)},
	}
}

// discover fetches the discovery document (go-oidc checks that its issuer
// is cfg.Issuer exactly) and then the key set.
func (o *oidcLogin) discover(ctx context.Context) (discovery, error) {
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, o.client), oidcHTTPTimeout)
	defer cancel()
	p, err := oidc.NewProvider(ctx, o.cfg.Issuer)
	if err != nil {
		return discovery{}, fmt.Errorf("discovery at %s/.well-known/openid-configuration: %w", strings.TrimSuffix(o.cfg.Issuer, "/"), err)
	}
	var d discovery
	if err := p.Claims(&d); err != nil {
		return discovery{}, fmt.Errorf("discovery document: %w", err)
	}
	if d.JWKSURI == "" {
		return discovery{}, fmt.Errorf("the discovery document has no jwks_uri")
	}
	o.keys.setURL(d.JWKSURI)
	if err := o.keys.fetch(ctx); err != nil {
		return d, err
	}
	o.verifier.Store(oidc.NewVerifier(o.cfg.Issuer, o.keys, &oidc.Config{
		ClientID:             o.cfg.Audience,
		SupportedSigningAlgs: o.cfg.Algorithms,
		// The skew is allowed by checking against a clock that lags:
		// go-oidc has no setting of its own for it.
		Now: func() time.Time { return o.now().Add(-o.cfg.ClockSkew) },
	}))
	return d, nil
}

// discovery is what tokend reads of the discovery document.
type discovery struct {
	Issuer     string   `json:"issuer"`
	JWKSURI    string   `json:"jwks_uri"`
	Algorithms []string `json:"id_token_signing_alg_values_supported"`
}

// run discovers the provider, retrying with backoff until it answers, and
// then fetches the keys again every JWKSRefresh, keeping the old ones
// while the provider is unreachable. It returns when ctx is done.
func (o *oidcLogin) run(ctx context.Context) {
	wait := oidcRetryFirst
	for o.verifier.Load() == nil {
		if _, err := o.discover(ctx); err != nil {
			o.log.Warn("identity provider not reached; ID token logins get 503 until it is", "issuer", o.cfg.Issuer, "err", err, "retry_in", wait.String())
			if !sleepCtx(ctx, wait) {
				return
			}
			wait = min(2*wait, oidcRetryMax)
			continue
		}
		o.log.Info("identity provider ready", "issuer", o.cfg.Issuer, "keys", o.keys.count())
	}
	t := time.NewTicker(o.cfg.JWKSRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := o.keys.fetch(ctx); err != nil {
				o.log.Warn("identity provider keys not refreshed; the cached ones stay in use", "err", err)
			}
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// ready says why ID token logins cannot succeed yet, or "".
func (o *oidcLogin) ready() string {
	if o.verifier.Load() == nil {
		return "the identity provider " + o.cfg.Issuer + " has not been reached yet, so no ID token can be verified"
	}
	return ""
}

// idTokenProblem is a 401 for a bearer token that is not a valid ID token
// for this server, with the RFC 6750 challenge. detail never quotes the
// token or anything read from it unverified.
func idTokenProblem(detail string) *Error {
	return &Error{Code: EUNAUTHORIZED, Message: "the ID token " + detail, Challenge: `Bearer error="invalid_token"`}
}

// idTokenMaxWait is how long an ID token login waits for its address's
// failed-login budget while other checks in flight hold it, then gets 503.
const idTokenMaxWait = 2 * time.Second

// login verifies the ID token and returns the identity it proves and what
// that identity came from. Failures are charged to the client address's
// failed-login budget, like wrong passwords.
func (o *oidcLogin) login(ctx context.Context, limits *loginLimits, raw string) (identity, source string, err error) {
	v := o.verifier.Load()
	if v == nil {
		return "", "", retryLater(EUNAVAILABLE, oidcNotReadyRetry, o.ready())
	}
	addr := clientKeyFrom(ctx)
	if limits != nil {
		// Charged while the token is checked, as a password check is
		// while it holds a bcrypt slot (chargedAuth).
		c := chargedAuth{limits: limits, maxWait: idTokenMaxWait}
		if _, err := c.begin(ctx, limits.addrFails, addr, msgAddrLocked); err != nil {
			return "", "", err
		}
	}
	defer func() {
		// Only a 401 is a failure: a 403 is a token the provider
		// vouched for, a 503 is the provider's fault, not a guess.
		var e *Error
		failed := errors.As(err, &e) && e.Code == EUNAUTHORIZED
		if failed {
			noteAuthFailure(ctx, authInvalidIDToken)
		}
		if limits != nil {
			limits.addrFails.End(addr, failed)
		}
	}()
	claims, err := o.verify(ctx, v, raw)
	if err != nil {
		return "", "", err
	}
	return o.identity(claims)
}

// verifyOutcome is how the key set answered, which go-oidc's error (a
// string) does not carry: it travels in the context instead.
type verifyOutcome struct{ err error }

type verifyOutcomeKey struct{}

var (
	errUnknownKey   = errors.New("unknown key")
	errBadSignature = errors.New("bad signature")
)

// providerUnavailable is an unknown kid while the provider cannot be asked.
type providerUnavailable struct{ wait time.Duration }

func (e *providerUnavailable) Error() string { return "identity provider unavailable" }

// notSignedJWT is the detail for a bearer token that is no compact JWS.
const notSignedJWT = "is not a signed JWT (three base64url parts separated by dots); send the provider's ID token, not its access token"

// verify checks the token with go-oidc and turns its refusals into
// details a person can act on.
func (o *oidcLogin) verify(ctx context.Context, v *oidc.IDTokenVerifier, raw string) (map[string]any, error) {
	// An ID token is a compact JWS; go-jose would also take the JSON
	// serialization, which this refuses before go-oidc sees it.
	if strings.Count(raw, ".") != 2 {
		return nil, idTokenProblem(notSignedJWT)
	}
	out := &verifyOutcome{}
	tok, err := v.Verify(context.WithValue(ctx, verifyOutcomeKey{}, out), raw)
	if err != nil {
		// The header is read for its algorithm only now, for the
		// detail: go-oidc refuses any algorithm not in OIDC_ALGORITHMS
		// itself, so an accepted token is not parsed once more for it.
		alg, ok := jwsAlgorithm(raw)
		var unavailable *providerUnavailable
		var expired *oidc.TokenExpiredError
		msg := err.Error()
		switch {
		case !ok:
			return nil, idTokenProblem(notSignedJWT)
		case !slices.Contains(o.cfg.Algorithms, alg):
			return nil, idTokenProblem(fmt.Sprintf("is signed with an algorithm this server does not accept; it accepts %s", strings.Join(o.cfg.Algorithms, ", ")))
		case errors.As(out.err, &unavailable):
			return nil, retryLater(EUNAVAILABLE, unavailable.wait, "the ID token is signed by a key tokend does not have, and the identity provider cannot be reached to fetch it")
		case errors.Is(out.err, errUnknownKey):
			return nil, idTokenProblem("is signed by a key the identity provider does not publish; it was not issued by " + o.cfg.Issuer)
		case errors.Is(out.err, errBadSignature):
			return nil, idTokenProblem("has a signature that does not verify; it was altered or not issued by " + o.cfg.Issuer)
		case errors.As(err, &expired) && expired.Expiry.IsZero():
			return nil, idTokenProblem("has no exp (expiry) claim")
		case errors.As(err, &expired):
			return nil, idTokenProblem(fmt.Sprintf("expired at %s; ask the provider's SDK for a fresh one (getIdToken) and send it again", expired.Expiry.UTC().Format(time.RFC3339)))
		case strings.Contains(msg, "issued by a different provider"):
			return nil, idTokenProblem("was issued by another issuer; this server accepts ID tokens from " + o.cfg.Issuer)
		case strings.Contains(msg, "expected audience"):
			return nil, idTokenProblem("is for another audience; ask the provider for an ID token for this app's client ID (OIDC_AUDIENCE)")
		case strings.Contains(msg, "nbf"):
			return nil, idTokenProblem("is not valid yet (nbf); check the clocks")
		default:
			o.log.DebugContext(ctx, "ID token refused", "err", msg)
			return nil, idTokenProblem("could not be verified; send the ID token your identity provider issued, unchanged")
		}
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return nil, idTokenProblem("has claims that are not a JSON object")
	}
	return claims, nil
}

// jwsAlgorithm reads the alg of a JWS's header, unverified: only to tell
// the client which algorithms are accepted.
func jwsAlgorithm(raw string) (string, bool) {
	tok, err := jose.ParseSigned(raw, allJOSEAlgorithms)
	if err != nil || len(tok.Signatures) != 1 {
		return "", false
	}
	return tok.Signatures[0].Header.Algorithm, true
}

// allJOSEAlgorithms lets jwsAlgorithm parse any header, HMAC included, so
// that it can name the algorithm refused; nothing is verified with them.
var allJOSEAlgorithms = []jose.SignatureAlgorithm{
	jose.HS256, jose.HS384, jose.HS512, jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// identity applies the identity claim, the email rule, the required
// claims, the allowlist and the mapping, in that order.
func (o *oidcLogin) identity(claims map[string]any) (identity, source string, err error) {
	name := o.cfg.IdentityClaim
	source = fmt.Sprintf("the ID token's %q claim", name)
	value, ok := claims[name].(string)
	if !ok || value == "" {
		return "", source, idTokenProblem(fmt.Sprintf("has no %q claim (a non-empty string), which is the identity on this server", name))
	}
	if name == "email" && !claimHolds(claims["email_verified"], "true") {
		return "", source, Errorf(EFORBIDDEN, "the email in the ID token is not verified at the identity provider; verify it there, then sign in again")
	}
	for _, rc := range o.cfg.RequiredClaims {
		if !claimHolds(claims[rc.name], rc.value) {
			return "", source, Errorf(EFORBIDDEN, "the ID token's %q claim is not %q, which this server requires", rc.name, rc.value)
		}
	}
	if o.cfg.AllowedIdentities != nil && !o.cfg.AllowedIdentities[value] {
		return "", source, Errorf(EFORBIDDEN, "this identity is not allowed to get tokens here; ask the operator to add it to OIDC_ALLOWED_IDENTITIES")
	}
	if o.cfg.IdentityMap == "escape" {
		value = escapeIdentity(value)
	}
	return value, source, nil
}

// claimHolds reports whether a claim's value is want: a string equal to
// it, a boolean or number written as it (Cognito sends "true" as a string),
// or a list with an element equal to it.
func claimHolds(v any, want string) bool {
	switch v := v.(type) {
	case string:
		return v == want
	case bool:
		return strconv.FormatBool(v) == want
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64) == want
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok && s == want {
				return true
			}
		}
	}
	return false
}

// escapeIdentity maps a claim value to one Twilio Voice accepts (letters,
// digits and _) by a stable, reversible rule: _ becomes __ and every other
// byte outside [A-Za-z0-9] becomes _ and two uppercase hex digits. So
// "auth0|abc" is "auth0_7Cabc", and no two values map to the same identity.
func escapeIdentity(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9':
			b.WriteByte(c)
		case c == '_':
			b.WriteString("__")
		default:
			b.WriteByte('_')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// jwksCache is the provider's key set, as go-oidc's KeySet. An unknown kid
// fetches the set again, but at most once per minRefetch however many
// requests ask, so a flood of tokens with made-up kids cannot make tokend
// hammer the provider; the periodic refresh (oidcLogin.run) drops keys the
// provider removed.
type jwksCache struct {
	client     *http.Client
	now        func() time.Time
	minRefetch time.Duration
	algs       []jose.SignatureAlgorithm // OIDC_ALGORITHMS, as go-jose takes them

	url atomic.Pointer[string]

	mu   sync.RWMutex
	keys []jose.JSONWebKey

	fetchMu sync.Mutex // one fetch at a time; guards the two below
	// The last fetch an unknown kid asked for, and its error. Only those
	// count against minRefetch: a periodic refresh just before a
	// rotation must not delay the new key's first login.
	lastUnknown    time.Time
	lastUnknownErr error

	// onFetch, when set, hears every fetch's result (the metrics).
	onFetch func(error)
}

func (c *jwksCache) setURL(u string) { c.url.Store(&u) }

func (c *jwksCache) count() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.keys)
}

// fetch gets the key set now. On failure the keys held are kept.
func (c *jwksCache) fetch(ctx context.Context) error {
	c.fetchMu.Lock()
	defer c.fetchMu.Unlock()
	return c.get(ctx)
}

// get fetches the key set and tells onFetch how it went.
func (c *jwksCache) get(ctx context.Context) error {
	err := c.download(ctx)
	if c.onFetch != nil {
		c.onFetch(err)
	}
	return err
}

func (c *jwksCache) download(ctx context.Context) error {
	u := c.url.Load()
	if u == nil {
		return errors.New("no jwks_uri yet")
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), oidcHTTPTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *u, nil)
	if err != nil {
		return fmt.Errorf("jwks_uri %s: %w", *u, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("fetch keys: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch keys from %s: %s", *u, resp.Status)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(io.LimitReader(resp.Body, oidcMaxJWKSBytes)).Decode(&set); err != nil {
		return fmt.Errorf("keys from %s: %w", *u, err)
	}
	var keys []jose.JSONWebKey
	for _, k := range set.Keys {
		// Signing keys only, and public ones: a symmetric "oct" key
		// in a key set must never verify anything.
		if (k.Use == "" || k.Use == "sig") && k.Valid() && k.IsPublic() {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return fmt.Errorf("the key set at %s has no public signing key", *u)
	}
	c.mu.Lock()
	c.keys = keys
	c.mu.Unlock()
	return nil
}

// lookup returns the keys that may have signed a token with kid.
func (c *jwksCache) lookup(kid string) []jose.JSONWebKey {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []jose.JSONWebKey
	for _, k := range c.keys {
		if kid == "" || k.KeyID == kid {
			out = append(out, k)
		}
	}
	return out
}

// refetchForUnknownKid fetches the keys again unless that was tried less
// than minRefetch ago. It fails only when the provider cannot be reached:
// a fetch that worked, now or recently, means the kid is simply unknown.
func (c *jwksCache) refetchForUnknownKid(ctx context.Context) error {
	c.fetchMu.Lock()
	defer c.fetchMu.Unlock()
	if since := c.now().Sub(c.lastUnknown); since < c.minRefetch {
		if c.lastUnknownErr != nil {
			return &providerUnavailable{wait: c.minRefetch - since}
		}
		return nil
	}
	c.lastUnknown = c.now()
	if c.lastUnknownErr = c.get(ctx); c.lastUnknownErr != nil {
		return &providerUnavailable{wait: c.minRefetch}
	}
	return nil
}

// VerifySignature is go-oidc's KeySet: it checks the signature with the
// key the token names, fetching the keys again for a kid not yet seen.
func (c *jwksCache) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	out, _ := ctx.Value(verifyOutcomeKey{}).(*verifyOutcome)
	fail := func(err error) ([]byte, error) {
		if out != nil {
			out.err = err
		}
		return nil, err
	}
	jws, err := jose.ParseSigned(raw, c.algs)
	if err != nil || len(jws.Signatures) != 1 {
		return fail(errBadSignature)
	}
	kid := jws.Signatures[0].Header.KeyID
	keys := c.lookup(kid)
	if len(keys) == 0 {
		if err := c.refetchForUnknownKid(ctx); err != nil {
			return fail(err)
		}
		if keys = c.lookup(kid); len(keys) == 0 {
			return fail(errUnknownKey)
		}
	}
	alg := jws.Signatures[0].Header.Algorithm
	if payload, ok := verifyWith(jws, alg, keys); ok {
		return payload, nil
	}
	if kid == "" {
		// A provider that names no kid may have rotated its one key:
		// fetch again (within the same budget) and try once more.
		if err := c.refetchForUnknownKid(ctx); err != nil {
			return fail(err)
		}
		if payload, ok := verifyWith(jws, alg, c.lookup(kid)); ok {
			return payload, nil
		}
	}
	return fail(errBadSignature)
}

// joseAlgorithms converts algorithm names once, at start-up, rather than on
// every ID token login.
func joseAlgorithms(names []string) []jose.SignatureAlgorithm {
	algs := make([]jose.SignatureAlgorithm, len(names))
	for i, a := range names {
		algs[i] = jose.SignatureAlgorithm(a)
	}
	return algs
}

// verifyWith returns the payload if one of keys verifies the signature.
func verifyWith(jws *jose.JSONWebSignature, alg string, keys []jose.JSONWebKey) ([]byte, bool) {
	for _, k := range keys {
		// A key that names its algorithm verifies only that one.
		if k.Algorithm != "" && k.Algorithm != alg {
			continue
		}
		if payload, err := jws.Verify(k); err == nil {
			return payload, true
		}
	}
	return nil, false
}
