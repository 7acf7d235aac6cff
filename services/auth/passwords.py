"""Password hashing (argon2id) and the password policy.

The policy follows NIST SP 800-63B: length and a block-list rather than composition rules.
Verification of an unknown account still runs one hash, so timing does not reveal which
emails exist.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from services.common.errors import InvalidInput

MIN_LENGTH = 12
# argon2 cost is per byte only in memory, but a huge input is still a denial-of-service lever.
MAX_LENGTH = 128
_COMMON = {
    "password1234",
    "123456789012",
    "qwertyuiop12",
    "letmein12345",
    "iloveyou1234",
    "welcome12345",
    "administrator",
    "passwordpassword",
    "correcthorsebatterystaple",
    "forgeline123",
    "forgeline1234",
}

_hasher = PasswordHasher()  # argon2id with the library's current recommended costs
_DUMMY_HASH = _hasher.hash("a password nobody has, for the constant-time miss path")


def check_policy(password: str, *, email: str) -> None:
    if len(password) < MIN_LENGTH:
        raise InvalidInput(
            "weak_password", f"Choose a password of at least {MIN_LENGTH} characters."
        )
    if len(password) > MAX_LENGTH:
        raise InvalidInput(
            "weak_password", f"Choose a password of at most {MAX_LENGTH} characters."
        )
    lowered = password.lower()
    local_part = email.split("@", 1)[0].lower()
    if lowered in _COMMON or len(set(password)) < 5:
        raise InvalidInput(
            "weak_password", "This password is too easy to guess; choose a less common one."
        )
    if len(local_part) >= 4 and local_part in lowered:
        raise InvalidInput("weak_password", "Your password must not contain your email name.")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when the password matches; an absent hash costs the same time as a miss."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
