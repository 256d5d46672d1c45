"""The POCHTA_* environment, read once into typed settings.

Everything else in the package receives a `Settings` object (or values from it) instead of
reading the environment itself, so tests can build any configuration without touching
`os.environ` and a running app never changes its mind halfway through.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from app.mail.security import Security

MIB = 1024 * 1024


class ConfigError(ValueError):
    """A POCHTA_* variable holds a value Pochta cannot use."""


@dataclass(frozen=True)
class ServerDefaults:
    """What the login form offers for one protocol before the user changes anything."""

    host: str
    port: int
    security: Security


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    secret_key: str | None = None
    ca_file: Path | None = None
    allowed_hosts: frozenset[str] = field(default_factory=frozenset)
    smtp: ServerDefaults = ServerDefaults("", 587, Security.STARTTLS)
    pop3: ServerDefaults = ServerDefaults("", 995, Security.TLS)
    max_message_bytes: int = 40 * MIB
    mail_timeout: float = 30.0
    trust_proxy: int = 0
    secure_cookies: bool = False
    session_idle_seconds: int = 2 * 3600
    fetch_stale_seconds: float = 30.0

    @property
    def max_upload_bytes(self) -> int:
        """A compose form's whole upload: the message limit plus room for the typed fields
        (attachments grow by a third in base64, so a bigger upload could never be sent)."""
        return self.max_message_bytes + MIB

    def host_allowed(self, host: str) -> bool:
        """An empty allow-list means any host; otherwise only the listed ones, case-blind."""
        if not self.allowed_hosts:
            return True
        return host.strip().lower().rstrip(".") in self.allowed_hosts


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}")
    return value


def _seconds(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, not {raw!r}") from None
    if not value >= minimum:  # also refuses nan
        raise ConfigError(f"{name} must be at least {minimum:g} seconds, not {raw}")
    return value


def _flag(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be 1 or 0 (true or false), not {raw!r}")


def _security(env: Mapping[str, str], name: str, default: Security) -> Security:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    try:
        return Security(raw)
    except ValueError:
        choices = ", ".join(s.value for s in Security)
        raise ConfigError(f"{name} must be one of {choices}, not {raw!r}") from None


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    port = _int(env, name, default)
    if port > 65535:
        raise ConfigError(f"{name} must be a TCP port (1-65535), not {port}")
    return port


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read the POCHTA_* variables; raise ConfigError naming the variable that is wrong."""
    env = os.environ if env is None else env
    ca_raw = env.get("POCHTA_CA_FILE", "").strip()
    ca_file = Path(ca_raw) if ca_raw else None
    if ca_file is not None and not ca_file.is_file():
        raise ConfigError(f"POCHTA_CA_FILE names {ca_raw!r}, which is not a readable file")
    trust_proxy = _int(env, "POCHTA_TRUST_PROXY", 0, minimum=0)
    hosts = frozenset(
        h.strip().lower().rstrip(".")
        for h in env.get("POCHTA_ALLOWED_HOSTS", "").split(",")
        if h.strip()
    )
    return Settings(
        data_dir=Path(env.get("POCHTA_DATA_DIR", "").strip() or "instance").absolute(),
        secret_key=env.get("POCHTA_SECRET_KEY") or None,
        ca_file=ca_file,
        allowed_hosts=hosts,
        smtp=ServerDefaults(
            env.get("POCHTA_SMTP_HOST", "").strip(),
            _port(env, "POCHTA_SMTP_PORT", 587),
            _security(env, "POCHTA_SMTP_SECURITY", Security.STARTTLS),
        ),
        pop3=ServerDefaults(
            env.get("POCHTA_POP3_HOST", "").strip(),
            _port(env, "POCHTA_POP3_PORT", 995),
            _security(env, "POCHTA_POP3_SECURITY", Security.TLS),
        ),
        max_message_bytes=_int(env, "POCHTA_MAX_MESSAGE_BYTES", 40 * MIB),
        mail_timeout=float(_int(env, "POCHTA_MAIL_TIMEOUT", 30)),
        trust_proxy=trust_proxy,
        secure_cookies=_flag(env, "POCHTA_SECURE_COOKIES", default=trust_proxy > 0),
        session_idle_seconds=60 * _int(env, "POCHTA_SESSION_IDLE_MINUTES", 120),
        fetch_stale_seconds=_seconds(env, "POCHTA_FETCH_STALE_SECONDS", 30.0, minimum=2.0),
    )
