package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash"
	"strconv"
	"sync"
	"time"
)

// maxTokenTTL is Twilio's ceiling on a token's lifetime (error 20157).
const maxTokenTTL = 24 * time.Hour

// Claims are the claims of a Twilio access token (key order does not
// matter to Twilio). All times come from one clock reading.
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
// once, since it depends only on the region, and so are the parts of the
// claims that depend only on the key: per token, encoding/json encodes just
// the grants (see TestMintPayloadIsEncodingJSON).
type Minter struct {
	accountSID string
	apiKeySID  string
	header     string // base64url(header JSON) + "."
	jtiPrefix  string // `{"jti":"SK…-`
	keyClaims  string // `","iss":"SK…","sub":"AC…","iat":`

	signers *signers // keyed with the API key secret
}

// signers pools the signers of one secret. Keying an HMAC hashes two blocks
// and allocates five times, which golang-jwt's Sign does for every token; a
// pooled one is Reset to its keyed state instead. The tests verify every
// token with golang-jwt. See BenchmarkMintToken and the README's figures.
type signers struct{ pool sync.Pool }

// signer is what one Mint call needs besides the claims, reused across calls.
type signer struct {
	mac     hash.Hash
	claims  bytes.Buffer
	encoder *json.Encoder // writes to claims
	num     [20]byte      // scratch for a decimal time
	token   []byte
	grants  Grants            // the grants being encoded (Minter)
	sum     [sha256.Size]byte // the signature being encoded
}

// maxPooledBytes keeps a signer that served an unusually large token out of
// the pool, so one big token does not pin its buffers for good.
const maxPooledBytes = 16 << 10

// newSigners returns the pool of signers for secret. escapeHTML is their
// encoder's: on, as json.Marshal writes; off, as JavaScript's
// JSON.stringify writes (no \u003c for <).
func newSigners(secret string, escapeHTML bool) *signers {
	key := []byte(secret)
	p := &signers{}
	p.pool.New = func() any {
		s := &signer{mac: hmac.New(sha256.New, key)}
		s.encoder = json.NewEncoder(&s.claims)
		s.encoder.SetEscapeHTML(escapeHTML)
		return s
	}
	return p
}

func (p *signers) get() *signer { return p.pool.Get().(*signer) }

// put returns s to the pool, unless an unusually large token grew it.
func (p *signers) put(s *signer) {
	if s.claims.Cap() <= maxPooledBytes && cap(s.token) <= maxPooledBytes {
		p.pool.Put(s)
	}
}

// sign returns the token whose header segment is header (base64url, with
// its dot) and whose claims are payload: header "." payload, signed with
// HS256, then "." signature, the JWS compact form that golang-jwt, Twilio
// and Zoom verify (see verify in tests).
func (s *signer) sign(header string, payload []byte) string {
	enc := base64.RawURLEncoding
	buf := append(s.token[:0], header...)
	buf = enc.AppendEncode(buf, payload)
	s.mac.Reset()
	s.mac.Write(buf)
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, s.mac.Sum(s.sum[:0])) // into the signer: a local array would escape
	s.token = buf
	return string(buf)
}

// NewMinter returns a Minter that signs with the API key secret and names the
// region in the "twr" header when region is not empty.
func NewMinter(accountSID, apiKeySID, apiKeySecret, region string) *Minter {
	header := `{"alg":"HS256","typ":"JWT","cty":"twilio-fpa;v=1"}`
	if region != "" {
		b, _ := json.Marshal(region) // a string always marshals
		header = `{"alg":"HS256","typ":"JWT","cty":"twilio-fpa;v=1","twr":` + string(b) + `}`
	}
	quote := func(s string) string { b, _ := json.Marshal(s); return string(b) } // a string always marshals
	jti := quote(apiKeySID + "-")
	m := &Minter{
		accountSID: accountSID,
		apiKeySID:  apiKeySID,
		header:     base64.RawURLEncoding.EncodeToString([]byte(header)) + ".",
		jtiPrefix:  `{"jti":` + jti[:len(jti)-1],
		keyClaims:  `","iss":` + quote(apiKeySID) + `,"sub":` + quote(accountSID) + `,"iat":`,
		signers:    newSigners(apiKeySecret, true),
	}
	return m
}

// Mint returns the signed token for grants, issued at now and valid for ttl,
// and the claims it carries.
func (m *Minter) Mint(now time.Time, ttl time.Duration, grants Grants) (string, Claims, error) {
	if ttl < time.Second || ttl > maxTokenTTL {
		return "", Claims{}, fmt.Errorf("ttl %s is outside 1s to %s", ttl, maxTokenTTL)
	}
	t := now.Unix()
	s := m.signers.get()
	defer m.signers.put(s)
	// The JTI in one allocation: "SK…-" then the time.
	jti := strconv.AppendInt(append(append(s.token[:0], m.apiKeySID...), '-'), t, 10)
	c := Claims{
		JTI:       string(jti),
		Issuer:    m.apiKeySID,
		Subject:   m.accountSID,
		IssuedAt:  t,
		NotBefore: t,
		ExpiresAt: t + int64(ttl/time.Second),
		Grants:    grants,
	}
	// The claims exactly as json.Marshal(&c) writes them: the key's parts
	// and the times by hand, the grants by an Encoder, which escapes as
	// json.Marshal does but into a reused buffer (and ends with a newline,
	// dropped here).
	s.claims.Reset()
	s.claims.WriteString(m.jtiPrefix)
	s.claims.Write(strconv.AppendInt(s.num[:0], t, 10))
	s.claims.WriteString(m.keyClaims)
	for _, part := range []struct {
		n    int64
		next string
	}{{t, `,"nbf":`}, {t, `,"exp":`}, {c.ExpiresAt, `,"grants":`}} {
		s.claims.Write(strconv.AppendInt(s.num[:0], part.n, 10))
		s.claims.WriteString(part.next)
	}
	// Encoded from the signer, which is on the heap already: &c.Grants
	// would move c there too.
	s.grants = c.Grants
	err := s.encoder.Encode(&s.grants)
	s.grants = Grants{} // the pool keeps no request's grants
	if err != nil {
		return "", Claims{}, fmt.Errorf("encode claims: %w", err)
	}
	s.claims.Truncate(s.claims.Len() - 1)
	s.claims.WriteByte('}')
	return s.sign(m.header, s.claims.Bytes()), c, nil
}
