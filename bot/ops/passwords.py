"""Password hashing with scrypt (stdlib): per-password salt, parameters kept in the hash.

The encoded form is ``scrypt$<n>$<r>$<p>$<salt b64>$<key b64>``, so the cost can be raised
later without invalidating the hashes already stored.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

# About 16 MiB and a few tens of milliseconds per hash: slow for a guesser, fine for a login.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
_KEY_BYTES = 32
_SALT_BYTES = 16
MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 1024  # scrypt's cost does not depend on it, but a bound keeps memory sane


# zxcvbn's scale: 3 is "safely unguessable: moderate protection from offline slow-hash
# scenario" (about 10^10 guesses), which is what a stolen scrypt table would face.
MIN_STRENGTH = 3
# zxcvbn's time grows with the length it matches patterns in; its own advice is to score
# a prefix. Whatever follows the first 100 characters only adds to the strength.
_SCORED_CHARS = 100


class WeakPassword(ValueError):
    """The password is too short, too long or too easy to guess; the text says why."""


def check_password_policy(password: str, *, user_inputs: tuple[str, ...] = ()) -> None:
    """Raise WeakPassword unless ``password`` has a sensible length and is hard to guess.

    Length alone lets "aaaaaaaaaa" and "password123" through; zxcvbn estimates how many
    guesses a password would take (common passwords, words, repeats, keyboard patterns,
    dates, and ``user_inputs`` such as the operator's name) and refuses a score under 3.
    """
    if len(password) < MIN_PASSWORD_CHARS:
        raise WeakPassword(f"the password must have at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise WeakPassword(f"the password must have at most {MAX_PASSWORD_CHARS} characters")
    from zxcvbn import zxcvbn  # loads its word lists; only adding an operator needs them

    result = zxcvbn(password[:_SCORED_CHARS], user_inputs=list(user_inputs))
    if result["score"] < MIN_STRENGTH:
        feedback = result["feedback"]
        why = feedback.get("warning") or "it would be easy to guess"
        hint = " ".join(feedback.get("suggestions") or ["Use a few uncommon words."])
        raise WeakPassword(f"the password is too weak: {why.rstrip('.')}. {hint}")


def hash_password(password: str) -> str:
    """The encoded scrypt hash of ``password`` with a fresh random salt (CPU-bound)."""
    salt = secrets.token_bytes(_SALT_BYTES)
    key = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return "$".join(("scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), _b64(salt), _b64(key)))


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches ``encoded``; compares in constant time (CPU-bound)."""
    try:
        scheme, n, r, p, salt, key = encoded.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(key)
        actual = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def burn_verification_time(password: str) -> None:
    """Spend as long as a real verification, for an unknown name: the timing then does not
    tell which names exist."""
    verify_password(password, _dummy_hash())


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=256 * 1024 * 1024,
        dklen=_KEY_BYTES,
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
