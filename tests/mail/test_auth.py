"""The SASL encoders, checked against the RFCs' own examples."""

from __future__ import annotations

import base64

import pytest

from app.mail import auth


def test_plain_response_is_authzid_nul_user_nul_password_in_utf8():
    decoded = base64.b64decode(auth.plain_response("юзер", "пароль"))
    assert decoded == "\0юзер\0пароль".encode()


def test_plain_refuses_nul_inside_credentials():
    with pytest.raises(ValueError, match="NUL"):
        auth.plain_response("alice", "pass\0word")


def test_cram_md5_matches_rfc_2195_example():
    challenge = "PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+"
    expected = "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw"
    assert auth.cram_md5_response("tim", "tanstaaftanstaaf", challenge) == expected


def test_malformed_challenge_is_a_value_error():
    with pytest.raises(ValueError, match="base64"):
        auth.decode_challenge("not base64 at all!")


def test_apop_matches_rfc_1939_example():
    digest = auth.apop_digest("<1896.697170952@dbc.mtview.ca.us>", "tanstaaf")
    assert digest == "c4c9334bac560ecc979e58001b3e22fb"


def test_mechanism_choice_prefers_plain_then_login_then_cram():
    assert auth.choose_mechanism(frozenset({"LOGIN", "PLAIN", "CRAM-MD5"})) == "PLAIN"
    assert auth.choose_mechanism(frozenset({"LOGIN", "CRAM-MD5"})) == "LOGIN"
    assert auth.choose_mechanism(frozenset({"CRAM-MD5", "GSSAPI"})) == "CRAM-MD5"
    assert auth.choose_mechanism(frozenset({"GSSAPI"})) is None
