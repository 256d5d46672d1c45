"""POCHTA_* settings: defaults, parsing, and errors that name the variable."""

from __future__ import annotations

import pytest

from app.config import MIB, ConfigError, load_settings
from app.mail.security import Security


def test_defaults(tmp_path):
    settings = load_settings({})
    assert settings.smtp.port == 587 and settings.smtp.security is Security.STARTTLS
    assert settings.pop3.port == 995 and settings.pop3.security is Security.TLS
    assert settings.max_message_bytes == 40 * MIB
    assert settings.data_dir.name == "instance"
    assert not settings.allowed_hosts and settings.host_allowed("anything.example")


def test_values_are_read_and_typed(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    settings = load_settings({
        "POCHTA_DATA_DIR": str(tmp_path), "POCHTA_CA_FILE": str(ca),
        "POCHTA_SMTP_HOST": "smtp.lab", "POCHTA_SMTP_PORT": "465", "POCHTA_SMTP_SECURITY": "TLS",
        "POCHTA_POP3_SECURITY": "starttls", "POCHTA_ALLOWED_HOSTS": "Mail.Lab., pop.lab",
        "POCHTA_MAX_MESSAGE_BYTES": "1000", "POCHTA_TRUST_PROXY": "1",
    })
    assert settings.data_dir == tmp_path and settings.ca_file == ca
    assert (settings.smtp.host, settings.smtp.port) == ("smtp.lab", 465)
    assert settings.smtp.security is Security.TLS and settings.pop3.security is Security.STARTTLS
    assert settings.host_allowed("mail.lab") and settings.host_allowed("POP.LAB")
    assert not settings.host_allowed("evil.example")
    assert settings.max_message_bytes == 1000
    assert settings.secure_cookies  # behind a trusted TLS proxy


@pytest.mark.parametrize(("name", "value"), [
    ("POCHTA_SMTP_PORT", "abc"), ("POCHTA_POP3_PORT", "70000"),
    ("POCHTA_SMTP_SECURITY", "ssl"), ("POCHTA_MAX_MESSAGE_BYTES", "0"),
    ("POCHTA_CA_FILE", "/no/such/file.pem"), ("POCHTA_SECURE_COOKIES", "maybe"),
])
def test_bad_values_name_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value})


def test_fetch_stale_window_takes_fractions_and_refuses_nonsense():
    assert load_settings({"POCHTA_FETCH_STALE_SECONDS": "3.5"}).fetch_stale_seconds == 3.5
    for bad in ("1", "nan", "soon"):
        with pytest.raises(ConfigError, match="POCHTA_FETCH_STALE_SECONDS"):
            load_settings({"POCHTA_FETCH_STALE_SECONDS": bad})
