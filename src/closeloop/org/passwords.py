"""Password hashing with argon2id (argon2-cffi's recommended parameters)."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so that timing does not reveal usernames; made
    on the first sign-in, not at import (an argon2 hash costs a quarter second of every command's start)."""
    return _hasher.hash("closeloop-not-a-password")


MIN_PASSWORD_LENGTH = 8


def warm_up() -> None:
    """Make the stand-in hash now (a server at start-up), not on the first sign-in."""
    _dummy_hash()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


#: passwords that appear at the top of every leaked-password list (and their Chinese favourites)
_COMMON = frozenset(
    {
        "password",
        "password1",
        "password123",
        "passw0rd",
        "12345678",
        "123456789",
        "1234567890",
        "11111111",
        "00000000",
        "88888888",
        "66666666",
        "qwertyui",
        "qwerty123",
        "qwertyuiop",
        "1qaz2wsx",
        "abc12345",
        "abcd1234",
        "iloveyou",
        "admin123",
        "administrator",
        "welcome1",
        "letmein1",
        "sunshine",
        "princess",
        "football",
        "baseball",
        "superman",
        "trustno1",
        "changeme",
        "woaini1314",
        "5201314520",
        "aa123456",
        "a1234567",
        "a12345678",
        "zxcvbnm1",
        "asdfghjk",
        "closeloop",
        "12341234",
        "11223344",
        "987654321",
    }
)


def password_problem(password: str, *, username: str | None = None) -> str | None:
    """Why ``password`` may not be used, or ``None`` when it is acceptable."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"must be at least {MIN_PASSWORD_LENGTH} characters"
    lowered = password.lower()
    if lowered in _COMMON or len(set(password)) <= 2:
        return "is too easy to guess; choose a less common password"
    if username and username.lower() in lowered:
        return "must not contain the username"
    return None
