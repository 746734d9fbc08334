package main

import (
	"bytes"
	"net/http/httptest"
	"testing"
	"time"
)

// FuzzTokenRequest feeds arbitrary bodies, content types and Authorization
// headers through the decoding and validation of POST /token. It must
// never panic; every refusal must be an *Error the client sees as a 4xx
// problem, never a 500; and every request it accepts must be within the
// configuration's bounds and sign.
func FuzzTokenRequest(f *testing.F) {
	for _, seed := range []struct{ ct, auth, body string }{
		{jsonCT, "", `{"username":"alice","password":"correct horse"}`},
		{jsonCT, "", `{"username":"alice","password":"pw","ttl":600,"grants":["video","voice","sync"],"room":"My Room","voice_params":{"queue":"support"}}`},
		{jsonCT, "", `{"username":"alice","password":"pw","ttl":"60","grants":"conversations"}`},
		{"application/json; charset=utf-8", "", `{"ttl":1.5,"grants":{"video":true},"voice_params":{"a":1}}`},
		{jsonCT, "", `{"username":"alice"} {}`},
		{jsonCT, "", `[1]`},
		{jsonCT, "", `{"usename":"alice"}`},
		{jsonCT, "", `{"username":"a","UserName":"b","voice_params":{"x":"1","x":"2"},"grants":[["a"],{"b":"]"}]}`},
		{jsonCT, "", `null`},
		{formCT, "", "username=a;b"},
		{formCT, "", "username=alice&password=correct+horse&grants=video&grants=sync&room=R1&ttl=7200"},
		{formCT, "", "username=alice&password=pw&grants=voice&voice_params%5Bagent%5D=alice"},
		{formCT, "", "username=alice&username=bob&voice_params%5B%5D=x&room=%FF"},
		{formCT, "", "username=%zz"},
		{"", basic("alice", "correct horse"), ""},
		{jsonCT, basic("alice", "pw"), `{"username":"alice"}`},
		{"application/xml", "", "<a/>"},
		{"application/json; =", "", "{}"},
		{"", "Bearer abc", "{}"},
	} {
		f.Add(seed.ct, seed.auth, []byte(seed.body))
	}
	cfg := testConfig()
	minter := NewMinter(cfg.AccountSID, cfg.APIKeySID, cfg.APIKeySecret, "")
	f.Fuzz(func(t *testing.T, contentType, authorization string, body []byte) {
		r := httptest.NewRequest("POST", "/token", bytes.NewReader(body))
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		if authorization != "" {
			r.Header.Set("Authorization", authorization)
		}
		req, err := decodeTokenRequest(httptest.NewRecorder(), r)
		if err != nil {
			checkClientError(t, err)
			return
		}
		// The handler stops at a refused login; the fuzzer goes on, so
		// that planToken sees every decoded request.
		username, _, err := credentials(r, req.Username, req.Password)
		if err != nil {
			checkClientError(t, err)
		}
		plan, err := planToken(cfg, req)
		if err != nil {
			checkClientError(t, err)
			return
		}
		if plan.ttl < time.Second || plan.ttl > cfg.MaxTTL || plan.ttl%time.Second != 0 {
			t.Fatalf("planned ttl %s is outside 1s to %s", plan.ttl, cfg.MaxTTL)
		}
		if plan.grants == 0 || plan.grants&^cfg.EnabledGrants != 0 {
			t.Fatalf("planned grants %s, enabled %s", plan.grants, cfg.EnabledGrants)
		}
		if username == "" || checkIdentity(username, plan.grants) != "" {
			return
		}
		token, _, err := plan.mint(cfg, minter, specTime, username)
		if err != nil {
			t.Fatalf("an accepted request does not sign: %v", err)
		}
		if err := verifySignature(token, testSecret); err != nil {
			t.Fatalf("the token does not verify: %v", err)
		}
	})
}

// checkClientError fails unless err is an *Error that writeError answers
// with a 4xx status and a detail.
func checkClientError(t *testing.T, err error) {
	t.Helper()
	e, ok := err.(*Error)
	if !ok {
		t.Fatalf("%T %v is not an *Error: the client would get a 500", err, err)
	}
	if status, _, ok := problemKind(e.Code); !ok || status < 400 || status > 499 {
		t.Fatalf("code %q has status %d", e.Code, status)
	}
	if e.Message == "" {
		t.Fatalf("code %q has no detail", e.Code)
	}
}
