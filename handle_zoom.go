package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// zoomField is a field of POST /zoom/token. camel is the name Zoom's
// sample endpoint reads, so a page written against it switches to tokend
// without changes.
type zoomField struct {
	name, camel string
	kind        zoomFieldKind
}

type zoomFieldKind int

const (
	zoomText    zoomFieldKind = iota // a JSON string
	zoomNumber                       // a JSON number, or a string holding one
	zoomRegions                      // a comma-separated string or a list of strings
)

var zoomFields = []zoomField{
	{"username", "", zoomText},
	{"password", "", zoomText},
	{"session", "sessionName", zoomText},
	{"ttl", "expirationSeconds", zoomNumber},
	{"role", "", zoomNumber},
	{"user_identity", "userIdentity", zoomText},
	{"session_key", "sessionKey", zoomText},
	{"geo_regions", "geoRegions", zoomRegions},
	{"cloud_recording_option", "cloudRecordingOption", zoomNumber},
	{"cloud_recording_election", "cloudRecordingElection", zoomNumber},
	{"video_webrtc_mode", "videoWebrtcMode", zoomNumber},
	{"audio_webrtc_mode", "audioWebrtcMode", zoomNumber},
	{"telemetry_tracking_id", "telemetryTrackingId", zoomText},
}

// zoomFieldNames lists the fields for error messages.
var zoomFieldNames = func() string {
	var names []string
	for _, f := range zoomFields {
		names = append(names, f.name)
	}
	return strings.Join(names, ", ") + " (or Zoom's sample's camelCase names: sessionName, expirationSeconds, ...)"
}()

// lookupZoomField finds a field by either of its names.
func lookupZoomField(name string) (zoomField, bool) {
	for _, f := range zoomFields {
		if name == f.name || (f.camel != "" && name == f.camel) {
			return f, true
		}
	}
	return zoomField{}, false
}

// zoomTokenResponse is the body of a successful POST /zoom/token.
// Signature is the token again, under the name Zoom's sample answers with;
// Session and RoleType say what the token carries, which the page needs
// when the session came from ZOOM_SESSION.
type zoomTokenResponse struct {
	Token     string `json:"token"`
	Signature string `json:"signature"`
	Identity  string `json:"identity"`
	Session   string `json:"session"`
	RoleType  int    `json:"role_type"`
	ExpiresAt string `json:"expires_at"`
}

// handleZoomToken trades a login for a Zoom Video SDK token. Without
// ZOOM_VIDEO_SDK_KEY and ZOOM_VIDEO_SDK_SECRET it answers 404 and says so.
func handleZoomToken(log *slog.Logger, cfg *Config, minter *ZoomMinter, logins *signIn, now func() time.Time) http.Handler {
	if cfg.Zoom == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeError(w, r, log, Errorf(ENOTFOUND, "Zoom Video SDK tokens are not enabled on this server: its operator sets ZOOM_VIDEO_SDK_KEY and ZOOM_VIDEO_SDK_SECRET to enable POST /zoom/token"))
		})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			answerNotPost(w, r, log, cfg, "a Zoom token with POST /zoom/token")
			return
		}
		in, err := decodeZoomRequest(w, r)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		username, _ := in.get("username")
		password, _ := in.get("password")
		who, err := logins.identify(r, username, password)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		identity := who.identity
		// Only now, as for /token: what the settings allow is for
		// users who have logged in.
		plan, err := planZoom(cfg.Zoom, identity, in, true)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		token, claims, err := minter.Mint(now(), plan)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		if rl := requestLogFrom(r.Context()); rl != nil {
			rl.identity, rl.zoomRole, rl.zoomSession = identity, zoomRoleName(claims.RoleType), claims.Topic
		}
		writeJSON(w, zoomTokenResponse{
			Token:     token,
			Signature: token,
			Identity:  identity,
			Session:   claims.Topic,
			RoleType:  claims.RoleType,
			ExpiresAt: time.Unix(claims.ExpiresAt, 0).UTC().Format(time.RFC3339),
		})
	})
}

// decodeZoomRequest reads a JSON or form body into the request's fields.
// An empty body is allowed: the session may come from ZOOM_SESSION and
// the login from the Authorization header.
func decodeZoomRequest(w http.ResponseWriter, r *http.Request) (zoomInput, error) {
	in := zoomInput{values: map[string]string{}, sentAs: map[string]string{}}
	buf := getBodyBuffer()
	defer putBodyBuffer(buf)
	mediaType, err := readBody(w, r, buf)
	switch {
	case err != nil:
		return in, err
	case mediaType == "application/json":
		return in, decodeZoomJSON(buf.Bytes(), in)
	case mediaType == "application/x-www-form-urlencoded":
		return in, decodeZoomForm(buf.Bytes(), in)
	}
	return in, nil // no body
}

// set records a field's value under its snake_case name, refusing a field
// sent twice under its two names.
func (in zoomInput) set(f zoomField, sentAs, value string) error {
	if prev, dup := in.sentAs[f.name]; dup {
		return invalidFields(map[string]string{sentAs: fmt.Sprintf("is the same field as %s, which was sent too; send one", prev)})
	}
	in.values[f.name], in.sentAs[f.name] = value, sentAs
	return nil
}

// decodeZoomJSON reads one JSON object. Values become text: numbers as
// written, a list of regions comma-joined; null is a field not sent.
func decodeZoomJSON(body []byte, in zoomInput) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	var obj map[string]json.RawMessage
	if err := dec.Decode(&obj); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) {
			return Errorf(EINVALID, "the body must be a JSON object with the fields %s", zoomFieldNames)
		}
		return jsonSyntaxProblem(err, len(body))
	}
	if _, err := dec.Token(); err != io.EOF {
		return Errorf(EINVALID, "the body holds more than one JSON value; send one object")
	}
	if obj == nil {
		return Errorf(EINVALID, "the body must be a JSON object with the fields %s", zoomFieldNames)
	}
	for _, key := range slices.Sorted(maps.Keys(obj)) {
		f, ok := lookupZoomField(key)
		if !ok {
			return zoomUnknownField(key)
		}
		raw := bytes.TrimSpace(obj[key])
		if string(raw) == "null" {
			continue
		}
		value, problem := zoomJSONValue(f.kind, raw)
		if problem != "" {
			return invalidFields(map[string]string{key: problem})
		}
		if err := in.set(f, key, value); err != nil {
			return err
		}
	}
	return nil
}

// zoomJSONValue turns a JSON value into the field's text, or says what
// kind of value the field takes.
func zoomJSONValue(kind zoomFieldKind, raw []byte) (string, string) {
	var s string
	isString := json.Unmarshal(raw, &s) == nil
	switch kind {
	case zoomText:
		if !isString {
			return "", "must be a string"
		}
		return s, ""
	case zoomNumber:
		var n json.Number
		if isString {
			return s, ""
		}
		if json.Unmarshal(raw, &n) != nil {
			return "", "must be a number"
		}
		return n.String(), ""
	default: // zoomRegions
		var list []string
		switch {
		case isString:
			return s, ""
		case json.Unmarshal(raw, &list) == nil:
			return strings.Join(list, ","), ""
		}
		return "", "must be a comma-separated string or a list of strings"
	}
}

// decodeZoomForm reads a form body; geo_regions may repeat.
func decodeZoomForm(body []byte, in zoomInput) error {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		// The parser's message quotes the body, which may hold a password.
		return Errorf(EINVALID, "the form body is malformed: every %% must start a two-digit hex escape, and fields are separated by &; encode it as application/x-www-form-urlencoded")
	}
	for _, key := range slices.Sorted(maps.Keys(form)) {
		f, ok := lookupZoomField(key)
		if !ok {
			return zoomUnknownField(key)
		}
		values := form[key]
		if len(values) > 1 && f.kind != zoomRegions {
			return invalidFields(map[string]string{key: "sent more than once"})
		}
		if err := in.set(f, key, strings.Join(values, ",")); err != nil {
			return err
		}
	}
	return nil
}

// zoomUnknownField refuses a field that is not a Zoom token request's,
// naming it only when it looks like a name (see unknownField).
func zoomUnknownField(name string) error {
	if !looksLikeFieldName(name) {
		return Errorf(EINVALID, "the body has a field that is not one of %s", zoomFieldNames)
	}
	return invalidFields(map[string]string{name: "unknown field; the fields are " + zoomFieldNames})
}
