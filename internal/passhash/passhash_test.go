package passhash

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

// vector is one hash made by a framework (testdata/gen.py).
type vector struct {
	By, Password, Hash string
}

func loadVectors(t testing.TB) []vector {
	data, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(data, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) < 40 {
		t.Fatalf("only %d vectors", len(vs))
	}
	return vs
}

func TestVerifyFrameworkVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.By, func(t *testing.T) {
			t.Parallel()
			if Kind(v.Hash) == "" {
				t.Fatalf("Kind(%s hash) = \"\"", v.By)
			}
			ok, err := Verify(v.Hash, []byte(v.Password), Limits{})
			if err != nil || !ok {
				t.Fatalf("right password: Verify = %v, %v; want true, nil", ok, err)
			}
			ok, err = Verify(v.Hash, []byte(v.Password+"x"), Limits{})
			if err != nil || ok {
				t.Fatalf("wrong password: Verify = %v, %v; want false, nil", ok, err)
			}
			ok, err = Verify(v.Hash, []byte(strings.ToUpper(v.Password)+"!"), Limits{})
			if err != nil || ok {
				t.Fatalf("other password: Verify = %v, %v; want false, nil", ok, err)
			}
			// Cut short: a truncated column or a half-written row.
			cut := v.Hash[:len(v.Hash)-3]
			if ok, err := Verify(cut, []byte(v.Password), Limits{}); ok || !errors.Is(err, ErrMalformed) {
				t.Fatalf("truncated hash: Verify = %v, %v; want false, ErrMalformed", ok, err)
			}
			if strings.Contains(errString(Verify(cut, []byte(v.Password), Limits{})), cut[len(cut)-10:]) {
				t.Fatal("the error quotes the hash")
			}
		})
	}
}

func errString(_ bool, err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestVerifyRefusesCostlyHashes(t *testing.T) {
	lim := Limits{MemoryKiB: 64 << 10, Iterations: 1_000_000, ArgonTime: 4, Threads: 4, BcryptCost: 12}
	for _, tt := range []struct{ name, hash, want string }{
		{"argon2 memory", "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$" + strings.Repeat("A", 43),
			"hash parameters above the limits: argon2id: memory 4194304 KiB is above 65536 KiB (HASH_MEMORY_MIB)"},
		{"argon2 time", "$argon2id$v=19$m=1024,t=100,p=1$c2FsdHNhbHQ$" + strings.Repeat("A", 43),
			"hash parameters above the limits: argon2id: t=100 is above 4"},
		{"argon2 threads", "argon2$argon2id$v=19$m=1024,t=1,p=64$c2FsdHNhbHQ$" + strings.Repeat("A", 43),
			"hash parameters above the limits: django-argon2id: p=64 is above 4"},
		{"scrypt memory", "scrypt:1048576:8:1$salt$" + strings.Repeat("ab", 64),
			"hash parameters above the limits: werkzeug-scrypt: N=1048576, r=8 need more than 65536 KiB (HASH_MEMORY_MIB)"},
		{"scrypt huge r", "scrypt:2:4294967296:1$salt$" + strings.Repeat("ab", 64),
			"hash parameters above the limits: werkzeug-scrypt: N=2, r=4294967296 need more than 65536 KiB (HASH_MEMORY_MIB)"},
		{"werkzeug pbkdf2", "pbkdf2:sha256:999999999$salt$" + strings.Repeat("ab", 32),
			"hash parameters above the limits: werkzeug-pbkdf2: 999999999 iterations is above 1000000"},
		{"django pbkdf2", "pbkdf2_sha256$2000000$salt$" + "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
			"hash parameters above the limits: django-pbkdf2_sha256: 2000000 iterations is above 1000000"},
		{"bcrypt", "$2b$14$" + strings.Repeat("a", 53), "hash parameters above the limits: bcrypt: cost 14 is above 12"},
		{"scrypt N not a power of 2", "scrypt:1000:8:1$salt$" + strings.Repeat("ab", 64),
			"malformed hash: werkzeug-scrypt: N must be a power of two above 1"},
		{"argon2 version 16", "$argon2id$v=16$m=1024,t=1,p=1$c2FsdHNhbHQ$" + strings.Repeat("A", 43),
			"malformed hash: argon2id: expected v=19$m=…,t=…,p=…$salt$hash"},
		{"argon2 zero memory", "$argon2id$v=19$m=0,t=1,p=1$c2FsdHNhbHQ$" + strings.Repeat("A", 43),
			"malformed hash: argon2id: parameter m= is not a positive number"},
		{"pbkdf2 md5", "pbkdf2:md5:1000$salt$" + strings.Repeat("ab", 16), "unsupported hash format: werkzeug-pbkdf2 with md5"},
		{"apache md5", "$apr1$salt$hash", "unsupported hash format: $apr1$"},
		{"django md5", "md5$salt$hash", "unsupported hash format: md5$"},
		{"django unusable", "!XrVfGk8u3s0ivtNvWx1kdZdlp2JrTgj1lYw", "unsupported hash format: unknown"},
		{"plain text", "hunter2", "unsupported hash format: unknown"},
		{"empty", "", "unsupported hash format: unknown"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := Verify(tt.hash, []byte("password"), lim)
			if ok || err == nil || err.Error() != tt.want {
				t.Fatalf("Verify = %v, %v; want false, %q", ok, err, tt.want)
			}
		})
	}
}

func TestShapeAndDummy(t *testing.T) {
	for _, v := range loadVectors(t) {
		if strings.Contains(v.By, "default") {
			continue // full cost: slow under -race
		}
		t.Run(v.By, func(t *testing.T) {
			t.Parallel()
			d, err := DummyLike(v.Hash, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if Shape(d) == "" || Shape(d) != Shape(v.Hash) {
				t.Fatalf("Shape(dummy) = %q, Shape(hash) = %q", Shape(d), Shape(v.Hash))
			}
			if d == v.Hash {
				t.Fatal("the dummy is the hash")
			}
			if ok, err := Verify(d, []byte(v.Password), Limits{}); ok || err != nil {
				t.Fatalf("Verify(dummy) = %v, %v; want false, nil", ok, err)
			}
		})
	}
}

func TestShape(t *testing.T) {
	for _, tt := range []struct{ hash, want string }{
		{"$2a$04$" + strings.Repeat("a", 53), "bcrypt cost=4"},
		{"scrypt:32768:8:1$salt$" + strings.Repeat("ab", 64), "werkzeug-scrypt N=32768,r=8,p=1 len=64"},
		{"pbkdf2:sha256:600000$salt$" + strings.Repeat("ab", 32), "werkzeug-pbkdf2 sha256 iterations=600000"},
		{"pbkdf2_sha256$870000$salt$47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "django-pbkdf2_sha256 sha256 iterations=870000"},
		{"argon2$argon2id$v=19$m=102400,t=2,p=8$c2FsdHNhbHQ$" + strings.Repeat("A", 43), "django-argon2id m=102400,t=2,p=8 len=32"},
		{"$6$salt$hash", ""},
	} {
		if got := Shape(tt.hash); got != tt.want {
			t.Errorf("Shape(%.20s…) = %q; want %q", tt.hash, got, tt.want)
		}
	}
}

// FuzzVerify: no input makes Verify panic or run past the limits.
func FuzzVerify(f *testing.F) {
	for _, s := range []string{"$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAA", "scrypt:2:1:1$s$" + strings.Repeat("00", 16),
		"pbkdf2:sha256:1$s$" + strings.Repeat("00", 32), "pbkdf2_sha256$1$s$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "$2b$04$" + strings.Repeat("a", 53)} {
		f.Add(s)
	}
	lim := Limits{MemoryKiB: 1024, Iterations: 1000, ArgonTime: 2, Threads: 2, BcryptCost: 5}
	f.Fuzz(func(t *testing.T, hash string) {
		Verify(hash, []byte("pw"), lim)
		Prefix(hash)
	})
}

// BenchmarkVerify: what each framework's default costs per check.
func BenchmarkVerify(b *testing.B) {
	for _, v := range loadVectors(b) {
		if !strings.Contains(v.By, "default") {
			continue
		}
		b.Run(v.By, func(b *testing.B) {
			for b.Loop() {
				Verify(v.Hash, []byte("wrong"), Limits{})
			}
		})
	}
}
