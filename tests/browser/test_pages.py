"""The shared browser steps themselves: a step that returns too early makes the tests that
use it flaky on a slow machine, so here a slow page is made on purpose."""

from __future__ import annotations

from playwright.sync_api import Page, Route

from tests.browser import mail
from tests.browser.pages import log_in
from tests.browser.recorder import RecordingServer
from tests.support.realservers import RealServers

SCRIPT_DELAY = 1.0  # s: how long Pochta's script takes to arrive


def test_log_in_returns_only_once_the_inbox_has_loaded(
    page: Page, real_servers: RealServers
) -> None:
    with RecordingServer(delay=SCRIPT_DELAY) as slow:
        # Pochta's script comes a second late, and is never cached: the inbox is shown at
        # once but has not loaded (its deferred script has not run) until that second is over.
        def slow_uncached_script(route: Route) -> None:
            route.fetch(url=slow.url("/wait"))
            script = route.fetch()
            route.fulfill(response=script,
                          headers={**script.headers, "cache-control": "no-store"})

        page.route("**/static/js/pochta.js", slow_uncached_script)
        real_servers.clear(mail.ALICE)

        log_in(page, real_servers, mail.ALICE)

    assert page.evaluate("() => document.readyState") == "complete"
    scripts = page.evaluate("() => performance.getEntriesByType('resource')"
                            ".filter(e => e.name.endsWith('/pochta.js')).map(e => e.duration)")
    assert scripts and scripts[-1] >= SCRIPT_DELAY * 1000
