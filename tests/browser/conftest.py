"""Browser tests: Playwright drives Debian's Chromium against Pochta under gunicorn.

The app runs as in production (`live_app`: gunicorn, three gthread workers, the package's own
config) and talks to the session's real Dovecot and Postfix. Each test gets fresh browser
contexts (`open_page`, `page`): a desktop window of 1280x800 in English unless it asks for
something else (a phone, JavaScript off). Without Chromium the tests are skipped, unless
POCHTA_REQUIRE_REAL_SERVERS=1 (CI), where that is a failure.

`playwright install` is never used: Chromium comes from Debian (`/usr/bin/chromium`).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import liveapp
from tests.support.liveapp import LiveApp, attach_log_on_failure
from tests.support.realservers import REQUIRE_ENV

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
]
TIMEOUT_MS = 15_000
PLAYWRIGHT_MISSING = importlib.util.find_spec("playwright") is None

if PLAYWRIGHT_MISSING:
    if os.environ.get(REQUIRE_ENV) == "1":
        raise pytest.UsageError(
            f"{REQUIRE_ENV}=1, but Playwright is not installed: pip install -e '.[test]'"
        )
    # Nothing here can even be imported; the header line below says why they are missing.
    collect_ignore_glob = ["test_*.py"]
else:
    from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

    from tests.browser.axe import AxeUnavailable, Violation, axe_source, blocking, run_axe
    from tests.browser.pages import DESKTOP

    expect.set_options(timeout=TIMEOUT_MS)

# The fixtures, for the tests here.
live_app = liveapp.live_app
live_app_stopper = liveapp.live_app_stopper

AXE_FINDINGS = pytest.StashKey[list[str]]()
AXE_PAGES = pytest.StashKey[int]()
PAGES = pytest.StashKey[list["Page"]]()


def pytest_report_header(config: pytest.Config) -> str | None:
    if PLAYWRIGHT_MISSING:
        return "browser tests: not collected, Playwright is not installed"
    return None


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1, but the browser tests cannot run: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, one for the whole run."""
    if not Path(CHROMIUM).exists():
        _unavailable(f"{CHROMIUM} is missing: install chromium (scripts/install-system-deps)")
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS
            )
        except Exception as exc:  # Playwright's driver or Chromium cannot start here
            _unavailable(f"Chromium does not start under Playwright: {exc}")
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def open_page(
    browser: Browser, live_app: LiveApp, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Page]]:
    """Open a page in a new, isolated context: `open_page(java_script_enabled=False)`,
    `open_page(viewport=PHONE, is_mobile=True)`. Relative URLs go to the test's live app
    (`page.goto("/login")`); every context is closed after the test, before the app stops."""
    contexts: list[BrowserContext] = []
    pages = request.node.stash.setdefault(PAGES, [])

    def open_(**options: object) -> Page:
        settings: dict[str, object] = {
            "base_url": live_app.url,
            "viewport": DESKTOP,
            "locale": "en-US",
            "timezone_id": "UTC",
            "color_scheme": "light",
            "reduced_motion": "reduce",
            "accept_downloads": True,
            **options,
        }
        context = browser.new_context(**settings)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        pages.append(page)
        return page

    try:
        yield open_
    finally:
        for context in contexts:
            context.close()


@pytest.fixture
def page(open_page: Callable[..., Page], request: pytest.FixtureRequest) -> Page:
    """A desktop page; parametrize indirectly with a dict of context options to change it."""
    return open_page(**getattr(request, "param", {}))


@pytest.fixture(scope="session")
def axe_script() -> str:
    """axe-core's source, fetched from the npm registry once and cached in .cache/."""
    try:
        return axe_source()
    except AxeUnavailable as exc:
        _unavailable(str(exc))
        raise


@pytest.fixture
def check_accessibility(
    axe_script: str, request: pytest.FixtureRequest
) -> Callable[[Page, str], list[Violation]]:
    """`check_accessibility(page, "inbox")`: run axe now; fail on serious or critical
    violations; the moderate and minor ones are listed at the end of the run."""
    findings = request.config.stash.setdefault(AXE_FINDINGS, [])

    def check(page: Page, label: str) -> list[Violation]:
        violations = run_axe(page, axe_script)
        request.config.stash[AXE_PAGES] = request.config.stash.get(AXE_PAGES, 0) + 1
        findings.extend(f"{label}: {v}" for v in violations if v not in blocking(violations))
        serious = blocking(violations)
        assert not serious, f"axe-core on {label} ({page.url}):\n" + "\n".join(
            str(v) for v in serious
        )
        return violations

    return check


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator:
    report = yield
    if report.failed:
        attach_log_on_failure(item, report)
        for open_page_ in item.stash.get(PAGES, []):
            if not open_page_.is_closed():
                report.sections.append(("browser page", open_page_.url))
    return report


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    checked = config.stash.get(AXE_PAGES, 0)
    if not checked:
        return
    findings = config.stash.get(AXE_FINDINGS, [])
    terminalreporter.section("axe-core: moderate and minor findings")
    terminalreporter.write_line(f"{checked} page states checked; {len(findings)} findings")
    for line in dict.fromkeys(findings):
        terminalreporter.write_line(line)
