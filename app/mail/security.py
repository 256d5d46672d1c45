"""How a connection is protected, and the one place TLS trust is decided.

Certificates and host names are always verified; the only choice a caller has is which extra
CA bundle to trust besides the system's (a lab's own CA, the test setup's CA).
"""

from __future__ import annotations

import ssl
from enum import StrEnum
from pathlib import Path


class Security(StrEnum):
    """`tls` is TLS from the first byte; `starttls` upgrades (STARTTLS/STLS) before anything
    secret is said; `none` is plaintext and must be asked for explicitly."""

    TLS = "tls"
    STARTTLS = "starttls"
    NONE = "none"


def make_tls_context(ca_file: str | Path | None = None) -> ssl.SSLContext:
    """A client context that verifies the chain and the host name, TLS 1.2 or newer."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context
