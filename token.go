package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// maxTokenTTL is Twilio's ceiling on a token's lifetime (error 20157).
const maxTokenTTL = 24 * time.Hour

// Claims are the claims of a Twilio access token, in the order Twilio's
// helpers emit them. All times come from one clock reading.
type Claims struct {
	JTI       string `json:"jti"`
	Issuer    string `json:"iss"`
	Subject   string `json:"sub"`
	IssuedAt  int64  `json:"iat"`
	NotBefore int64  `json:"nbf"`
	ExpiresAt int64  `json:"exp"`
	Grants    Grants `json:"grants"`
}

// Minter signs access tokens for one API key. Its header segment is encoded
// once, since it depends only on the region.
type Minter struct {
	accountSID string
	apiKeySID  string
	secret     []byte
	header     string // base64url(header JSON) + "."
}

// NewMinter returns a Minter that signs with the API key secret and names the
// region in the "twr" header when region is not empty.
func NewMinter(accountSID, apiKeySID, apiKeySecret, region string) *Minter {
	header := `{"alg":"HS256","typ":"JWT","cty":"twilio-fpa;v=1"}`
	if region != "" {
		b, _ := json.Marshal(region) // a string always marshals
		header = `{"alg":"HS256","typ":"JWT","cty":"twilio-fpa;v=1","twr":` + string(b) + `}`
	}
	return &Minter{
		accountSID: accountSID,
		apiKeySID:  apiKeySID,
		secret:     []byte(apiKeySecret),
		header:     base64.RawURLEncoding.EncodeToString([]byte(header)) + ".",
	}
}

// Mint returns the signed token for grants, issued at now and valid for ttl,
// and the claims it carries.
func (m *Minter) Mint(now time.Time, ttl time.Duration, grants Grants) (string, Claims, error) {
	if ttl < time.Second || ttl > maxTokenTTL {
		return "", Claims{}, fmt.Errorf("ttl %s is outside 1s to %s", ttl, maxTokenTTL)
	}
	t := now.Unix()
	c := Claims{
		JTI:       m.apiKeySID + "-" + strconv.FormatInt(t, 10),
		Issuer:    m.apiKeySID,
		Subject:   m.accountSID,
		IssuedAt:  t,
		NotBefore: t,
		ExpiresAt: t + int64(ttl/time.Second),
		Grants:    grants,
	}
	payload, err := json.Marshal(&c)
	if err != nil {
		return "", Claims{}, fmt.Errorf("encode claims: %w", err)
	}
	// header "." payload "." signature, built in one buffer.
	enc := base64.RawURLEncoding
	sigLen := enc.EncodedLen(32)
	buf := make([]byte, 0, len(m.header)+enc.EncodedLen(len(payload))+1+sigLen)
	buf = append(buf, m.header...)
	buf = enc.AppendEncode(buf, payload)
	sig, err := jwt.SigningMethodHS256.Sign(string(buf), m.secret)
	if err != nil {
		return "", Claims{}, fmt.Errorf("sign token: %w", err)
	}
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig)
	return string(buf), c, nil
}
