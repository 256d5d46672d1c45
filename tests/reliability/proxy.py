"""A TCP proxy between the app and a real POP3 server that stops or cuts the dialogue on cue.

The fault tests need to stop a fetch at an exact point of its dialogue with Dovecot: before
the first RETR, in the middle of a batch, right after a batch was committed (the first DELE is
the sign), while DELEs are answered, after QUIT reached the server. The proxy reads the
client's commands (plaintext POP3) and counts the server's bytes; when its `Trap` springs it
either *holds* the connection (forwards nothing more either way, so the test can kill the
worker at that moment) or *cuts* it (closes both sides, as a broken network would).
Only connections opened after `arm()` carry the trap (a login check passes untouched), and
after it has sprung once, later connections pass through untouched again.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass

HOST = "127.0.0.1"


@dataclass
class Trap:
    """When to spring, and what to do then (`action`: "hold" or "cut").

    `command` (a POP3 verb) springs on its `nth` occurrence among the client's commands;
    the command itself is forwarded when `forward_command` is set (QUIT: let the server
    commit its deletions), held back otherwise. `server_bytes` springs once that many bytes
    have come from the server since the first RETR went out.
    """

    action: str = "hold"
    command: str | None = None
    nth: int = 1
    forward_command: bool = False
    server_bytes: int | None = None

    def __post_init__(self) -> None:
        assert self.action in ("hold", "cut")
        assert (self.command is None) != (self.server_bytes is None)


class FaultProxy:
    """Listens on 127.0.0.1; every connection is relayed to `target`, subject to `trap`."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.trap: Trap | None = None
        self.sprung = threading.Event()
        self.client_ports: list[int] = []  # the app's side of each relayed connection
        self.trapped_client_port: int | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._listener = socket.create_server((HOST, 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self.links: list[_Link] = []
        self._spawn(self._accept_loop)

    def arm(self, trap: Trap) -> None:
        """Set the trap for the next connections."""
        self.trap = trap

    def wait_until_idle(self, timeout: float) -> bool:
        """Wait until at least one connection was relayed and every one has ended."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                links = list(self.links)
            if links and all(link.closed.is_set() for link in links):
                return True
            time.sleep(0.05)
        return False

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(10)
        for sock in sockets:
            sock.close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- relaying --------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, address = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            for sock in (client, server):
                sock.settimeout(0.2)
            with self._lock:
                self._sockets += [client, server]
                self.client_ports.append(address[1])
            armed = self.trap is not None and not self.sprung.is_set()
            link = _Link(self, client, server, address[1], self.trap if armed else None)
            with self._lock:
                self.links.append(link)
            self._spawn(link.client_to_server)
            self._spawn(link.server_to_client)

    def spring(self, link: _Link) -> None:
        self.trapped_client_port = link.client_port
        self.sprung.set()


class _Link:
    """One relayed connection and the state its trap watches."""

    def __init__(self, proxy: FaultProxy, client: socket.socket, server: socket.socket,
                 client_port: int, trap: Trap | None):
        self.proxy = proxy
        self.client = client
        self.server = server
        self.client_port = client_port
        self.trap = trap
        self.frozen = threading.Event()
        self.closed = threading.Event()
        self.seen_commands: dict[str, int] = {}
        self.retr_started = False
        self.bytes_since_retr = 0
        self._pending = b""

    def _recv(self, sock: socket.socket) -> bytes | None:
        """Data, or None when the link is over (EOF, error, proxy closing, cut)."""
        while not (self.proxy._stop.is_set() or self.closed.is_set()):
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return None
            return data or None
        return None

    def _send(self, sock: socket.socket, data: bytes) -> bool:
        try:
            sock.sendall(data)
        except OSError:
            return False
        return True

    def _finish(self) -> None:
        self.closed.set()
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _spring(self) -> None:
        assert self.trap is not None
        self.proxy.spring(self)
        if self.trap.action == "cut":
            self._finish()
        else:
            self.frozen.set()

    def client_to_server(self) -> None:
        """Relay commands; once held, swallow whatever the app still sends until it goes
        away (so no QUIT reaches the server), then close both sides."""
        while (data := self._recv(self.client)) is not None:
            if self.frozen.is_set():
                continue
            forward, spring = self._watch_commands(data)
            if spring and self.trap is not None and self.trap.action == "hold":
                # Frozen before the command goes out: a forwarded QUIT's answer must not
                # slip through to the app (which would then hang up before the kill).
                self.frozen.set()
            if forward and not self._send(self.server, forward):
                break
            if spring:
                self._spring()
                if self.closed.is_set():
                    return
        self._finish()

    def server_to_client(self) -> None:
        while True:
            data = self._recv(self.server)
            if data is None or self.frozen.is_set():
                break
            trap = self.trap
            if trap is not None and trap.server_bytes is not None and self.retr_started \
                    and not self.proxy.sprung.is_set():
                room = trap.server_bytes - self.bytes_since_retr
                if room <= len(data):
                    self._send(self.client, data[:max(room, 0)])
                    self._spring()
                    break
            if self.retr_started:
                self.bytes_since_retr += len(data)
            if not self._send(self.client, data):
                break
        if not self.frozen.is_set():
            self._finish()

    def _watch_commands(self, data: bytes) -> tuple[bytes, bool]:
        """What of `data` to forward now, and whether the trap springs after it."""
        if self.trap is None or self.proxy.sprung.is_set():
            self._note_retr(data)
            return data, False
        self._pending += data
        forward = b""
        while b"\n" in self._pending:
            line, self._pending = self._pending.split(b"\n", 1)
            verb = line.strip().split(b" ", 1)[0].decode("ascii", "replace").upper()
            self._note_retr(line)
            count = self.seen_commands[verb] = self.seen_commands.get(verb, 0) + 1
            if self.trap.command == verb and count == self.trap.nth:
                if self.trap.forward_command:
                    forward += line + b"\n"
                self._pending = b""
                return forward, True
            forward += line + b"\n"
        return forward, False

    def _note_retr(self, data: bytes) -> None:
        if not self.retr_started and b"RETR" in data.upper():
            self.retr_started = True
