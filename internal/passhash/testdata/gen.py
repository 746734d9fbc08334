#!/usr/bin/env python3
"""Writes vectors.json: password hashes made by the real frameworks, so
passhash is tested against what apps store, not against itself.

    apt-get install -y python3-werkzeug python3-django python3-argon2 python3-bcrypt
    /usr/bin/python3 internal/passhash/testdata/gen.py > internal/passhash/testdata/vectors.json

Costs are lowered where the framework allows it, to keep the tests fast; the
format and the code path are the framework's own.
"""
import hashlib, json, sys

import argon2
import bcrypt
import werkzeug
from werkzeug.security import gen_salt, generate_password_hash
import django
from django.conf import settings

settings.configure(PASSWORD_HASHERS=[
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
])
django.setup()
from django.contrib.auth.hashers import PBKDF2PasswordHasher, Argon2PasswordHasher, make_password


class FastPBKDF2(PBKDF2PasswordHasher):
    iterations = 1000


class FastArgon2(Argon2PasswordHasher):
    time_cost = 1
    memory_cost = 1024
    parallelism = 2


def werkzeug_scrypt(pw, n, r, p):
    """Werkzeug >= 2.3's scrypt method, for Werkzeug releases without it
    (Debian 12 has 2.2): the same call as werkzeug.security._hash_internal,
    hashlib.scrypt with the salt's text bytes and the default 64-byte key."""
    if "scrypt" in generate_password_hash.__doc__:
        return generate_password_hash(pw, method="scrypt:%d:%d:%d" % (n, r, p))
    salt = gen_salt(16)
    key = hashlib.scrypt(pw.encode(), salt=salt.encode(), n=n, r=r, p=p, maxmem=132 * n * r * p)
    return "scrypt:%d:%d:%d$%s$%s" % (n, r, p, salt, key.hex())


passwords = ["correct horse", "pässwörd ✓", "x", "a" * 72, "with $ and : inside"]
out = []
for pw in passwords:
    out.append({"by": "werkzeug " + werkzeug.__version__ + " scrypt", "password": pw,
                "hash": werkzeug_scrypt(pw, 1024, 8, 1)})
    out.append({"by": "werkzeug " + werkzeug.__version__ + " pbkdf2:sha256", "password": pw,
                "hash": generate_password_hash(pw, method="pbkdf2:sha256:1000")})
    out.append({"by": "werkzeug " + werkzeug.__version__ + " pbkdf2:sha512", "password": pw,
                "hash": generate_password_hash(pw, method="pbkdf2:sha512:1000")})
    out.append({"by": "django " + django.__version__ + " pbkdf2_sha256", "password": pw,
                "hash": FastPBKDF2().encode(pw, FastPBKDF2().salt())})
    out.append({"by": "django " + django.__version__ + " argon2", "password": pw,
                "hash": FastArgon2().encode(pw, FastArgon2().salt())})
    out.append({"by": "argon2-cffi " + argon2.__version__, "password": pw,
                "hash": argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=2).hash(pw)})
    for prefix in (b"2a", b"2b"):
        out.append({"by": "python bcrypt $" + prefix.decode() + "$", "password": pw,
                    "hash": bcrypt.hashpw(pw.encode(), bcrypt.gensalt(rounds=4, prefix=prefix)).decode()})
# Each framework's default cost, once, so the limits are shown to admit them.
out.append({"by": "werkzeug default", "password": "default cost", "hash": generate_password_hash("default cost")})
out.append({"by": "werkzeug 3 default scrypt", "password": "default cost", "hash": werkzeug_scrypt("default cost", 32768, 8, 1)})
out.append({"by": "django default pbkdf2_sha256", "password": "default cost",
            "hash": PBKDF2PasswordHasher().encode("default cost", PBKDF2PasswordHasher().salt())})
out.append({"by": "django default argon2", "password": "default cost",
            "hash": Argon2PasswordHasher().encode("default cost", Argon2PasswordHasher().salt())})
json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
sys.stdout.write("\n")
