package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// runMint is `tokend mint`: a token from the configured API key, for
// debugging a client without a login round trip, as Twilio's CLI does with
// token:video, token:voice, token:chat and token:sync. It needs only the
// settings, not the users file: the identity is whatever --identity says.
func runMint(args []string, getenv func(string) string, now func() time.Time, stdout, stderr io.Writer) error {
	fs := newFlagSet("mint", stderr)
	envFile := envFileFlag(fs)
	identity := fs.String("identity", "", "the token's identity (required, except for --zoom)")
	var grants grantFlag
	fs.Var(&grants, "grant", "a `GRANT`: video, voice, chat, conversations or sync; repeat it or give a comma list (default TOKEN_GRANTS)")
	room := fs.String("room", "", "the Video room the token is limited to (default VIDEO_ROOM)")
	ttl := fs.String("ttl", "", "lifetime in `SECONDS` (default TOKEN_TTL, at most TOKEN_MAX_TTL)")
	params := voiceParamFlag{}
	fs.Var(params, "voice-param", "a parameter for the TwiML app, as `NAME=VALUE`; repeat it for more")
	zoom := addZoomMintFlags(fs)
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if err := zoom.check(fs); err != nil {
		return err
	}
	lookup, found, err := envLookup(*envFile, getenv)
	if err != nil {
		return err
	}
	if *zoom.zoom {
		return runMintZoom(lookup, *envFile, found, zoom, *identity, *ttl, now(), stdout)
	}
	cfg, err := loadConfig(lookup)
	if err != nil {
		return withEnvFileHint(err, *envFile, found)
	}
	req := tokenRequest{TTL: flexString(*ttl), Grants: nameList(grants), Room: *room}
	if len(params) > 0 {
		req.VoiceParams = params
	}
	minter := NewMinter(cfg.AccountSID, cfg.APIKeySID, cfg.APIKeySecret, cfg.Region)
	token, _, err := mintFor(cfg, minter, now(), *identity, req)
	if err != nil {
		return flagProblems(err)
	}
	fmt.Fprintln(stdout, token)
	return nil
}

// mintFor checks a token request as POST /token does, with identity in
// place of the authenticated user, and signs the token.
func mintFor(cfg *Config, minter *Minter, now time.Time, identity string, req tokenRequest) (string, Claims, error) {
	plan, err := planToken(cfg, req)
	if err != nil {
		return "", Claims{}, err
	}
	if problem := checkIdentity(identity, plan.grants); problem != "" {
		return "", Claims{}, invalidFields(map[string]string{"identity": problem})
	}
	return plan.mint(cfg, minter, now, identity)
}

// requestFlag names the flag of `tokend mint` that sets a field of a token
// request, so that its errors speak of what the user typed.
func requestFlag(field string) string {
	switch field {
	case "grants":
		return "--grant"
	case "voice_params":
		return "--voice-param"
	default: // identity, room, ttl
		return "--" + field
	}
}

// flagProblems rewrites the field problems of a refused request in terms of
// the command's flags; any other error is returned as it is.
func flagProblems(err error) error {
	var e *Error
	if !errors.As(err, &e) || len(e.Params) == 0 {
		return err
	}
	parts := make([]string, len(e.Params))
	for i, p := range e.Params {
		parts[i] = requestFlag(p.Name) + ": " + p.Reason
	}
	return errors.New(strings.Join(parts, "; "))
}

// grantFlag collects --grant values; each may be a comma list, as in a
// request's "grants" and in TOKEN_GRANTS.
type grantFlag []string

func (g *grantFlag) String() string { return strings.Join(*g, ",") }

func (g *grantFlag) Set(v string) error {
	*g = append(*g, strings.Split(v, ",")...)
	return nil
}

// voiceParamFlag collects --voice-param NAME=VALUE pairs.
type voiceParamFlag map[string]string

func (p voiceParamFlag) String() string {
	pairs := make([]string, 0, len(p))
	for k, v := range p {
		pairs = append(pairs, k+"="+v)
	}
	return strings.Join(pairs, ",")
}

func (p voiceParamFlag) Set(v string) error {
	name, value, ok := strings.Cut(v, "=")
	if !ok {
		return errors.New("want NAME=VALUE")
	}
	if _, dup := p[name]; dup {
		return fmt.Errorf("%q given twice", name)
	}
	p[name] = value
	return nil
}
