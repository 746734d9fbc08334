// Package passhash verifies passwords against the hashes web frameworks
// store: bcrypt, argon2id (PHC strings), Werkzeug's scrypt and PBKDF2, and
// Django's PBKDF2 and argon2id. Every hash carries its own parameters; those
// above Limits are refused before any work is done, so that a hostile or
// corrupt row cannot make one check take minutes or gigabytes.
package passhash

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"

	"crypto/pbkdf2"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/scrypt"
)

// Format names, as Kind returns them and logs and metrics show them.
const (
	Bcrypt              = "bcrypt"
	Argon2id            = "argon2id"
	WerkzeugScrypt      = "werkzeug-scrypt"
	WerkzeugPBKDF2      = "werkzeug-pbkdf2"
	DjangoPBKDF2SHA256  = "django-pbkdf2_sha256"
	DjangoArgon2id      = "django-argon2id"
	unknownFormatPrefix = "unknown"
)

var (
	// ErrUnsupported is a hash in no format Verify knows.
	ErrUnsupported = errors.New("unsupported hash format")
	// ErrMalformed is a hash in a known format that does not parse.
	ErrMalformed = errors.New("malformed hash")
	// ErrTooCostly is a hash whose parameters are above the Limits.
	ErrTooCostly = errors.New("hash parameters above the limits")
)

// Limits bound the work one check may do. The zero value means
// DefaultLimits.
type Limits struct {
	MemoryKiB  uint32 // argon2 m and scrypt 128·N·r, in KiB
	Iterations int    // PBKDF2 iterations
	ArgonTime  uint32 // argon2 t
	Threads    uint8  // argon2 p and scrypt p
	BcryptCost int
}

// DefaultLimits admit every framework's default of 2025 with room to grow:
// Django's argon2 (100 MiB, t=2, p=8), argon2-cffi's (64 MiB, t=3, p=4),
// Werkzeug's scrypt (32 MiB) and PBKDF2 (1,000,000), Django's PBKDF2
// (1,200,000) and bcrypt up to cost 15 (about 3 s).
var DefaultLimits = Limits{MemoryKiB: 128 << 10, Iterations: 5_000_000, ArgonTime: 16, Threads: 16, BcryptCost: 15}

func (l Limits) orDefault() Limits {
	if l == (Limits{}) {
		return DefaultLimits
	}
	return l
}

// Kind names the format of encoded, or "" if Verify does not know it.
func Kind(encoded string) string {
	switch {
	case strings.HasPrefix(encoded, "$2a$"), strings.HasPrefix(encoded, "$2b$"), strings.HasPrefix(encoded, "$2y$"):
		return Bcrypt
	case strings.HasPrefix(encoded, "$argon2id$"):
		return Argon2id
	case strings.HasPrefix(encoded, "scrypt:"):
		return WerkzeugScrypt
	case strings.HasPrefix(encoded, "pbkdf2:"):
		return WerkzeugPBKDF2
	case strings.HasPrefix(encoded, "pbkdf2_sha256$"):
		return DjangoPBKDF2SHA256
	case strings.HasPrefix(encoded, "argon2$argon2id$"):
		return DjangoArgon2id
	}
	return ""
}

// Prefix is what may be logged of a hash: its format if Kind knows it,
// else its scheme marker (such as "$apr1$" or "md5$": up to the first '$'
// or ':' after the first character, at most 16 letters, digits, '_' and
// '-'), or "unknown". Never salt or digest.
func Prefix(encoded string) string {
	if k := Kind(encoded); k != "" {
		return k
	}
	if encoded == "" {
		return unknownFormatPrefix
	}
	i := strings.IndexAny(encoded[1:], "$:")
	if i < 0 || i >= 16 {
		return unknownFormatPrefix
	}
	p := encoded[:i+2]
	for j, r := range p {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' ||
			(r == '$' || r == ':') && (j == 0 || j == len(p)-1)
		if !ok {
			return unknownFormatPrefix
		}
	}
	return p
}

// Verify reports whether password matches encoded. The error is non-nil
// only when the hash cannot be checked: ErrUnsupported, ErrMalformed or
// ErrTooCostly (wrapped, with what is wrong, never the hash itself).
func Verify(encoded string, password []byte, lim Limits) (bool, error) {
	p, err := parse(encoded, lim.orDefault())
	if err != nil {
		return false, err
	}
	if p.kind == Bcrypt {
		// bcrypt reads 72 bytes: a longer password would match any
		// password with the same first 72.
		return len(password) <= 72 && bcrypt.CompareHashAndPassword([]byte(encoded), password) == nil, nil
	}
	got, err := p.derive(password)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got, p.digest) == 1, nil
}

// Check reports why encoded cannot be verified within lim (ErrUnsupported,
// ErrMalformed, ErrTooCostly), or nil; it only parses, so it is cheap.
func Check(encoded string, lim Limits) error {
	_, err := parse(encoded, lim.orDefault())
	return err
}

// Shape is the format and cost parameters of encoded, without salt or
// digest: two hashes of the same shape take the same time to check.
func Shape(encoded string) string {
	p, err := parse(encoded, Limits{MemoryKiB: ^uint32(0), Iterations: int(^uint(0) >> 1), ArgonTime: ^uint32(0), Threads: ^uint8(0), BcryptCost: bcrypt.MaxCost})
	if err != nil {
		return ""
	}
	return p.shape()
}

// DummyLike returns a hash of the same shape as encoded, of a random
// password with a random salt: checking a password against it costs what
// checking against encoded costs, and never succeeds.
func DummyLike(encoded string, lim Limits) (string, error) {
	p, err := parse(encoded, lim.orDefault())
	if err != nil {
		return "", err
	}
	pw := []byte(rand.Text())
	if p.kind == Bcrypt {
		h, err := bcrypt.GenerateFromPassword(pw, p.cost)
		return string(h), err
	}
	p.salt = []byte(rand.Text()[:16])
	if p.digest, err = p.derive(pw); err != nil {
		return "", err
	}
	return p.encode(), nil
}

// parsed is a hash taken apart.
type parsed struct {
	kind   string
	cost   int    // bcrypt cost, PBKDF2 iterations
	algo   string // Werkzeug PBKDF2's digest: sha256 or sha512
	m, t   uint32 // argon2
	p      uint8  // argon2, scrypt
	n, r   int    // scrypt
	salt   []byte
	digest []byte
}

func malformed(kind, why string) error { return fmt.Errorf("%w: %s: %s", ErrMalformed, kind, why) }

func tooCostly(kind, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrTooCostly, kind, fmt.Sprintf(format, args...))
}

func parse(encoded string, lim Limits) (*parsed, error) {
	kind := Kind(encoded)
	p := &parsed{kind: kind}
	switch kind {
	case Bcrypt:
		cost, err := bcrypt.Cost([]byte(encoded))
		if err != nil || len(encoded) != 60 {
			return nil, malformed(kind, "not a 60-character bcrypt hash")
		}
		if cost > lim.BcryptCost {
			return nil, tooCostly(kind, "cost %d is above %d", cost, lim.BcryptCost)
		}
		p.cost = cost
		return p, nil
	case Argon2id:
		return p, p.parseArgon2(strings.TrimPrefix(encoded, "$argon2id$"), lim)
	case DjangoArgon2id:
		return p, p.parseArgon2(strings.TrimPrefix(encoded, "argon2$argon2id$"), lim)
	case WerkzeugScrypt:
		return p, p.parseWerkzeugScrypt(strings.TrimPrefix(encoded, "scrypt:"), lim)
	case WerkzeugPBKDF2:
		return p, p.parseWerkzeugPBKDF2(strings.TrimPrefix(encoded, "pbkdf2:"), lim)
	case DjangoPBKDF2SHA256:
		return p, p.parseDjangoPBKDF2(strings.TrimPrefix(encoded, "pbkdf2_sha256$"), lim)
	}
	return nil, fmt.Errorf("%w: %s", ErrUnsupported, Prefix(encoded))
}

// parseArgon2 reads v=19$m=M,t=T,p=P$salt$digest, in unpadded base64.
func (p *parsed) parseArgon2(rest string, lim Limits) error {
	f := strings.Split(rest, "$")
	if len(f) != 4 || f[0] != "v=19" {
		return malformed(p.kind, "expected v=19$m=…,t=…,p=…$salt$hash")
	}
	var m, t, par uint64
	var err error
	params := strings.Split(f[1], ",")
	if len(params) != 3 {
		return malformed(p.kind, "expected m=…,t=…,p=…")
	}
	for i, want := range []string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(params[i], want)
		if !ok {
			return malformed(p.kind, "expected m=…,t=…,p=…")
		}
		n, e := strconv.ParseUint(v, 10, 32)
		if e != nil || n == 0 {
			return malformed(p.kind, "parameter "+want+" is not a positive number")
		}
		switch i {
		case 0:
			m = n
		case 1:
			t = n
		case 2:
			par = n
		}
	}
	if p.salt, err = base64.RawStdEncoding.DecodeString(f[2]); err != nil || len(p.salt) < 8 {
		return malformed(p.kind, "salt is not base64 of at least 8 bytes")
	}
	if p.digest, err = base64.RawStdEncoding.DecodeString(f[3]); err != nil || len(p.digest) < 16 || len(p.digest) > 128 {
		return malformed(p.kind, "hash is not base64 of 16 to 128 bytes")
	}
	switch {
	case m > uint64(lim.MemoryKiB):
		return tooCostly(p.kind, "memory %d KiB is above %d KiB (HASH_MEMORY_MIB)", m, lim.MemoryKiB)
	case t > uint64(lim.ArgonTime):
		return tooCostly(p.kind, "t=%d is above %d", t, lim.ArgonTime)
	case par > uint64(lim.Threads) || par > 255:
		return tooCostly(p.kind, "p=%d is above %d", par, lim.Threads)
	case m < 8*par:
		return malformed(p.kind, "m is below 8·p")
	}
	p.m, p.t, p.p = uint32(m), uint32(t), uint8(par)
	return nil
}

// parseWerkzeugScrypt reads N:r:p$salt$hexdigest; the salt is used as the
// text it is, as Werkzeug does.
func (p *parsed) parseWerkzeugScrypt(rest string, lim Limits) error {
	params, salt, digest, ok := werkzeugSplit(rest)
	f := strings.Split(params, ":")
	if !ok || len(f) != 3 {
		return malformed(p.kind, "expected scrypt:N:r:p$salt$hexhash")
	}
	var v [3]int
	for i, s := range f {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return malformed(p.kind, "N, r and p must be positive numbers")
		}
		v[i] = n
	}
	n, r, par := v[0], v[1], v[2]
	if n < 2 || n&(n-1) != 0 {
		return malformed(p.kind, "N must be a power of two above 1")
	}
	var err error
	if p.digest, err = hex.DecodeString(digest); err != nil || len(p.digest) < 16 || len(p.digest) > 128 {
		return malformed(p.kind, "hash is not hex of 16 to 128 bytes")
	}
	// scrypt needs 128·N·r bytes (and 128·r·p more, small next to it).
	if r > 1<<10 || int64(n)*int64(r)/8 > int64(lim.MemoryKiB) {
		return tooCostly(p.kind, "N=%d, r=%d need more than %d KiB (HASH_MEMORY_MIB)", n, r, lim.MemoryKiB)
	}
	if par > int(lim.Threads) {
		return tooCostly(p.kind, "p=%d is above %d", par, lim.Threads)
	}
	p.n, p.r, p.p, p.salt = n, r, uint8(par), []byte(salt)
	return nil
}

// parseWerkzeugPBKDF2 reads sha256:ITER$salt$hexdigest (or sha512).
func (p *parsed) parseWerkzeugPBKDF2(rest string, lim Limits) error {
	params, salt, digest, ok := werkzeugSplit(rest)
	algo, iter, ok2 := strings.Cut(params, ":")
	if !ok || !ok2 {
		return malformed(p.kind, "expected pbkdf2:sha256:ITERATIONS$salt$hexhash")
	}
	if algo != "sha256" && algo != "sha512" {
		return fmt.Errorf("%w: %s with %s", ErrUnsupported, p.kind, safeWord(algo))
	}
	var err error
	if p.digest, err = hex.DecodeString(digest); err != nil || len(p.digest) != newHash(algo)().Size() {
		return malformed(p.kind, "hash is not hex of the digest's size")
	}
	p.algo, p.salt = algo, []byte(salt)
	return p.iterations(iter, lim)
}

// parseDjangoPBKDF2 reads ITER$salt$base64digest.
func (p *parsed) parseDjangoPBKDF2(rest string, lim Limits) error {
	f := strings.Split(rest, "$")
	if len(f) != 3 || f[1] == "" {
		return malformed(p.kind, "expected pbkdf2_sha256$ITERATIONS$salt$hash")
	}
	var err error
	if p.digest, err = base64.StdEncoding.DecodeString(f[2]); err != nil || len(p.digest) != sha256.Size {
		return malformed(p.kind, "hash is not base64 of 32 bytes")
	}
	p.algo, p.salt = "sha256", []byte(f[1])
	return p.iterations(f[0], lim)
}

func (p *parsed) iterations(s string, lim Limits) error {
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return malformed(p.kind, "the iteration count is not a positive number")
	}
	if n > lim.Iterations {
		return tooCostly(p.kind, "%d iterations is above %d", n, lim.Iterations)
	}
	p.cost = n
	return nil
}

// werkzeugSplit splits Werkzeug's METHOD$SALT$HEX; the salt never holds '$'.
func werkzeugSplit(s string) (params, salt, digest string, ok bool) {
	f := strings.Split(s, "$")
	if len(f) != 3 || f[1] == "" {
		return "", "", "", false
	}
	return f[0], f[1], f[2], true
}

func newHash(algo string) func() hash.Hash {
	if algo == "sha512" {
		return sha512.New
	}
	return sha256.New
}

func (p *parsed) derive(password []byte) ([]byte, error) {
	switch p.kind {
	case Argon2id, DjangoArgon2id:
		return argon2.IDKey(password, p.salt, p.t, p.m, p.p, uint32(len(p.digest))), nil
	case WerkzeugScrypt:
		return scrypt.Key(password, p.salt, p.n, p.r, int(p.p), len(p.digest))
	case WerkzeugPBKDF2, DjangoPBKDF2SHA256:
		return pbkdf2.Key(newHash(p.algo), string(password), p.salt, p.cost, len(p.digest))
	}
	return nil, fmt.Errorf("%w: %s", ErrUnsupported, p.kind)
}

func (p *parsed) shape() string {
	switch p.kind {
	case Bcrypt:
		return fmt.Sprintf("%s cost=%d", p.kind, p.cost)
	case Argon2id, DjangoArgon2id:
		return fmt.Sprintf("%s m=%d,t=%d,p=%d len=%d", p.kind, p.m, p.t, p.p, len(p.digest))
	case WerkzeugScrypt:
		return fmt.Sprintf("%s N=%d,r=%d,p=%d len=%d", p.kind, p.n, p.r, p.p, len(p.digest))
	default:
		return fmt.Sprintf("%s %s iterations=%d", p.kind, p.algo, p.cost)
	}
}

func (p *parsed) encode() string {
	b64 := base64.RawStdEncoding.EncodeToString
	switch p.kind {
	case Argon2id:
		return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", p.m, p.t, p.p, b64(p.salt), b64(p.digest))
	case DjangoArgon2id:
		return fmt.Sprintf("argon2$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", p.m, p.t, p.p, b64(p.salt), b64(p.digest))
	case WerkzeugScrypt:
		return fmt.Sprintf("scrypt:%d:%d:%d$%s$%x", p.n, p.r, p.p, p.salt, p.digest)
	case WerkzeugPBKDF2:
		return fmt.Sprintf("pbkdf2:%s:%d$%s$%x", p.algo, p.cost, p.salt, p.digest)
	case DjangoPBKDF2SHA256:
		return fmt.Sprintf("pbkdf2_sha256$%d$%s$%s", p.cost, p.salt, base64.StdEncoding.EncodeToString(p.digest))
	}
	return ""
}

// safeWord is s if it is a short word, for error messages.
func safeWord(s string) string {
	if len(s) > 12 || strings.ContainsFunc(s, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') }) {
		return "another digest"
	}
	return s
}
