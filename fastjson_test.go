package main

import (
	"reflect"
	"testing"
)

// FuzzSimpleJSON: wherever decodeSimpleJSON accepts a body, encoding/json
// (decodeJSONRequest) accepts it too and decodes the same request.
func FuzzSimpleJSON(f *testing.F) {
	for _, seed := range simpleJSONCases {
		f.Add([]byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkSimpleJSON(t, body)
	})
}

func checkSimpleJSON(t *testing.T, body []byte) (accepted bool) {
	t.Helper()
	var fast, slow tokenRequest
	if !decodeSimpleJSON(body, &fast) {
		return false
	}
	if err := decodeJSONRequest(body, &slow); err != nil {
		t.Fatalf("%q: the fast path accepted what encoding/json refuses: %v", body, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%q:\nfast %#v\nslow %#v", body, fast, slow)
	}
	return true
}

var simpleJSONCases = []struct {
	body     string
	accepted bool
}{
	{`{"username":"alice","password":"correct horse"}`, true},
	{" \t\r\n{ \"username\" : \"alice\" , \"password\":\"pw\" , \"grants\":\"video,voice\",\"room\":\"My Room\"}\n", true},
	{`{}`, true},
	{`{"grants":""}`, true},
	{`{"password":"~!@#$%^&*()_+{}|:<>?[];',./` + "`" + `"}`, true},
	// Everything else goes to encoding/json.
	{`{"username":"alice","username":"bob"}`, false},
	{`{"Username":"alice"}`, false},
	{`{"username":"al\"ice"}`, false},
	{`{"username":"alice\u0041"}`, false},
	{`{"username":"é"}`, false},
	{"{\"username\":\"a\tb\"}", false},
	{`{"username":"alice","ttl":600}`, false},
	{`{"grants":["video"]}`, false},
	{`{"username":null}`, false},
	{`{"username":"alice"} {}`, false},
	{`{"username":"alice",}`, false},
	{`{"username":"alice"`, false},
	{`{"username" "alice"}`, false},
	{`{"voice_params":{}}`, false},
	{`{"unknown":"x"}`, false},
	{`[]`, false},
	{``, false},
	{`{`, false},
	{`{,}`, false},
	{`{"a`, false},
}

// TestSimpleJSON: the fast path takes exactly the plain bodies, and decodes
// them as encoding/json does.
func TestSimpleJSON(t *testing.T) {
	for _, c := range simpleJSONCases {
		if got := checkSimpleJSON(t, []byte(c.body)); got != c.accepted {
			t.Errorf("%q: accepted %v, want %v", c.body, got, c.accepted)
		}
	}
}
