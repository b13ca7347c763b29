"""Password hashes for the dashboard's users: scrypt from the standard library.

Not passlib/argon2: hashlib.scrypt is memory-hard, in every CPython build we
run on, and needs no extra wheel on a Pi. The stored form names its
parameters, so they can be raised later without breaking old hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

N, R, P = 2**14, 8, 1  # 16 MiB per hash: ~50 ms on a Pi 4, fine for a login form
MIN_LENGTH = 8


def hash_password(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise ValueError(f"password: expected at least {MIN_LENGTH} characters")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, dklen=32)
    return f"scrypt${N}${R}${P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str | None) -> bool:
    """True if ``password`` matches; with no stored hash the work is still done (timing)."""
    try:
        scheme, n, r, p, salt, digest = (stored or _DUMMY).split("$")
        ok_form = scheme == "scrypt"
        got = hashlib.scrypt(
            password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except (ValueError, TypeError):
        return False
    return stored is not None and ok_form and hmac.compare_digest(got, _unb64(digest))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_DUMMY = f"scrypt${N}${R}${P}${_b64(bytes(16))}${_b64(bytes(32))}"
