package main

import "strings"

// decodeSimpleJSON decodes the body nearly every client sends, a flat
// object of plain strings such as {"username":"alice","password":"…",
// "grants":"video","room":"R1"}, without encoding/json, whose reflection,
// scanner and buffer copy were a tenth of the server's CPU time per token
// under wrk. It returns ok only when the body is exactly such an object:
// each member one of username, password, room or grants, spelled so, at
// most once, its value a string of printable ASCII with no escapes. Anything
// else (other fields, numbers, lists, escapes, other bytes, duplicates,
// case variants, trailing data, invalid JSON) returns ok false, and the
// caller decodes the body with encoding/json as before, which accepts or
// refuses it with its own message. Where it returns ok, the result is the
// one encoding/json gives (FuzzSimpleJSON checks that).
func decodeSimpleJSON(body []byte, req *tokenRequest) (ok bool) {
	var (
		seen [4]bool
		// The fields are cut from one copy of the body: one allocation
		// for all of them.
		text string
	)
	str := func(b []byte) string {
		if text == "" {
			text = string(body)
		}
		start := cap(body) - cap(b) // b is a slice of body
		return text[start : start+len(b)]
	}
	i := skipJSONSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return false
	}
	i = skipJSONSpace(body, i+1)
	if i < len(body) && body[i] == '}' {
		return skipJSONSpace(body, i+1) == len(body)
	}
	for {
		key, next, ok := plainString(body, i)
		if !ok {
			return false
		}
		i = skipJSONSpace(body, next)
		if i >= len(body) || body[i] != ':' {
			return false
		}
		value, next, ok := plainString(body, skipJSONSpace(body, i+1))
		if !ok {
			return false
		}
		var field int
		switch string(key) { // no allocation: the compiler compares in place
		case "username":
			field, req.Username = 0, str(value)
		case "password":
			field, req.Password = 1, str(value)
		case "room":
			field, req.Room = 2, str(value)
		case "grants":
			field, req.Grants = 3, strings.Split(str(value), ",")
		default:
			return false
		}
		if seen[field] {
			return false
		}
		seen[field] = true
		i = skipJSONSpace(body, next)
		if i >= len(body) {
			return false
		}
		switch body[i] {
		case ',':
			i = skipJSONSpace(body, i+1)
		case '}':
			return skipJSONSpace(body, i+1) == len(body)
		default:
			return false
		}
	}
}

// plainString reads the JSON string at body[i] if it is printable ASCII
// with no escape, and returns its contents and the index after it.
func plainString(body []byte, i int) (s []byte, next int, ok bool) {
	if i >= len(body) || body[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(body); j++ {
		switch c := body[j]; {
		case c == '"':
			return body[i+1 : j], j + 1, true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return nil, 0, false
		}
	}
	return nil, 0, false
}
