"""Case 5: how far a big message raises a gunicorn worker's peak memory.

One worker (so every request of the user lands in the process being watched), logged in
through the real form. Before each measurement a page is served (the worker is warm) and
the worker's peak RSS is reset (`/proc/<pid>/clear_refs` ← "5"); afterwards the growth is
its new peak (VmHWM) minus its RSS at the reset. Fetching: a 40 MB message (a 29 MB
attachment, base64) over POP3 into the store, through `POST /fetch` and its progress.
Sending: `POST /compose` with a 20 MB attachment to another real user. The row's figure is
the largest growth of all runs.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable

from bench.corpus import Corpus
from bench.plan import Plan
from bench.results import Row, progress
from bench.servers import address
from bench.web import logged_in
from tests.reliability.workers import PeakMemory
from tests.support.liveapp import LiveApp, real_servers_env, start_live_app
from tests.support.realservers import RealServers

USER = "memory"
SINK = "sink"
FETCHED_BYTES = 40_000_000
FETCHED_ATTACHMENT = 29_000_000
SENT_ATTACHMENT = 20 * 1024 * 1024


def peak_growth_mb(app: LiveApp, action: Callable[[], None]) -> float:
    """MB the worker's peak RSS rose above its RSS at the start while `action` ran."""
    with PeakMemory(app) as peak:
        action()
    return peak.max_growth_kib * 1024 / 1e6


def _row(case: str, what: str, growths: list[float], limit: float) -> Row:
    return Row(
        case=case, what=what, unit="MB", value=max(growths), limit=limit,
        pochta_samples=growths,
        extra={"median MB": f"{statistics.median(growths):.1f}", "runs": len(growths)},
        note="worst run",
    )


def run(servers: RealServers, plan: Plan, corpus: Corpus) -> list[Row]:
    progress("case 5: peak memory of a worker; building a 40 MB message ...")
    big = corpus.message(1_000_000, to=address(USER), size=FETCHED_BYTES,
                         attachment=FETCHED_ATTACHMENT)
    payload = random.Random(5).randbytes(SENT_ATTACHMENT)  # noqa: S311 (test data)
    data_dir = plan.workdir / "memory" / "data"
    app = start_live_app(data_dir, real_servers_env(servers), workers=1, threads=4)
    try:
        browser = logged_in(app.url, servers, USER, keep=False)
        if len(app.worker_pids()) != 1:
            raise AssertionError(f"one worker expected, gunicorn runs {app.worker_pids()}")
        fetched: list[float] = []
        sent: list[float] = []

        def fetch() -> None:
            state = browser.wait_for_job(browser.start_fetch(), timeout=300)
            if state["state"] != "done" or state["new"] != 1 or state["error"]:
                raise AssertionError(f"the 40 MB fetch did not succeed: {state}")

        def send() -> None:
            answer = browser.post_multipart(
                "/compose",
                {"to": address(SINK), "cc": "", "bcc": "", "subject": "A big file",
                 "body": "Here it is."},
                {"attachments": ("big.bin", payload)},
            )
            if answer.status != 303:
                raise AssertionError(f"compose answered {answer.status}: {answer.text[:500]}")

        for k in range(plan.repeat):
            servers.clear(address(USER))
            servers.deliver(address(USER), big)
            browser.get("/inbox")
            fetched.append(peak_growth_mb(app, fetch))
            browser.get("/compose")
            sent.append(peak_growth_mb(app, send))
            servers.wait_for_count(address(SINK), 1, timeout=60)
            servers.clear(address(SINK))
            progress(f"  case 5 run {k + 1}/{plan.repeat}: fetch +{fetched[-1]:.1f} MB, "
                     f"send +{sent[-1]:.1f} MB")
    finally:
        app.stop()
    return [
        _row("5a", f"peak RSS growth, fetching one {len(big) / 1e6:.0f} MB message", fetched, 50),
        _row("5b", "peak RSS growth, sending a 20 MiB attachment from compose", sent, 100),
    ]
