"""The password inside the session cookie, encrypted with a key derived from the app's secret.

Flask's cookie is signed, not encrypted: anything put there in the clear can be read by
whoever holds the cookie. The mail password is therefore sealed with Fernet (AES-CBC + HMAC,
from `cryptography`) under a key derived from SECRET_KEY with HKDF, so a stolen cookie file
or a proxy log never shows it, and changing the secret key makes every stored one useless.
"""

from __future__ import annotations

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_INFO = b"pochta session credentials v1"


class CredentialsUnreadable(Exception):
    """The sealed password does not open with this key (another key, or tampering)."""


@functools.lru_cache(maxsize=4)
def _fernet(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def seal(secret_key: str, password: str) -> str:
    return _fernet(secret_key).encrypt(password.encode()).decode("ascii")


def unseal(secret_key: str, token: str) -> str:
    try:
        return _fernet(secret_key).decrypt(token.encode("ascii")).decode()
    except (InvalidToken, ValueError, UnicodeError):
        raise CredentialsUnreadable("the stored credentials cannot be read") from None
