"""SASL encoders (RFC 4616 PLAIN, the LOGIN convention, RFC 2195 CRAM-MD5), kept pure.

Both clients send the same payloads; keeping them here, free of I/O, lets the tests check the
exact bytes and keeps the clients' methods to the dialogue itself. Names and passwords are
UTF-8 (RFC 4616 says so, and it is the only way a non-ASCII password works at all).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

# The order we prefer: PLAIN and LOGIN need the password in the clear inside TLS, which is
# what servers expect; CRAM-MD5 only when nothing else is offered (it forces the server to
# keep plaintext passwords, so few offer it).
PREFERRED_MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def plain_response(username: str, password: str, authzid: str = "") -> str:
    """The base64 PLAIN message: authzid NUL authcid NUL passwd."""
    if "\0" in username or "\0" in password or "\0" in authzid:
        raise ValueError("user names and passwords cannot contain NUL characters")
    return b64(f"{authzid}\0{username}\0{password}".encode())


def login_response(value: str) -> str:
    """One step of AUTH LOGIN: the user name, then the password, each base64 on its own."""
    return b64(value.encode())


def decode_challenge(challenge: str) -> bytes:
    """A server challenge is base64; a malformed one is a protocol error for the caller."""
    try:
        return base64.b64decode(challenge.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"the server's challenge is not valid base64 ({exc})") from None


def cram_md5_response(username: str, password: str, challenge: str) -> str:
    """HMAC-MD5 of the decoded challenge keyed by the password, then "user hexdigest"."""
    digest = hmac.new(password.encode(), decode_challenge(challenge), hashlib.md5).hexdigest()
    return b64(f"{username} {digest}".encode())


def choose_mechanism(offered: frozenset[str]) -> str | None:
    """The first mechanism we prefer that the server offers, or None."""
    return next((m for m in PREFERRED_MECHANISMS if m in offered), None)


def apop_digest(timestamp: str, password: str) -> str:
    """RFC 1939 APOP: MD5 of the greeting's timestamp followed by the password, in hex."""
    return hashlib.md5((timestamp + password).encode(), usedforsecurity=False).hexdigest()
