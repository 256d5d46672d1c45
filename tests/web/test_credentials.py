"""The sealed password: unreadable without the key, and tamper-evident."""

from __future__ import annotations

import pytest

from app.web.credentials import CredentialsUnreadable, seal, unseal


def test_seal_round_trips_and_hides_the_password():
    token = seal("k" * 40, "пароль-secret")
    assert "secret" not in token
    assert unseal("k" * 40, token) == "пароль-secret"


def test_another_key_cannot_open_it():
    token = seal("k" * 40, "secret")
    with pytest.raises(CredentialsUnreadable):
        unseal("j" * 40, token)


def test_tampering_is_detected():
    token = seal("k" * 40, "secret")
    forged = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]
    with pytest.raises(CredentialsUnreadable):
        unseal("k" * 40, forged)
