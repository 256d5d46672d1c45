"""What a person does in Pochta, as steps the browser tests share: log in, get mail, log out,
save a screenshot, check the layout and the focus ring.

Every step goes through the real UI (labels, roles, buttons), the way a user would, and waits
with Playwright's auto-waiting assertions, never with sleeps.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

from playwright.sync_api import Frame, Locator, Page, expect

from tests.browser import mail
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
    # The click returns once the inbox starts loading. Keys pressed before it has loaded can
    # be undone: when Chromium finishes parsing a page it focuses the URL's #fragment again,
    # so a Tab after "Skip to content" (#main) was sent back to <main> on a slow machine.
    page.wait_for_load_state("load")


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


def message_link(page: Page, subject: str) -> Locator:
    """The inbox row's link to the message with this subject."""
    return page.locator("table.messages").get_by_role("link", name=subject, exact=True)


def open_message(page: Page, subject: str) -> None:
    message_link(page, subject).click()
    expect(page.get_by_role("heading", level=1, name=subject)).to_be_visible()


def body_frame(page: Page) -> Frame:
    """The frame of the sanitized HTML body on a message page, once it has loaded."""
    expect(page.locator("iframe.html-body")).to_be_visible()
    handle = page.locator("iframe.html-body").element_handle()
    frame = handle.content_frame() if handle else None
    assert frame is not None
    frame.wait_for_load_state("load")
    return frame


def save_screenshot(page: Page, name: str) -> Path:
    """Save the whole page as docs/screenshots/<name>.png (overwritten on every run)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    # No hover or focus ring left over from the steps that led here.
    page.mouse.move(0, 0)
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.screenshot(path=str(path), full_page=True, animations="disabled", caret="hide")
    return path


def horizontal_overflow(page: Page) -> int:
    """How many CSS pixels the page is wider than the window (0: no sideways scrolling).

    Measured against the layout viewport (`clientWidth`), not `window.innerWidth`: a mobile
    browser zooms out to show content that is too wide, and innerWidth grows with it.
    """
    return page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - document.documentElement.clientWidth"
    )


FOCUSED = """(insideFrame = false) => {
    const el = document.activeElement;
    if (!el || (el === document.body && !insideFrame)) return null;
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
    """What has the keyboard focus, with the computed style of its focus indicator. When it
    is inside a frame (the mail's HTML body), the indicator is the one drawn in there."""
    info = page.evaluate(FOCUSED)
    if info is None or info["tag"] != "iframe":
        return info
    handle = page.evaluate_handle("() => document.activeElement").as_element()
    frame = handle.content_frame() if handle else None
    inner = frame.evaluate(FOCUSED, True) if frame else None
    if inner is None:
        return info
    return {**info, **{k: inner[k] for k in ("outlineStyle", "outlineWidth", "outlineColor",
                                                "boxShadow")}}


def has_focus_ring(info: dict) -> bool:
    outline = info["outlineStyle"] != "none" and info["outlineWidth"] > 0
    return outline or info["boxShadow"] not in ("", "none")


def tab_to(page: Page, text: str, *, limit: int = 60, backwards: bool = False) -> dict:
    """Press Tab until the focused element's text is `text`; what got the focus.

    Every element passed on the way must show a focus indicator.
    """
    key = "Shift+Tab" if backwards else "Tab"
    page.wait_for_load_state("load")  # see log_in: keys pressed earlier can be undone
    for _ in range(limit):
        page.keyboard.press(key)
        info = focused(page)
        assert info is not None, "Tab left the page's controls"
        assert has_focus_ring(info), f"no visible focus indicator on {info}"
        if info["text"] == text:
            return info
    raise AssertionError(f"{limit} presses of {key} never reached {text!r}")


def fill_mailbox(
    page: Page,
    servers: RealServers,
    recorder_url: Callable[[str], str],
    *,
    fill_servers: bool = False,
) -> dict[str, str]:
    """Alice's mailbox holds the three test messages; log in and get them. The URL of each
    message page, by subject. `recorder_url(path)` gives the remote image's address."""
    servers.clear(mail.ALICE)
    servers.deliver_many(mail.ALICE, [
        mail.plain_cyrillic(),
        mail.with_pdf(),
        mail.html_with_remote_image(recorder_url("/banner.png"), recorder_url("/trap")),
    ])
    log_in(page, servers, mail.ALICE, fill_servers=fill_servers)
    get_mail(page, new=3)
    subjects = (mail.PLAIN_SUBJECT, mail.PDF_SUBJECT, mail.HTML_SUBJECT)
    return {s: message_link(page, s).get_attribute("href") or "" for s in subjects}


def assert_fits_and_usable(page: Page, *controls: Locator) -> None:
    """No sideways scrolling, and each control is visible, inside the window's width and
    would take a click (not covered by anything)."""
    assert horizontal_overflow(page) <= 0, (
        f"{page.url} is {horizontal_overflow(page)} px wider than the window: {wide_elements(page)}"
    )
    width = page.viewport_size["width"] if page.viewport_size else 0
    for control in controls:
        expect(control).to_be_visible()
        control.click(trial=True)
        box = control.bounding_box()
        assert box is not None
        assert box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, (
            f"{control} sticks out of the {width} px window: {box}"
        )


def wide_elements(page: Page) -> list[str]:
    """The elements that reach past the window's right edge (for failure messages)."""
    return page.evaluate(
        """() => [...document.querySelectorAll("body *")]
            .filter(el => el.getBoundingClientRect().right
                          > document.documentElement.clientWidth + 0.5)
            .slice(0, 8)
            .map(el => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
                 + (el.className && typeof el.className === "string"
                    ? "." + el.className.trim().split(/\\s+/).join(".") : ""))"""
    )


UNLABELLED = """() => [...document.querySelectorAll("input, select, textarea")]
    .filter(el => el.type !== "hidden")
    .filter(el => !(el.labels && el.labels.length) && !el.getAttribute("aria-label")
                  && !el.getAttribute("aria-labelledby"))
    .map(el => el.outerHTML)"""


def unlabelled_fields(page: Page) -> list[str]:
    """Form fields that no label, aria-label or aria-labelledby names."""
    return page.evaluate(UNLABELLED)


MARK_FOCUSED = """() => {
    const el = document.activeElement;
    if (!el || el === document.body || el === document.documentElement) return null;
    const first = !el.hasAttribute("data-test-tabbed");
    el.setAttribute("data-test-tabbed", "");
    return first;
}"""

UNREACHED = """() => {
    const selector = 'a[href], button, input:not([type=hidden]), select, textarea, summary,'
        + ' [tabindex]:not([tabindex="-1"])';
    // checkVisibility() also hides what a closed <details> holds.
    const shown = el => el.checkVisibility({visibilityProperty: true}) && !el.closest("[inert]");
    const reachedRadio = name => document.querySelector(
        `input[type=radio][name="${name}"][data-test-tabbed]`);
    return [...document.querySelectorAll(selector)]
        .filter(el => shown(el) && !el.disabled && !el.hasAttribute("data-test-tabbed"))
        .filter(el => !(el.type === "radio" && reachedRadio(el.name)))
        .map(el => el.outerHTML.slice(0, 160));
}"""


def assert_every_control_reachable_by_tab(page: Page, limit: int = 150) -> int:
    """Tab through the whole page, around from its end to its top, until a control comes
    round again: every visible control must have had the focus, each with a visible focus
    indicator. How many Tab stops there are."""
    stops = 0
    outside = 0
    page.wait_for_load_state("load")  # see log_in: keys pressed earlier can be undone
    for _ in range(limit):
        page.keyboard.press("Tab")
        info = focused(page)
        if info is None:  # past the last control: the focus left the document
            outside += 1
            if outside > 2:
                break
            continue
        outside = 0
        assert has_focus_ring(info), f"no visible focus indicator on {info} at {page.url}"
        if not page.evaluate(MARK_FOCUSED):
            break  # around again
        stops += 1
    unreached = page.evaluate(UNREACHED)
    assert not unreached, f"never reached with Tab on {page.url}: {unreached}"
    return stops


FOCUS_COLOURS = """() => {
    const el = document.activeElement;
    if (!el || el === document.body) return null;
    let behind = el.parentElement;
    while (behind) {
        const bg = getComputedStyle(behind).backgroundColor;
        if (bg && bg !== "transparent" && !bg.startsWith("rgba(0, 0, 0, 0)")) {
            return {ring: getComputedStyle(el).outlineColor, behind: bg,
                    text: (el.innerText || el.id || el.tagName).trim().slice(0, 40)};
        }
        behind = behind.parentElement;
    }
    return {ring: getComputedStyle(el).outlineColor, behind: "rgb(255, 255, 255)",
            text: (el.innerText || el.id || el.tagName).trim().slice(0, 40)};
}"""


def _luminance(css_colour: str) -> float:
    red, green, blue = (int(x) for x in re.findall(r"\d+", css_colour)[:3])

    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * linear(red) + 0.7152 * linear(green) + 0.0722 * linear(blue)


def contrast(first: str, second: str) -> float:
    """The WCAG contrast ratio of two CSS rgb() colours."""
    high, low = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def focus_ring_contrasts(page: Page, presses: int) -> list[tuple[str, float]]:
    """For the next `presses` Tab stops: each control and the contrast of its focus outline
    against the background it is drawn on."""
    found = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        colours = page.evaluate(FOCUS_COLOURS)
        if colours is None:
            break
        found.append((colours["text"], round(contrast(colours["ring"], colours["behind"]), 2)))
    return found


def message_states(page: Page, urls: dict[str, str]) -> Iterator[str]:
    """Open the plain, the PDF-attached and the HTML test mail, then show the HTML one's
    remote images; stop at each of these states and yield its name (a screenshot's name)."""
    for name, subject in (("message-text", mail.PLAIN_SUBJECT),
                          ("message-attachment", mail.PDF_SUBJECT),
                          ("message-html-blocked", mail.HTML_SUBJECT)):
        page.goto(urls[subject])
        if subject == mail.HTML_SUBJECT:
            body_frame(page)
        yield name
    page.get_by_role("link", name="Show images").click()
    expect(body_frame(page).get_by_role("img", name="Weekly banner")).to_be_visible()
    yield "message-html-images"
