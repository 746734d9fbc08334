package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Error codes, in the manner of benbjohnson/wtf: a small closed set that the
// HTTP layer maps to a status in one table (problemKind).
const (
	EINVALID       = "invalid-request"
	EUNAUTHORIZED  = "unauthorized"
	EFORBIDDEN     = "forbidden"
	ENOTFOUND      = "not-found"
	EMETHOD        = "method-not-allowed"
	ETOOLARGE      = "body-too-large"
	EMEDIATYPE     = "unsupported-media-type"
	ETOOMANY       = "too-many-requests"
	ECANCELED      = "client-closed-request"
	EUNAVAILABLE   = "unavailable"
	EINTERNAL      = "internal"
	problemTypeURI = "urn:tokend:problem:"
)

// problemKind is the one table from code to HTTP status and stable title;
// ok is false for a code it does not know.
func problemKind(code string) (status int, title string, ok bool) {
	switch code {
	case EINVALID:
		return http.StatusBadRequest, "Invalid request", true
	case EUNAUTHORIZED:
		return http.StatusUnauthorized, "Unauthorized", true
	case EFORBIDDEN:
		return http.StatusForbidden, "Forbidden", true
	case ENOTFOUND:
		return http.StatusNotFound, "Not found", true
	case EMETHOD:
		return http.StatusMethodNotAllowed, "Method not allowed", true
	case ETOOLARGE:
		return http.StatusRequestEntityTooLarge, "Request body too large", true
	case EMEDIATYPE:
		return http.StatusUnsupportedMediaType, "Unsupported media type", true
	case ETOOMANY:
		return http.StatusTooManyRequests, "Too many requests", true
	case ECANCELED:
		// nginx's "client closed request": nobody reads it, but the log
		// and the metrics do.
		return 499, "Client closed request", true
	case EUNAVAILABLE:
		return http.StatusServiceUnavailable, "Service unavailable", true
	case EINTERNAL:
		return http.StatusInternalServerError, "Internal error", true
	}
	return http.StatusInternalServerError, "Internal error", false
}

// Error is an error meant for the client: Code picks the status and title,
// Message is the detail a person can act on, Params names each invalid field,
// RetryAfter, when set, is sent as Retry-After (429 and 503), and Challenge,
// when set, is a 401's WWW-Authenticate instead of HTTP Basic's.
// Anything that is not an *Error is internal and shown only as "internal error".
type Error struct {
	Code       string
	Message    string
	Params     []invalidParam
	RetryAfter time.Duration
	Challenge  string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// invalidFields returns an EINVALID error whose detail lists every field
// problem, sorted by field name so the body is stable.
func invalidFields(fields map[string]string) *Error {
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	params := make([]invalidParam, len(names))
	for i, name := range names {
		parts[i] = name + ": " + fields[name]
		params[i] = invalidParam{Name: name, Reason: fields[name]}
	}
	return &Error{Code: EINVALID, Message: strings.Join(parts, "; "), Params: params}
}

// problem is the RFC 9457 body.
type problem struct {
	Type          string         `json:"type"`
	Title         string         `json:"title"`
	Status        int            `json:"status"`
	Detail        string         `json:"detail"`
	InvalidParams []invalidParam `json:"invalid_params,omitempty"`
}

type invalidParam struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// writeJSON answers 200 with v, which never fails to encode: every JSON
// answer that is not a problem goes through it, but POST /token's, which
// writeTokenResponse builds by hand for speed.
func writeJSON(w http.ResponseWriter, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	json.NewEncoder(w).Encode(v)
}

// writeError answers with the problem+json body for err. Errors that are not
// *Error are logged with their cause and shown only as "internal error".
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var e *Error
	if !errors.As(err, &e) {
		log.ErrorContext(r.Context(), "internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		e = &Error{Code: EINTERNAL, Message: "internal error"}
	}
	status, title, _ := problemKind(e.Code)
	if rl := requestLogFrom(r.Context()); rl != nil {
		rl.problem, rl.detail = e.Code, e.Message
	}
	p := problem{
		Type:          problemTypeURI + e.Code,
		Title:         title,
		Status:        status,
		Detail:        e.Message,
		InvalidParams: e.Params,
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	if e.Code == EUNAUTHORIZED {
		h.Set("WWW-Authenticate", challenge(r, e))
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(e.RetryAfter/time.Second)))
	}
	body, _ := json.Marshal(p) // strings and ints always encode
	body = append(body, '\n')
	h.Set("Content-Length", strconv.Itoa(len(body))) // observe checks that it was delivered
	w.WriteHeader(status)
	w.Write(body)
}

// challenge is the WWW-Authenticate of a 401. A browser page's fetch that
// logs in with a body or the session cookie gets a scheme browsers do not
// handle, so the browser hands the 401 to the page instead of asking for a
// password in its own dialog; everyone else is told HTTP Basic works. An
// error that names its own challenge (IdP-only: Bearer) gets that one.
func challenge(r *http.Request, e *Error) string {
	if e.Challenge != "" {
		return e.Challenge
	}
	switch r.Header.Get("Sec-Fetch-Mode") {
	case "cors", "same-origin", "no-cors":
		if r.Header.Get("Authorization") == "" {
			return `Cookie realm="tokend", cookie-name="` + sessionCookie + `"`
		}
	}
	return `Basic realm="tokend"`
}
