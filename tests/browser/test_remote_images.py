"""HTML mail in the browser: remote images wait for the user's word, the mail's scripts never run.

The mail's one remote image and its script traps point at a recording HTTP server on
loopback, so "nothing was loaded" is something the test observes, not assumes.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Frame, Page, expect

from tests.browser import mail
from tests.browser.pages import body_frame, get_mail, log_in, open_message
from tests.browser.recorder import RecordingServer
from tests.support.realservers import RealServers

pytestmark = [pytest.mark.browser, pytest.mark.realservers]

BANNER = "/banner.png"
TRAP = "/trap"


def loaded_body(page: Page) -> Frame:
    frame = body_frame(page)
    expect(frame.get_by_role("heading", name="Networking Weekly")).to_be_visible()
    return frame


def test_remote_image_loads_only_after_show_images_and_scripts_never_run(
    page: Page, real_servers: RealServers
) -> None:
    real_servers.clear(mail.ALICE)
    with RecordingServer() as recorder:
        real_servers.deliver(
            mail.ALICE, mail.html_with_remote_image(recorder.url(BANNER), recorder.url(TRAP))
        )
        log_in(page, real_servers, mail.ALICE)
        get_mail(page, new=1)
        open_message(page, mail.HTML_SUBJECT)

        frame = loaded_body(page)
        expect(page.get_by_role("status")).to_contain_text(
            "1 remote image was blocked to protect your privacy."
        )
        # The image stays as its alt text, without any address to load.
        expect(frame.get_by_role("img", name="Weekly banner")).not_to_have_attribute(
            "src", re.compile(r"^https?:")
        )
        assert recorder.requests == []

        page.get_by_role("link", name="Show images").click()
        expect(page.get_by_text("Remote images are shown.")).to_be_visible()
        frame = loaded_body(page)
        banner = frame.get_by_role("img", name="Weekly banner")
        expect(banner).to_be_visible()
        recorder.wait_for(BANNER)
        assert banner.evaluate("img => img.complete && img.naturalWidth") == 480
        assert recorder.requests == [BANNER]

        # The body on its own, in a new window: still no script of the mail runs.
        with page.context.expect_page() as new_window:
            page.get_by_role("link", name="Open the message text in a new window").click()
        alone = new_window.value
        alone.wait_for_load_state("load")
        expect(alone.get_by_role("img", name="Weekly banner")).to_be_visible()
        recorder.wait_for(BANNER, count=2)

        page.get_by_role("link", name="Hide images").click()
        loaded_body(page)
        expect(page.get_by_role("link", name="Show images")).to_be_visible()
        assert recorder.requests == [BANNER, BANNER], "a script or handler of the mail ran"
