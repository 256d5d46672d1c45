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
    )
