"""The fault proxy itself: a trap that holds the connection lets nothing more reach the app."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from tests.reliability.proxy import FaultProxy, Trap


class QuitServer:
    """Greets, then answers one command at once and hangs up; remembers what it was told."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.heard = b""
        self.answered = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            conn.settimeout(10)
            conn.sendall(b"+OK ready\r\n")
            while not self.heard.endswith(b"\r\n"):
                chunk = conn.recv(1024)
                if not chunk:
                    return
                self.heard += chunk
            conn.sendall(b"+OK bye\r\n")
            self.answered.set()

    def close(self) -> None:
        self.listener.close()
        self.thread.join(10)


def _read_for(sock: socket.socket, seconds: float) -> bytes:
    """Everything the proxy hands the app within `seconds` (less if it hangs up)."""
    received = b""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            chunk = sock.recv(1024)
        except TimeoutError:
            break
        if not chunk:
            break
        received += chunk
    return received


def test_a_forwarded_quit_reaches_the_server_but_its_answer_never_reaches_the_app(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Springing is made slow, so an answer that could overtake the freeze would do so.
    spring = FaultProxy.spring

    def slow_spring(self: FaultProxy, link: object) -> None:
        time.sleep(0.3)
        spring(self, link)  # type: ignore[arg-type]

    monkeypatch.setattr(FaultProxy, "spring", slow_spring)
    server = QuitServer()
    try:
        with FaultProxy(("127.0.0.1", server.port)) as proxy:
            proxy.arm(Trap(command="QUIT", forward_command=True))
            with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as app:
                assert _read_for(app, 0.5) == b"+OK ready\r\n"
                app.sendall(b"QUIT\r\n")
                assert proxy.sprung.wait(10)
                assert server.answered.wait(10)
                assert server.heard == b"QUIT\r\n"
                assert _read_for(app, 0.5) == b"", "the QUIT's answer slipped through the hold"
    finally:
        server.close()
