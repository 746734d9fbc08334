package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// maxBodyBytes caps a /token request body.
const maxBodyBytes = 64 << 10

// tokenRequest is the body of POST /token, as JSON or as a form.
type tokenRequest struct {
	Username    string            `json:"username"`
	Password    string            `json:"password"`
	TTL         flexString        `json:"ttl"`
	Grants      nameList          `json:"grants"`
	Room        string            `json:"room"`
	VoiceParams map[string]string `json:"voice_params"`
	// Session asks for a login session (true) or none (false); unset,
	// a browser gets one and other clients do not (wantsSession).
	Session *bool `json:"session"`
}

// tokenRequestFields lists the fields a request may send, for error messages.
const tokenRequestFields = "username, password, ttl, grants, room, voice_params, session"

// nameList is a list of names sent as a JSON array or as one
// comma-separated string, so `grants=video,voice` works from httpie and curl.
type nameList []string

func (l *nameList) UnmarshalJSON(b []byte) error {
	if string(b) == "null" { // as encoding/json treats null: no value
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*l = strings.Split(s, ",")
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return &fieldError{"grants", "must be a list of grant names or a comma-separated string"}
	}
	*l = list
	return nil
}

// flexString holds a JSON number or string as its text, so `ttl:=600` and
// `ttl=600` both work; planToken checks the value.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*f = flexString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return &fieldError{"ttl", "must be a whole number of seconds"}
	}
	*f = flexString(n)
	return nil
}

// fieldError is a decoding problem with one named field.
type fieldError struct{ field, problem string }

func (e *fieldError) Error() string { return e.field + ": " + e.problem }

// tokenResponse is the body of a successful POST /token. writeTokenResponse
// writes it by hand, byte for byte as encoding/json would from these tags
// (TestWriteTokenResponse); clients and tests decode it with them.
type tokenResponse struct {
	Token     string `json:"token"`
	Identity  string `json:"identity"`
	ExpiresAt string `json:"expires_at"`
	// With a session: when it ends unless renewed before, and when it
	// ends whatever happens, so a page can tell its user.
	SessionIdleExpiresAt string `json:"session_idle_expires_at,omitempty"`
	SessionExpiresAt     string `json:"session_expires_at,omitempty"`
}

// tokenPlan is a request after validation: what the token will carry.
type tokenPlan struct {
	grants grantSet
	ttl    time.Duration
	opt    grantOptions
}

// handleToken trades a login for an access token.
func handleToken(log *slog.Logger, cfg *Config, minter *Minter, logins *signIn, now func() time.Time) http.Handler {
	recent := newRecentTokens()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			if err := corsPreflightProblem(w, r, cfg.CORSOrigins); err != nil {
				writeError(w, r, log, err)
			} else {
				answerNotPost(w, r, log, cfg, "a token with POST /token")
			}
			return
		}
		req, err := decodeTokenRequest(w, r)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		if err := logins.checkSessionWish(r, req.Session); err != nil {
			writeError(w, r, log, err)
			return
		}
		in, err := logins.identify(r, req.Username, req.Password)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		username, source := in.identity, in.source
		// Only now: the answers about grants, TTLs and identity rules
		// describe this server's configuration, which is for users who
		// have logged in. The identity is the authenticated username
		// or the ID token's identity claim.
		plan, err := planToken(cfg, req)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		if problem := checkIdentity(username, plan.grants); problem != "" {
			writeError(w, r, log, invalidFields(map[string]string{"identity": fmt.Sprintf("the identity is %s %q, which %s", source, username, problem)}))
			return
		}
		signed, err := recent.mint(plan, cfg, minter, now(), username)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		if rl := requestLogFrom(r.Context()); rl != nil {
			rl.identity, rl.grants, rl.jti = username, plan.grants, signed.claims.JTI
		}
		logins.startSession(w, r, &in, req.Session)
		if in.session == nil {
			writeAnswer(w, signed.answer, signed.answerLength)
			return
		}
		writeTokenResponse(w, tokenResponse{
			Token:                signed.token,
			Identity:             username,
			ExpiresAt:            signed.expiresAt,
			SessionIdleExpiresAt: in.session.IdleUntil.UTC().Format(time.RFC3339),
			SessionExpiresAt:     in.session.EndsAt.UTC().Format(time.RFC3339),
		})
	})
}

// answerNotPost answers a request to a token endpoint that is not a POST.
// With CORS on, OPTIONS is a preflight (or a plain OPTIONS): allowCORS has
// set the CORS headers when the origin is allowed, and the 204 is ours.
// Any other method is a 405 that says to request what (such as "a token
// with POST /token").
func answerNotPost(w http.ResponseWriter, r *http.Request, log *slog.Logger, cfg *Config, what string) {
	cors := len(cfg.CORSOrigins) > 0
	allow := "POST"
	if cors {
		allow = "OPTIONS, POST"
	}
	w.Header().Set("Allow", allow)
	if r.Method == http.MethodOptions && cors {
		w.WriteHeader(http.StatusNoContent)
	} else {
		writeError(w, r, log, Errorf(EMETHOD, "%s is not allowed here: request %s", r.Method, what))
	}
}

// writeTokenResponse writes the 200 answer resp.
func writeTokenResponse(w http.ResponseWriter, resp tokenResponse) {
	bp := responseBuffers.Get().(*[]byte)
	defer responseBuffers.Put(bp)
	*bp = appendTokenResponse((*bp)[:0], resp)
	writeAnswer(w, *bp, []string{strconv.Itoa(len(*bp))})
}

// appendTokenResponse appends resp exactly as encoding/json would write it.
// The token (base64url and dots) and the RFC 3339 time never need escaping,
// so only the identity goes through the encoder: a reflective encoder checks
// every byte of the ~500-byte token for escaping, which was a fifth of the
// handler's time (BenchmarkTokenThroughput).
func appendTokenResponse(buf []byte, resp tokenResponse) []byte {
	buf = append(buf, `{"token":"`...)
	buf = append(buf, resp.Token...)
	buf = append(buf, `","identity":`...)
	if plainJSONString(resp.Identity) {
		buf = append(buf, '"')
		buf = append(buf, resp.Identity...)
		buf = append(buf, '"')
	} else {
		identity, _ := json.Marshal(resp.Identity) // a string always encodes
		buf = append(buf, identity...)
	}
	buf = append(buf, `,"expires_at":"`...)
	buf = append(buf, resp.ExpiresAt...)
	if resp.SessionIdleExpiresAt != "" {
		buf = append(buf, `","session_idle_expires_at":"`...)
		buf = append(buf, resp.SessionIdleExpiresAt...)
	}
	if resp.SessionExpiresAt != "" {
		buf = append(buf, `","session_expires_at":"`...)
		buf = append(buf, resp.SessionExpiresAt...)
	}
	return append(buf, "\"}\n"...)
}

// writeAnswer writes a 200 JSON answer of known length (length is
// len(body) in decimal, a header value).
func writeAnswer(w http.ResponseWriter, body []byte, length []string) {
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Cache-Control"] = noStore
	h["Content-Length"] = length // observe checks that it was delivered
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// Header values shared by every 200 (net/http only reads them).
var (
	jsonContentType = []string{"application/json"}
	noStore         = []string{"no-store"}
)

// responseBuffers hold the 200 answers as they are assembled; net/http
// copies what is written, so a buffer is free again once Write returns.
var responseBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// plainJSONString reports whether encoding/json writes s as is between
// quotes: printable ASCII other than the characters it escapes.
func plainJSONString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// bodyBuffers are the buffers request bodies are read into.
var bodyBuffers = sync.Pool{New: func() any { return bytes.NewBuffer(make([]byte, 0, 1024)) }}

// decodeTokenRequest reads a JSON or form body. An empty body is allowed
// (credentials may come in the Authorization header).
func decodeTokenRequest(w http.ResponseWriter, r *http.Request) (tokenRequest, error) {
	var req tokenRequest
	buf := getBodyBuffer()
	defer putBodyBuffer(buf)
	mediaType, err := readBody(w, r, buf)
	body := buf.Bytes()
	switch {
	case err != nil:
		return req, err
	case mediaType == "application/json":
		if decodeSimpleJSON(body, &req) {
			return req, nil
		}
		// Only here does the request go to the heap (encoding/json
		// keeps a pointer to it), and it starts from zero again.
		full := new(tokenRequest)
		err := decodeJSONRequest(body, full)
		return *full, err
	case mediaType == "application/x-www-form-urlencoded":
		return decodeFormRequest(body)
	}
	return req, nil // no body
}

// readBody reads r's body into buf and returns its media type: JSON or a
// form, or "" when the body is empty (every endpoint allows that). JSON
// sent as a form (curl -d's default) is refused here, for every endpoint,
// with the Content-Type to send instead. Nothing decoded from buf may
// point into it: the JSON decoders and url.ParseQuery copy every string,
// so putBodyBuffer can clear it.
func readBody(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer) (string, error) {
	// A body whose length is declared is already cut at that length by
	// net/http: only a longer declared length or a chunked body needs
	// MaxBytesReader, which also tells the server to close the connection.
	var err error
	if r.ContentLength >= 0 && r.ContentLength <= maxBodyBytes {
		// Room for the body and ReadFrom's last read at once: a buffer
		// that grew midway would leave a copy of the password behind,
		// which putBodyBuffer cannot clear.
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
		_, err = buf.ReadFrom(r.Body)
	} else {
		_, err = buf.ReadFrom(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return "", Errorf(ETOOLARGE, "the request body is over %d KiB; a token request is a few hundred bytes", maxBodyBytes>>10)
		}
		return "", Errorf(EINVALID, "the request body could not be read")
	}
	if buf.Len() == 0 {
		return "", nil
	}
	ct := r.Header.Get("Content-Type")
	mediaType, err := ct, error(nil)
	if ct != "application/json" { // the usual case needs no parsing
		mediaType, _, err = mime.ParseMediaType(ct)
	}
	switch {
	case ct == "":
		return "", Errorf(EMEDIATYPE, "the request has a body but no Content-Type; send application/json or application/x-www-form-urlencoded")
	case err != nil:
		return "", Errorf(EMEDIATYPE, "the Content-Type %q is malformed; send application/json or application/x-www-form-urlencoded", ct)
	case mediaType == "application/x-www-form-urlencoded" && looksLikeJSON(buf.Bytes()):
		return "", Errorf(EMEDIATYPE, "the body looks like JSON but was sent as application/x-www-form-urlencoded (what curl -d sends unless told otherwise); send it with Content-Type: application/json")
	case mediaType == "application/json", mediaType == "application/x-www-form-urlencoded":
		return mediaType, nil
	default:
		return "", Errorf(EMEDIATYPE, "the Content-Type %s is not supported; send application/json or application/x-www-form-urlencoded", mediaType)
	}
}

// looksLikeJSON reports whether body, past any space, starts a JSON object
// or list: sent as a form, it was meant as JSON.
func looksLikeJSON(body []byte) bool {
	t := bytes.TrimSpace(body)
	return len(t) > 0 && (t[0] == '{' || t[0] == '[')
}

// getBodyBuffer returns an empty buffer to read a request body into.
func getBodyBuffer() *bytes.Buffer { return bodyBuffers.Get().(*bytes.Buffer) }

// putBodyBuffer clears buf (it held a password) and returns it to the pool,
// unless a rare big body made it large.
func putBodyBuffer(buf *bytes.Buffer) {
	clear(buf.Bytes())
	buf.Reset()
	if buf.Cap() <= 4<<10 {
		bodyBuffers.Put(buf)
	}
}

// decodeJSONRequest reads exactly one JSON object with known fields into req.
func decodeJSONRequest(body []byte, req *tokenRequest) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(req); err != nil {
		return jsonProblem(err, len(body))
	}
	// Anything after the object, even a stray ] or }, is refused: More
	// alone would miss those.
	if _, err := dec.Token(); err != io.EOF {
		return Errorf(EINVALID, "the body holds more than one JSON value; send one object")
	}
	return checkJSONKeys(body)
}

// checkJSONKeys refuses what encoding/json lets through silently: a key sent
// twice (the last one wins) and a key in another case (names match
// case-insensitively). {"username":"alice","UserName":"mallory"} would log
// in mallory while a proxy or audit log that reads the first key sees alice;
// the form decoder refuses the same. body is one valid JSON object (Decode
// has accepted it), so the scan need not check syntax; it allocates only
// for a key with escapes, which no client sends.
func checkJSONKeys(body []byte) error {
	problems := map[string]string{}
	var seen uint8 // one bit per field of jsonFields
	i := skipJSONSpace(body, 0)
	if body[i] != '{' { // null, which Decode reads as no fields
		return nil
	}
	i++
	for {
		i = skipJSONSpace(body, i)
		if body[i] == '}' {
			break
		}
		if body[i] == ',' {
			i = skipJSONSpace(body, i+1)
		}
		rawKey, next := jsonKey(body, i)
		i = skipJSONSpace(body, next) + 1 // past :
		i = skipJSONSpace(body, i)
		end := skipJSONValue(body, i)
		field := -1
		for n, f := range jsonFields {
			if string(rawKey) == f { // compared without a copy
				field = n
			}
		}
		key := jsonFields[max(field, 0)]
		if field < 0 {
			key = string(rawKey)
		}
		switch {
		case field >= 0 && seen&(1<<field) != 0:
			problems[key] = "sent more than once"
		case field >= 0:
			seen |= 1 << field
			if key == "voice_params" && body[i] == '{' {
				if name, ok := duplicateJSONKey(body[i:end]); ok {
					problems[key] = fmt.Sprintf("has the parameter %q more than once", name)
				}
			}
		default:
			// Decode refuses unknown keys, so this one is a known
			// name in another case.
			for _, f := range jsonFields {
				if strings.EqualFold(key, f) {
					if !looksLikeFieldName(key) {
						return Errorf(EINVALID, "the body has a field name in another case than %s; field names are lowercase", f)
					}
					problems[key] = "unknown field; field names are lowercase: " + f
				}
			}
		}
		i = end
	}
	if len(problems) > 0 {
		return invalidFields(problems)
	}
	return nil
}

// jsonFields are the keys of a JSON token request, exactly as sent.
var jsonFields = strings.Split(strings.ReplaceAll(tokenRequestFields, " ", ""), ",")

// duplicateJSONKey reports the first key that obj, a valid JSON object,
// holds twice.
func duplicateJSONKey(obj []byte) (string, bool) {
	var keys [][]byte
	i := 1
	for {
		i = skipJSONSpace(obj, i)
		if obj[i] == '}' {
			return "", false
		}
		if obj[i] == ',' {
			i = skipJSONSpace(obj, i+1)
		}
		key, next := jsonKey(obj, i)
		if slices.ContainsFunc(keys, func(k []byte) bool { return bytes.Equal(k, key) }) {
			return string(key), true
		}
		keys = append(keys, key)
		i = skipJSONSpace(obj, next) + 1
		i = skipJSONValue(obj, skipJSONSpace(obj, i))
	}
}

// jsonKey reads the string that starts at b[i] and returns it unescaped,
// with the index after its closing quote.
func jsonKey(b []byte, i int) ([]byte, int) {
	end := skipJSONValue(b, i)
	raw := b[i:end]
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw[1 : len(raw)-1], end
	}
	var s string
	json.Unmarshal(raw, &s) // valid: Decode has read it
	return []byte(s), end
}

// skipJSONSpace returns the index of the first byte at or after i that is
// not JSON whitespace.
func skipJSONSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipJSONValue returns the index just after the valid JSON value that
// starts at b[i].
func skipJSONValue(b []byte, i int) int {
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
			if depth == 0 {
				return i + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1
			}
			if depth < 0 { // the end of the enclosing value
				return i
			}
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return i
			}
		}
	}
	return i
}

// jsonProblem turns a decoding error into a message naming what to fix.
// A syntax error is described by its position: encoding/json's own message
// quotes the offending byte, which may be a password's.
func jsonProblem(err error, size int) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var field *fieldError
	switch {
	case errors.As(err, &field):
		return invalidFields(map[string]string{field.field: field.problem})
	case errors.Is(err, io.ErrUnexpectedEOF), errors.As(err, &syntax):
		return jsonSyntaxProblem(err, size)
	case errors.As(err, &typ) && typ.Field != "":
		field, _, _ := strings.Cut(typ.Field, ".")
		return invalidFields(map[string]string{field: fmt.Sprintf("must be %s, not a JSON %s", fieldKind(field), typ.Value)})
	case errors.As(err, &typ):
		return Errorf(EINVALID, "the body must be a JSON object with the fields %s", tokenRequestFields)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		return unknownField(field, "")
	default:
		// Not echoed: what else the decoder might say is not known here.
		return Errorf(EINVALID, "the body could not be read as a token request; send a JSON object with the fields %s", tokenRequestFields)
	}
}

// jsonSyntaxProblem describes a body encoding/json could not parse (it is
// size bytes long) by where it went wrong, never by what is there: the
// decoder's own message quotes the offending character, which may be one
// of a password's.
func jsonSyntaxProblem(err error, size int) error {
	var syntax *json.SyntaxError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return Errorf(EINVALID, "the body is not valid JSON: it ends (after %d bytes) before the object is complete", size)
	case errors.As(err, &syntax):
		// Offset counts the bytes read, the offending one included: it
		// is that byte's position counted from 1.
		return Errorf(EINVALID, "the body is not valid JSON: a syntax error at byte %d of %d", syntax.Offset, size)
	default:
		return Errorf(EINVALID, "the body is not valid JSON")
	}
}

func fieldKind(field string) string {
	switch field {
	case "ttl":
		return "a whole number of seconds"
	case "grants":
		return "a list of grant names"
	case "voice_params":
		return "an object of string values"
	case "session":
		return "true or false"
	default:
		return "a string"
	}
}

// unknownField refuses a field that is not a token request's. It names the
// field only when it looks like a field name: a body sent with the wrong
// Content-Type (curl -d '{"username":…,"password":…}' sends a form) turns
// the whole text, password included, into one "field", which must not be
// echoed to the client or the log.
func unknownField(name, hint string) error {
	if !looksLikeFieldName(name) {
		return Errorf(EINVALID, "the body has a field that is not one of %s%s", tokenRequestFields, hint)
	}
	return invalidFields(map[string]string{name: "unknown field; the fields are " + tokenRequestFields + hint})
}

func looksLikeFieldName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == '[' || c == ']') {
			return false
		}
	}
	return true
}

// decodeFormRequest reads a form body; voice_params are sent as
// voice_params[NAME]=VALUE. Fields are read in sorted order, so that of
// several problems the answer always names the same one.
func decodeFormRequest(body []byte) (tokenRequest, error) {
	var req tokenRequest
	form, err := url.ParseQuery(string(body))
	if err != nil {
		// The parser's message quotes bytes of the body, which may
		// be part of a password: say what is wrong without them.
		var escape url.EscapeError
		if errors.As(err, &escape) {
			return req, Errorf(EINVALID, "the form body is malformed: a %% that does not start a two-digit hex escape (write a literal %% as %%25); encode it as application/x-www-form-urlencoded")
		}
		return req, Errorf(EINVALID, "the form body is malformed: it has a raw ; (fields are separated by &, and a ; in a value is sent as %%3B); encode it as application/x-www-form-urlencoded")
	}
	for _, key := range slices.Sorted(maps.Keys(form)) {
		values := form[key]
		single := func() (string, error) {
			if len(values) > 1 {
				return "", invalidFields(map[string]string{key: "sent more than once"})
			}
			return values[0], nil
		}
		var err error
		switch {
		case key == "username":
			req.Username, err = single()
		case key == "password":
			req.Password, err = single()
		case key == "room":
			req.Room, err = single()
		case key == "session":
			var v string
			if v, err = single(); err == nil {
				b, perr := strconv.ParseBool(v)
				if perr != nil {
					err = invalidFields(map[string]string{"session": "must be true or false"})
				} else {
					req.Session = &b
				}
			}
		case key == "ttl":
			var v string
			v, err = single()
			req.TTL = flexString(v)
		case key == "grants":
			for _, v := range values {
				req.Grants = append(req.Grants, strings.Split(v, ",")...)
			}
		case strings.HasPrefix(key, "voice_params[") && strings.HasSuffix(key, "]"):
			name := key[len("voice_params[") : len(key)-1]
			var v string
			if v, err = single(); err == nil {
				if req.VoiceParams == nil {
					req.VoiceParams = map[string]string{}
				}
				req.VoiceParams[name] = v
			}
		default:
			err = unknownField(key, " (voice_params as voice_params[NAME]=VALUE)")
		}
		if err != nil {
			return req, err
		}
	}
	return req, nil
}

// mint signs the token the plan describes for identity, which the caller
// has checked with checkIdentity. POST /token and `tokend mint` both end
// here, so the command line mints exactly what the server would.
func (p tokenPlan) mint(cfg *Config, minter *Minter, now time.Time, identity string) (string, Claims, error) {
	return minter.Mint(now, p.ttl, buildGrants(cfg, p.grants, identity, p.opt))
}

// signedToken is a minted token with what the answer and the log say of it.
type signedToken struct {
	identity  string
	grants    grantSet
	ttl       time.Duration
	token     string
	claims    Claims
	expiresAt string // RFC 3339, as the answer writes it
	// The 200 answer without a session, and its length as Content-Length
	// gives it.
	answer       []byte
	answerLength []string
}

// recentTokens answers a login that repeats one of the same second with the
// token already signed for it. A token is a pure function of its identity,
// grants, TTL and issue second (Twilio's helper libraries too put only the
// second in the jti, so they sign identical tokens within it), so this is
// the same answer without the JSON, HMAC and copies of a Mint: the
// handler's largest cost under load (docs/benchmarks.md). Only plans
// without a room or voice parameters are kept (their grants are then
// fixed by identity, set and configuration). Each identity hashes to one
// slot of a fixed table, replaced without a lock; a collision or a new
// second only costs a Mint. The login is checked before, every time: this
// saves signing, never a password check.
type recentTokens struct {
	seed  maphash.Seed
	slots [256]atomic.Pointer[signedToken]
}

func newRecentTokens() *recentTokens { return &recentTokens{seed: maphash.MakeSeed()} }

// slot is the index of identity's slot.
func (rt *recentTokens) slot(identity string) uint64 {
	return maphash.String(rt.seed, identity) % uint64(len(rt.slots))
}

// mint returns the token plan p gives identity at now, signed now or
// earlier in the same second.
func (rt *recentTokens) mint(p tokenPlan, cfg *Config, minter *Minter, now time.Time, identity string) (*signedToken, error) {
	second := now.Unix()
	keep := p.opt.Room == "" && len(p.opt.VoiceParams) == 0
	var slot *atomic.Pointer[signedToken]
	if keep {
		slot = &rt.slots[rt.slot(identity)]
		if t := slot.Load(); t != nil && t.claims.IssuedAt == second && t.identity == identity && t.grants == p.grants && t.ttl == p.ttl {
			return t, nil
		}
	}
	token, claims, err := p.mint(cfg, minter, now, identity)
	if err != nil {
		return nil, err
	}
	t := &signedToken{
		identity: identity, grants: p.grants, ttl: p.ttl,
		token: token, claims: claims,
		expiresAt: time.Unix(claims.ExpiresAt, 0).UTC().Format(time.RFC3339),
	}
	t.answer = appendTokenResponse(nil, tokenResponse{Token: token, Identity: identity, ExpiresAt: t.expiresAt})
	t.answerLength = []string{strconv.Itoa(len(t.answer))}
	if keep {
		slot.Store(t)
	}
	return t, nil
}

// planToken validates the request's optional fields against the
// configuration and returns what the token will carry.
func planToken(cfg *Config, req tokenRequest) (tokenPlan, error) {
	plan := tokenPlan{grants: cfg.DefaultGrants, ttl: cfg.TTL, opt: grantOptions{Room: req.Room, VoiceParams: req.VoiceParams}}
	problems := map[string]string{}
	if req.TTL != "" {
		n, err := strconv.ParseInt(string(req.TTL), 10, 64)
		max := int64(cfg.MaxTTL / time.Second)
		if err != nil || n < 1 || n > max {
			problems["ttl"] = fmt.Sprintf("must be a whole number of seconds from 1 to %d, not %s", max, req.TTL)
		} else {
			plan.ttl = time.Duration(n) * time.Second
		}
	}
	// asked are the grants the request names, refused or not: whether
	// a room or voice parameters fit the token is judged against them, so
	// that one refused grant does not make them look out of place too.
	// known is false when the names could not be read at all.
	asked, known := plan.grants, true
	if len(req.Grants) > 0 {
		set, err := parseGrantNames(req.Grants)
		asked = set
		switch {
		case err != nil:
			problems["grants"] = err.Error()
			known = false
		case set == 0:
			problems["grants"] = "names no grant; leave it out for the default grants (" + cfg.DefaultGrants.String() + ")"
			known = false
		case set&^cfg.EnabledGrants != 0:
			problems["grants"] = fmt.Sprintf("%s is not enabled on this server (enabled: %s)", (set &^ cfg.EnabledGrants).String(), cfg.EnabledGrants.String())
		default:
			plan.grants = set
		}
	}
	if req.Room != "" {
		switch n := utf8.RuneCountInString(req.Room); {
		case !utf8.ValidString(req.Room):
			// A form can send any bytes; JSON would turn them into U+FFFD.
			problems["room"] = "is not valid UTF-8"
		case known && !asked.has(grantVideo):
			problems["room"] = "is for the video grant, which this token does not carry"
		case n > maxVideoRoom:
			problems["room"] = fmt.Sprintf("is %d characters; Twilio Video allows at most %d", n, maxVideoRoom)
		}
	}
	if len(req.VoiceParams) > 0 {
		switch {
		case known && !asked.has(grantVoice):
			problems["voice_params"] = "is for the voice grant, which this token does not carry"
		case cfg.TwiMLAppSID == "":
			problems["voice_params"] = "needs outgoing calls, which need TWILIO_TWIML_APP_SID on the server"
		}
		for name, value := range req.VoiceParams {
			switch {
			case name == "":
				problems["voice_params"] = "has an empty parameter name"
			case !utf8.ValidString(name) || !utf8.ValidString(value):
				problems["voice_params"] = "has a parameter that is not valid UTF-8"
			}
		}
	}
	if len(problems) > 0 {
		return plan, invalidFields(problems)
	}
	return plan, nil
}
