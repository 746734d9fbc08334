package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/term"
)

// maxTokenInput caps what `tokend decode` reads from stdin: a token is a
// few hundred bytes, and a command reading a stray stream should stop.
const maxTokenInput = 64 << 10

// runDecode is `tokend decode`: what a token says, whether it is still
// valid, and whether the configured secret signed it, for the day a client
// reports "invalid access token". It never prints the secret.
func runDecode(args []string, getenv func(string) string, now func() time.Time, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("decode", stderr)
	envFile := envFileFlag(fs)
	if err := parseArgs(fs, args, 0, -1); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		fmt.Fprintf(stderr, "tokend decode: want one token, or - to read it from stdin; got %d arguments\n", fs.NArg())
		shortUsage(stderr, "decode")
		return errUsage
	}
	token, err := readToken(fs.Arg(0), stdin, stderr)
	if err != nil {
		return err
	}
	if token, err = unwrapToken(token); err != nil {
		return err
	}
	lookup, _, err := envLookup(*envFile, getenv)
	if err != nil {
		return err
	}
	parts, err := splitToken(token)
	if err != nil {
		return err
	}
	for _, seg := range []struct {
		name string
		json []byte
	}{{"header", parts.header}, {"claims", parts.claims}} {
		var out bytes.Buffer
		json.Indent(&out, seg.json, "", "  ") // splitToken checked it is JSON
		fmt.Fprintf(stdout, "%s:\n%s\n", seg.name, out.Bytes())
	}
	if parts.isZoom() {
		return decodeZoom(stdout, token, parts, lookup, *envFile, now())
	}
	claims, err := parts.accessClaims()
	if err != nil {
		return err
	}
	writeTimes(stdout, parts, claims, now())

	secret := lookup("TWILIO_API_KEY_SECRET")
	if secret == "" {
		return fmt.Errorf("signature: not checked: TWILIO_API_KEY_SECRET is not set, in the environment or in %s", *envFile)
	}
	if err := verifySignature(token, secret); err != nil {
		msg := "signature: does not verify with TWILIO_API_KEY_SECRET: " + err.Error()
		if sid := lookup("TWILIO_API_KEY_SID"); sid != "" && claims.Issuer != "" && claims.Issuer != sid {
			msg += fmt.Sprintf("; the token is for API key %q (iss), the settings name %s", claims.Issuer, sid)
		}
		return errors.New(msg)
	}
	fmt.Fprintln(stdout, "signature:  valid: HS256 with TWILIO_API_KEY_SECRET")
	return nil
}

// readToken returns the token given as arg, or read from stdin when arg is
// "" or "-", without surrounding whitespace.
func readToken(arg string, stdin io.Reader, stderr io.Writer) (string, error) {
	if arg != "" && arg != "-" {
		return strings.TrimSpace(arg), nil
	}
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintln(stderr, "tokend decode: paste the token, then press Enter and Ctrl-D")
	}
	b, err := io.ReadAll(io.LimitReader(stdin, maxTokenInput+1))
	if err != nil {
		return "", fmt.Errorf("read the token from stdin: %w", err)
	}
	if len(b) > maxTokenInput {
		return "", fmt.Errorf("stdin holds over %d KiB, which is not a token", maxTokenInput>>10)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", errors.New("no token: give it as an argument, or on stdin")
	}
	return token, nil
}

// unwrapToken takes the token out of what is usually pasted around it: an
// Authorization header or its "Bearer " value, POST /token's JSON answer,
// or a JSON string with its quotes. Anything else is returned as it is.
func unwrapToken(s string) (string, error) {
	s = strings.TrimSpace(s)
	if name, value, ok := strings.Cut(s, ":"); ok && strings.EqualFold(strings.TrimSpace(name), "Authorization") {
		s = strings.TrimSpace(value)
	}
	if scheme, rest, ok := strings.Cut(s, " "); ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(rest), nil
	}
	switch {
	case strings.HasPrefix(s, "{"):
		var answer map[string]any
		if err := json.Unmarshal([]byte(s), &answer); err != nil {
			return "", fmt.Errorf("not a token: it starts like JSON but is not (%v); paste the token, or POST /token's whole answer", err)
		}
		if token, ok := answer["token"].(string); ok {
			return strings.TrimSpace(token), nil
		}
		if detail, ok := answer["detail"].(string); ok {
			return "", fmt.Errorf("not a token: this is an error answer (%q), not a token", clip(detail))
		}
		return "", errors.New(`not a token: this JSON has no "token" field; paste the token, or POST /token's whole answer`)
	case len(s) >= 2 && strings.HasPrefix(s, `"`) && strings.HasSuffix(s, `"`):
		var token string
		if err := json.Unmarshal([]byte(s), &token); err == nil {
			return strings.TrimSpace(token), nil
		}
	}
	return s, nil
}

// tokenParts is a token taken apart. Nothing in it is trusted: the
// signature has not been checked.
type tokenParts struct {
	header, claims []byte                     // the JSON of the first two segments
	claimFields    map[string]json.RawMessage // claims by name, to tell absent from zero
}

// splitToken decodes the header and claims of a compact JWT, refusing
// anything that is not three base64url segments with JSON objects first.
func splitToken(token string) (tokenParts, error) {
	segs := strings.Split(token, ".")
	if len(segs) != 3 {
		return tokenParts{}, fmt.Errorf("not a token: it has %d part(s) separated by dots; a JWT has 3, header.claims.signature", len(segs))
	}
	var p tokenParts
	for i, name := range []string{"header", "claims", "signature"} {
		raw, err := base64.RawURLEncoding.DecodeString(segs[i])
		if err != nil {
			return tokenParts{}, fmt.Errorf("not a token: its %s is not unpadded base64url (%v)", name, err)
		}
		if name == "signature" {
			break
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			return tokenParts{}, fmt.Errorf("not a token: its %s is not a JSON object (%v)", name, err)
		}
		if fields == nil {
			return tokenParts{}, fmt.Errorf("not a token: its %s is not a JSON object", name)
		}
		if name == "header" {
			p.header = raw
		} else {
			p.claims, p.claimFields = raw, fields
		}
	}
	return p, nil
}

// accessClaims reads the claims as those of a Twilio access token.
func (p tokenParts) accessClaims() (Claims, error) {
	var c Claims
	if err := json.Unmarshal(p.claims, &c); err != nil {
		return Claims{}, fmt.Errorf("the claims are not those of an access token: %v", err)
	}
	return c, nil
}

// writeTimes says when the token was issued, from when and until when it is
// valid, relative to now, and what Twilio would make of it.
func writeTimes(w io.Writer, p tokenParts, c Claims, now time.Time) {
	has := func(name string) bool { _, ok := p.claimFields[name]; return ok }
	at := func(unix int64) string { return time.Unix(unix, 0).UTC().Format(time.RFC3339) }
	if has("iat") {
		fmt.Fprintf(w, "issued:     %s (%s)\n", at(c.IssuedAt), relative(time.Unix(c.IssuedAt, 0), now))
	} else {
		fmt.Fprintln(w, "issued:     (no iat claim)")
	}
	switch nbf := time.Unix(c.NotBefore, 0); {
	case !has("nbf"):
		fmt.Fprintln(w, "not before: (no nbf claim)")
	case nbf.After(now):
		fmt.Fprintf(w, "not before: %s (%s: Twilio refuses it until then, error 20104)\n", at(c.NotBefore), relative(nbf, now))
	default:
		fmt.Fprintf(w, "not before: %s (%s)\n", at(c.NotBefore), relative(nbf, now))
	}
	switch exp := time.Unix(c.ExpiresAt, 0); {
	case !has("exp"):
		fmt.Fprintln(w, "expires:    never: Twilio refuses a token without exp")
	case !exp.After(now):
		fmt.Fprintf(w, "expires:    %s (expired %s: Twilio refuses it, error 20104)\n", at(c.ExpiresAt), relative(exp, now))
	default:
		fmt.Fprintf(w, "expires:    %s (%s)\n", at(c.ExpiresAt), relative(exp, now))
	}
	if has("nbf") && has("exp") {
		switch life := time.Unix(c.ExpiresAt, 0).Sub(time.Unix(c.NotBefore, 0)); {
		case life > maxTokenTTL:
			fmt.Fprintf(w, "lifetime:   %s (over the %s Twilio allows: error 20157)\n", life, maxTokenTTL)
		case life <= 0:
			fmt.Fprintf(w, "lifetime:   %s (exp is not after nbf: Twilio refuses it)\n", life)
		default:
			fmt.Fprintf(w, "lifetime:   %s\n", life)
		}
	}
}

// relative says how far t is from now, to the second.
func relative(t, now time.Time) string {
	switch {
	case t.After(now):
		return "in " + t.Sub(now).Round(time.Second).String()
	case t.Before(now):
		return now.Sub(t).Round(time.Second).String() + " ago"
	default:
		return "now"
	}
}

// verifySignature checks the token's HS256 signature with golang-jwt: a
// verifier independent of the code that signs (token.go), as Twilio is.
func verifySignature(token, secret string) error {
	_, err := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithoutClaimsValidation()).
		Parse(token, func(*jwt.Token) (any, error) { return []byte(secret), nil })
	if errors.Is(err, jwt.ErrSignatureInvalid) {
		return errors.New("it was signed with another secret, or changed since")
	}
	return err
}
