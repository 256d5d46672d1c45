"""What a person does in Pochta, as steps the browser tests share: log in, get mail, log out,
save a screenshot, check the layout and the focus ring.

Every step goes through the real UI (labels, roles, buttons), the way a user would, and waits
with Playwright's auto-waiting assertions, never with sleeps.
"""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.support.realservers import RealServers

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 667}
FETCH_TIMEOUT = 30_000  # ms: a fetch over real POP3, followed by page reloads


def log_in(
    page: Page,
    servers: RealServers,
    user: str,
    *,
    fill_servers: bool = False,
) -> None:
    """Log in through the form; with `fill_servers`, type the servers' settings too (else the
    form's defaults, which the live app points at the real servers, are kept)."""
    page.goto("/login")
    page.get_by_label("E-mail address").fill(user)
    page.get_by_label("Password").fill(servers.users[user])
    if fill_servers:
        incoming = page.get_by_role("group", name="Incoming mail (POP3)")
        incoming.get_by_label("POP3 server").fill("localhost")
        incoming.get_by_label("Port").fill(str(servers.pop3_tls_port))
        incoming.get_by_label("Security").select_option("tls")
        outgoing = page.get_by_role("group", name="Outgoing mail (SMTP)")
        outgoing.get_by_label("SMTP server").fill("localhost")
        outgoing.get_by_label("Port").fill(str(servers.smtp_starttls_port))
        outgoing.get_by_label("Security").select_option("starttls")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/inbox$"))
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def log_out(page: Page) -> None:
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("button", name="Log in")).to_be_visible()


def start_fetch(page: Page) -> None:
    """Press "Get mail"; the inbox then shows the fetch's progress bar."""
    page.get_by_role("button", name="Get mail").click()
    expect(page).to_have_url(re.compile(r"/inbox\?job="))
    expect(page.locator("#fetch-status progress")).to_be_visible()


def wait_for_fetch(page: Page, new: int) -> None:
    """Wait until the status says the fetch is done with `new` new messages."""
    noun = "message" if new == 1 else "messages"
    expect(page.locator("#fetch-status")).to_contain_text(
        f"Done: {new} new {noun}.", timeout=FETCH_TIMEOUT
    )
    expect(page.locator("#fetch-status")).to_have_attribute("data-state", "done")


def get_mail(page: Page, new: int) -> None:
    start_fetch(page)
    wait_for_fetch(page, new)


def message_link(page: Page, subject: str):
    """The inbox row's link to the message with this subject."""
    return page.locator("table.messages").get_by_role("link", name=subject, exact=True)


def open_message(page: Page, subject: str) -> None:
    message_link(page, subject).click()
    expect(page.get_by_role("heading", level=1, name=subject)).to_be_visible()


def save_screenshot(page: Page, name: str) -> Path:
    """Save the whole page as docs/screenshots/<name>.png (overwritten on every run)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True, animations="disabled", caret="hide")
    return path


def horizontal_overflow(page: Page) -> int:
    """How many CSS pixels the page is wider than the window (0: no sideways scrolling)."""
    return page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - window.innerWidth"
    )


FOCUSED = """() => {
    const el = document.activeElement;
    if (!el || el === document.body) return null;
    const style = getComputedStyle(el);
    return {
        tag: el.tagName.toLowerCase(),
        id: el.id,
        name: el.getAttribute("name") || "",
        type: el.getAttribute("type") || "",
        text: (el.innerText || el.value || el.getAttribute("aria-label") || "").trim(),
        outlineStyle: style.outlineStyle,
        outlineWidth: parseFloat(style.outlineWidth) || 0,
        outlineColor: style.outlineColor,
        boxShadow: style.boxShadow,
        visible: !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length),
    };
}"""


def focused(page: Page) -> dict | None:
    """What has the keyboard focus, with the computed style of its focus indicator."""
    return page.evaluate(FOCUSED)


def has_focus_ring(info: dict) -> bool:
    outline = info["outlineStyle"] != "none" and info["outlineWidth"] > 0
    return outline or info["boxShadow"] not in ("", "none")


def tab_to(page: Page, text: str, *, limit: int = 60, backwards: bool = False) -> dict:
    """Press Tab until the focused element's text is `text`; what got the focus.

    Every element passed on the way must show a focus indicator.
    """
    key = "Shift+Tab" if backwards else "Tab"
    for _ in range(limit):
        page.keyboard.press(key)
        info = focused(page)
        assert info is not None, "Tab left the page's controls"
        assert has_focus_ring(info), f"no visible focus indicator on {info}"
        if info["text"] == text:
            return info
    raise AssertionError(f"{limit} presses of {key} never reached {text!r}")
