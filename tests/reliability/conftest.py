"""Reliability tests: the running app (gunicorn) attacked by hostile servers, killed mid-fetch,
and loaded by many users at once. A failing test's report carries gunicorn's log tail."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.reliability.apps import RUNNING


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed and report.when != "teardown":
        for app in RUNNING:
            report.sections.append(
                (f"gunicorn log (tail) {app.url}", f"{app.log_path}\n{app.log_tail(60)}")
            )
