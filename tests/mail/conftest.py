"""TLS material for the scripted fake servers: a CA the clients trust, and one they do not."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.demo.certs import make_certificates
from app.mail.security import make_tls_context


@dataclass(frozen=True)
class TLSPair:
    server: ssl.SSLContext
    client: ssl.SSLContext
    ca_file: Path


def _server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSPair:
    files = make_certificates(tmp_path_factory.mktemp("tls"), ("localhost", "127.0.0.1"))
    return TLSPair(
        _server_context(files.server_cert, files.server_key),
        make_tls_context(files.ca_cert),
        files.ca_cert,
    )


@pytest.fixture(scope="session")
def foreign_tls(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    """A server context whose CA the clients have never heard of."""
    files = make_certificates(tmp_path_factory.mktemp("foreign"), ("localhost", "127.0.0.1"))
    return _server_context(files.server_cert, files.server_key)


@pytest.fixture(scope="session")
def wrong_host_tls(tmp_path_factory: pytest.TempPathFactory, tls: TLSPair) -> TLSPair:
    """A trusted CA, but a certificate for another host name."""
    files = make_certificates(tmp_path_factory.mktemp("wronghost"), ("mail.example.org",))
    return TLSPair(
        _server_context(files.server_cert, files.server_key),
        make_tls_context(files.ca_cert),
        files.ca_cert,
    )
