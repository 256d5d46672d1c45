"""The shared browser steps themselves: a step that returns too early makes the tests that
use it flaky on a slow machine, so here a slow page is made on purpose."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import Page, Route

from tests.browser import mail
from tests.browser.pages import log_in
from tests.support.realservers import RealServers

SCRIPT_DELAY = 1.0  # s: how long Pochta's script takes to arrive


class _SlowScript(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        time.sleep(SCRIPT_DELAY)
        self.send_response(200)
        self.send_header("Content-Type", "text/javascript")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b";\n")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def slow_script_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowScript)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/slow.js"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_log_in_returns_only_once_the_inbox_has_loaded(
    page: Page, real_servers: RealServers, slow_script_url: str
) -> None:
    # Pochta's script comes a second late, and is never cached: the inbox is shown at once
    # but has not loaded (its deferred script has not run) until that second is over.
    def slow_uncached_script(route: Route) -> None:
        route.fetch(url=slow_script_url)
        script = route.fetch()
        route.fulfill(response=script, headers={**script.headers, "cache-control": "no-store"})

    page.route("**/static/js/pochta.js", slow_uncached_script)
    real_servers.clear(mail.ALICE)

    log_in(page, real_servers, mail.ALICE)

    assert page.evaluate("() => document.readyState") == "complete"
    scripts = page.evaluate("() => performance.getEntriesByType('resource')"
                            ".filter(e => e.name.endsWith('/pochta.js')).map(e => e.duration)")
    assert scripts and scripts[-1] >= SCRIPT_DELAY * 1000
