"""A stand-in for "the internet" on loopback: an HTTP server that records every request.

Remote images in test mail point here, so whether the browser fetched one is a fact the test
can read: `requests` lists every path (with its query) in the order they arrived. With a
`delay`, every answer comes that many seconds late (a slow network, made on purpose).
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.browser.mail import BANNER_BYTES


class _Handler(BaseHTTPRequestHandler):
    server: RecordingServer

    def do_GET(self) -> None:
        self.server.record(self.path)
        time.sleep(self.server.delay)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(BANNER_BYTES)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(BANNER_BYTES)

    do_POST = do_GET  # a fetch() from a script that should never run

    def log_message(self, format: str, *args: object) -> None:
        pass


class RecordingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, *, delay: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.delay = delay
        self._lock = threading.Lock()
        self._requests: list[str] = []
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def record(self, path: str) -> None:
        with self._lock:
            self._requests.append(path)

    @property
    def requests(self) -> list[str]:
        with self._lock:
            return list(self._requests)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def wait_for(self, path: str, count: int = 1, timeout: float = 10) -> None:
        """Wait until `path` was requested at least `count` times."""
        deadline = time.monotonic() + timeout
        while self.requests.count(path) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{path} was not requested in {timeout} s: {self.requests}")
            time.sleep(0.02)

    def __enter__(self) -> RecordingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(5)
