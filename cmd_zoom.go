package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// zoomMintFlags are the flags of `tokend mint --zoom`.
type zoomMintFlags struct {
	zoom       *bool
	session    *string
	role       *string
	sessionKey *string
	geoRegions *string
}

// addZoomMintFlags adds the Zoom flags to mint's flag set.
func addZoomMintFlags(fs *flag.FlagSet) *zoomMintFlags {
	return &zoomMintFlags{
		zoom:       fs.Bool("zoom", false, "mint a Zoom Video SDK token instead (needs ZOOM_VIDEO_SDK_KEY and ZOOM_VIDEO_SDK_SECRET, not the Twilio settings)"),
		session:    fs.String("session", "", "Zoom: the session `NAME` (tpc; default ZOOM_SESSION)"),
		role:       fs.String("role", "", "Zoom: host or participant (default participant)"),
		sessionKey: fs.String("session-key", "", "Zoom: the session_key claim"),
		geoRegions: fs.String("geo-regions", "", "Zoom: data-centre `REGIONS`, a comma list such as US,DE"),
	}
}

// zoomOnlyFlags and twilioOnlyFlags are flags that make no sense for the
// other kind of token; mint refuses them rather than ignore them.
var (
	zoomOnlyFlags   = []string{"session", "role", "session-key", "geo-regions"}
	twilioOnlyFlags = []string{"grant", "room", "voice-param"}
)

// check refuses flags for the other kind of token.
func (f *zoomMintFlags) check(fs *flag.FlagSet) error {
	var wrong []string
	fs.Visit(func(fl *flag.Flag) {
		for _, name := range zoomOnlyFlags {
			if fl.Name == name && !*f.zoom {
				wrong = append(wrong, "--"+name+" is for Zoom tokens: add --zoom")
			}
		}
		for _, name := range twilioOnlyFlags {
			if fl.Name == name && *f.zoom {
				wrong = append(wrong, "--"+name+" is for Twilio tokens, not Zoom ones")
			}
		}
	})
	if len(wrong) > 0 {
		return errors.New(strings.Join(wrong, "; "))
	}
	return nil
}

// runMintZoom is `tokend mint --zoom`: a Video SDK token checked as POST
// /zoom/token checks one, except that the operator, who holds the secret,
// may name any identity, role and allowed-format session.
func runMintZoom(lookup func(string) string, envFile string, found bool, f *zoomMintFlags, identity, ttl string, now time.Time, stdout io.Writer) error {
	s := &settings{lookup: lookup}
	z := s.zoom()
	if err := s.err(); err != nil {
		return withEnvFileHint(err, envFile, found)
	}
	if z == nil {
		return withEnvFileHint(&ConfigError{Problems: []string{"Zoom tokens are off: set ZOOM_VIDEO_SDK_KEY and ZOOM_VIDEO_SDK_SECRET, the Video SDK app's credentials"}}, envFile, found)
	}
	in := zoomInput{values: map[string]string{}, sentAs: map[string]string{}}
	// Named as flagProblems names flags: "ttl" is --ttl.
	for _, v := range []struct{ field, flag, value string }{
		{"session", "session", *f.session},
		{"ttl", "ttl", ttl},
		{"role", "role", *f.role},
		{"session_key", "session-key", *f.sessionKey},
		{"geo_regions", "geo-regions", *f.geoRegions},
	} {
		in.values[v.field], in.sentAs[v.field] = v.value, v.flag
	}
	plan, err := planZoom(z, identity, in, false)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			for i := range e.Params {
				if e.Params[i].Name == "user_identity" {
					e.Params[i].Name = "identity"
				}
			}
		}
		return flagProblems(err)
	}
	token, _, err := NewZoomMinter(z.Key, z.Secret).Mint(now, plan)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, token)
	return nil
}

// isZoom reports whether the claims are a Zoom Video SDK token's.
func (p tokenParts) isZoom() bool {
	_, key := p.claimFields["app_key"]
	_, tpc := p.claimFields["tpc"]
	return key && tpc
}

// decodeZoom is the rest of `tokend decode` for a Zoom token: its times,
// what Zoom would make of them, and its signature checked with
// ZOOM_VIDEO_SDK_SECRET.
func decodeZoom(w io.Writer, token string, p tokenParts, lookup func(string) string, envFile string, now time.Time) error {
	var c ZoomClaims
	if err := json.Unmarshal(p.claims, &c); err != nil {
		return fmt.Errorf("the claims are not those of a Zoom Video SDK token: %v", err)
	}
	fmt.Fprintf(w, "zoom:       Video SDK token for session %q as %s (role_type %d)\n", c.Topic, zoomRoleName(c.RoleType), c.RoleType)
	at := func(unix int64) string { return time.Unix(unix, 0).UTC().Format(time.RFC3339) }
	_, hasIAT := p.claimFields["iat"]
	_, hasExp := p.claimFields["exp"]
	switch exp := time.Unix(c.ExpiresAt, 0); {
	case !hasIAT || !hasExp:
		fmt.Fprintln(w, "times:      iat or exp is missing: Zoom refuses the token")
	case !exp.After(now):
		fmt.Fprintf(w, "issued:     %s (%s)\n", at(c.IssuedAt), relative(time.Unix(c.IssuedAt, 0), now))
		fmt.Fprintf(w, "expires:    %s (expired %s: Zoom refuses it)\n", at(c.ExpiresAt), relative(exp, now))
	default:
		fmt.Fprintf(w, "issued:     %s (%s)\n", at(c.IssuedAt), relative(time.Unix(c.IssuedAt, 0), now))
		fmt.Fprintf(w, "expires:    %s (%s)\n", at(c.ExpiresAt), relative(exp, now))
	}
	switch life := time.Duration(c.ExpiresAt-c.IssuedAt) * time.Second; {
	case !hasIAT || !hasExp:
	case life < zoomMinTTL || life > zoomMaxTTL:
		fmt.Fprintf(w, "lifetime:   %s (Zoom wants exp %s to %s after iat: it refuses this token)\n", life, zoomMinTTL, zoomMaxTTL)
	default:
		fmt.Fprintf(w, "lifetime:   %s\n", life)
	}
	if c.Version != 1 {
		fmt.Fprintf(w, "version:    %d (Zoom wants 1)\n", c.Version)
	}
	secret := lookup("ZOOM_VIDEO_SDK_SECRET")
	if secret == "" {
		return fmt.Errorf("signature: not checked: ZOOM_VIDEO_SDK_SECRET is not set, in the environment or in %s", envFile)
	}
	if err := verifySignature(token, secret); err != nil {
		msg := "signature: does not verify with ZOOM_VIDEO_SDK_SECRET: " + err.Error()
		if key := lookup("ZOOM_VIDEO_SDK_KEY"); key != "" && c.AppKey != key {
			msg += fmt.Sprintf("; the token is for SDK key %q (app_key), the settings name %s", c.AppKey, key)
		}
		return errors.New(msg)
	}
	fmt.Fprintln(w, "signature:  valid: HS256 with ZOOM_VIDEO_SDK_SECRET")
	return nil
}
