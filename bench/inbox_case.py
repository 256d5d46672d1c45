"""Case 4: the inbox of a mailbox of 100,000 messages, against `/healthz` on the same server.

One account's store is seeded directly (messages built and indexed by the fetch's own
`new_message`, in a pool of processes, added in big batches), for the account the web login
gives: the POP3 server "localhost" on the TLS port, the user as typed. Then the first page,
a page deep in the mailbox and a search for a word in 1% of the bodies are served twice:
by the Flask test client (no HTTP: the app's own time) and by gunicorn with 4 workers under
`wrk` (8 connections), each beside `/healthz` measured the same way in the same run.
"""

from __future__ import annotations

import os
import shutil
import statistics
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from flask.testing import FlaskClient

from app import create_app
from app.store import AccountKey, Mailbox, Store
from bench.corpus import RARE_WORD, Corpus, stored
from bench.plan import Plan
from bench.results import Row, progress
from bench.servers import address
from bench.store_bench import store_bytes
from bench.web import have_wrk, logged_in, login_fields, message_ids, python_load, wrk
from tests.support.liveapp import real_servers_env, start_live_app
from tests.support.realservers import RealServers

USER = "inbox"
CHUNK = 2000
PER_PAGE = 50


def web_account(servers: RealServers, name: str) -> AccountKey:
    """The store key a web login as `name` gets (the form's host is "localhost")."""
    return AccountKey("localhost", servers.pop3_tls_port, address(name))


def _chunks(first: int, n: int) -> Iterator[tuple[int, int]]:
    for start in range(first, first + n, CHUNK):
        yield start, min(CHUNK, first + n - start)


def seed_mailbox(mailbox: Mailbox, corpus: Corpus, n: int, to: str, first: int = 0) -> float:
    """Add n messages built and indexed in a process pool; messages per second."""
    began = time.perf_counter()
    workers = max(1, min(4, os.cpu_count() or 1))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        chunks = list(_chunks(first, n))
        batches = pool.map(stored, [corpus] * len(chunks), [c[0] for c in chunks],
                           [c[1] for c in chunks], [to] * len(chunks))
        done = 0
        for batch in batches:
            mailbox.add_messages(batch)
            done += len(batch)
            if done % 20_000 == 0:
                progress(f"  {done:,} of {n:,} stored")
    return n / (time.perf_counter() - began)


def _paths(n: int) -> dict[str, str]:
    deep = max(1, min(1000, n // PER_PAGE))
    return {
        "healthz": "/healthz",
        "page 1": "/inbox",
        f"page {deep:,}": f"/inbox?page={deep}",
        f"search (1%: '{RARE_WORD}')": f"/inbox?q={RARE_WORD}",
    }


def _log_in(client: FlaskClient, servers: RealServers) -> None:
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token"', 1)[1].split('value="', 1)[1].split('"', 1)[0]
    response = client.post("/login", data={"csrf_token": token, **login_fields(servers, USER)})
    if response.status_code not in (302, 303):
        raise AssertionError(f"test-client login answered {response.status_code}")


def _check(paths: dict[str, str], get: Callable[[str], tuple[int, bytes]]) -> None:
    for label, path in paths.items():
        status, body = get(path)
        if status != 200:
            raise AssertionError(f"{path} answered {status}")
        if path != "/healthz" and not message_ids(body.decode("utf-8", "replace")):
            raise AssertionError(f"{label} ({path}) lists no message")


def _timed(get: Callable[[str], tuple[int, bytes]], path: str) -> float:
    began = time.perf_counter()
    status, _body = get(path)
    elapsed = time.perf_counter() - began
    if status != 200:
        raise AssertionError(f"{path} answered {status}")
    return elapsed


def _sample(
    plan: Plan, paths: dict[str, str], session: Callable[[], Callable[[str], tuple[int, bytes]]],
    *, fresh: bool, label: str,
) -> dict[str, list[float]]:
    """`page_rounds` requests of each path per repeat, interleaved. With `fresh` each round
    logs in anew, so every page is a first view (the app keeps pages per session); else one
    session asks for the same pages again and again, as a reload does."""
    samples: dict[str, list[float]] = {name: [] for name in paths}
    get = session()
    for path in paths.values():  # warm up
        _timed(get, path)
    for k in range(plan.repeat):
        for _round in range(plan.page_rounds):
            if fresh:
                get = session()
            for name, path in paths.items():
                samples[name].append(_timed(get, path))
        progress(f"  case 4 {label} run {k + 1}/{plan.repeat}: " + ", ".join(
            f"{name} {statistics.median(s[-plan.page_rounds:]) * 1000:.2f} ms"
            for name, s in samples.items()))
    return samples


def test_client_rows(servers: RealServers, plan: Plan, data_dir: Path, n: int) -> list[Row]:
    app = create_app({
        **real_servers_env(servers), "POCHTA_DATA_DIR": str(data_dir),
        "POCHTA_SECRET_KEY": "pochta-bench-not-secret",
    })
    paths = _paths(n)

    def session() -> Callable[[str], tuple[int, bytes]]:
        client = app.test_client()
        _log_in(client, servers)

        def get(path: str) -> tuple[int, bytes]:
            response = client.get(path)
            return response.status_code, response.get_data()

        return get

    _check(paths, session())
    rows = _rows("abc", "test client, first view", _sample(
        plan, paths, session, fresh=True, label="test client, first view"), paths, barred=False)
    rows += _rows("def", "test client, repeat view", _sample(
        plan, paths, session, fresh=False, label="test client, repeat view"), paths)
    return rows


def _rows(letters: str, how: str, samples: dict[str, list[float]], paths: dict[str, str],
          extra: dict[str, dict[str, object]] | None = None, unit: str = "s",
          *, barred: bool = True) -> list[Row]:
    """Rows of ratios to /healthz. The issue's bars are for the pages as served again and
    again (a reload, the load generator); a session's very first view of a page, which the
    app must render, is reported beside them for what it costs (`barred=False`)."""
    health = samples["healthz"]
    rows = []
    for letter, label in zip(letters, [p for p in paths if p != "healthz"], strict=True):
        bar = (10.0 if label.startswith("search") else 3.0) if barred else None
        rows.append(Row(
            case=f"4{letter}", what=f"inbox {label}: {how}",
            reference="/healthz, same way", unit=unit, reference_samples=health,
            pochta_samples=samples[label], bar=bar,
            extra=(extra or {}).get(label, {}),
        ))
    return rows


def gunicorn_rows(servers: RealServers, plan: Plan, data_dir: Path, n: int) -> list[Row]:
    app = start_live_app(data_dir, real_servers_env(servers), workers=4, threads=8)
    try:
        paths = _paths(n)

        def session() -> Callable[[str], tuple[int, bytes]]:
            browser = logged_in(app.url, servers, USER)

            def get(path: str) -> tuple[int, bytes]:
                answer = browser.get(path)
                return answer.status, answer.body

            return get

        _check(paths, session())
        rows = _rows("ghi", "gunicorn, first view", _sample(
            plan, paths, session, fresh=True, label="gunicorn, first view"), paths,
            barred=False)
        browser = logged_in(app.url, servers, USER)
        return rows + _under_load(plan, paths, app.url, app.port, browser.cookie_header())
    finally:
        app.stop()


def _under_load(plan: Plan, paths: dict[str, str], url: str, port: int, cookie: str) -> list[Row]:
    """wrk on each path in turn, one session: the same pages again and again."""
    use_wrk = have_wrk()
    if not use_wrk:
        progress("  wrk is not installed (apt-get install wrk): using Python threads")
    p50: dict[str, list[float]] = {label: [] for label in paths}
    rates: dict[str, list[float]] = {label: [] for label in paths}
    p99: dict[str, list[float]] = {label: [] for label in paths}
    errors = 0
    for k in range(plan.repeat):
        for label, path in paths.items():
            if use_wrk:
                load = wrk(url + path, cookie, plan.wrk_seconds)
            else:
                load = python_load("127.0.0.1", port, path, cookie, plan.wrk_seconds)
            p50[label].append(load.p50_ms)
            p99[label].append(load.p99_ms)
            rates[label].append(load.requests_per_second)
            errors += load.errors
        progress(f"  case 4 gunicorn under load run {k + 1}/{plan.repeat}: " + ", ".join(
            f"{label} p50 {v[-1]:.2f} ms" for label, v in p50.items()))
    tool = "wrk -c8" if use_wrk else "8 Python threads"
    extra = {label: {"req/s": f"{statistics.median(rates[label]):,.0f}",
                     "p99": f"{statistics.median(p99[label]):.1f} ms",
                     "/healthz req/s": f"{statistics.median(rates['healthz']):,.0f}"}
             for label in paths}
    rows = _rows("jkl", f"gunicorn + {tool}, p50", p50, paths, extra, unit="ms")
    if errors:
        rows[-1].note = f"{errors} errors under load"
    return rows


def run(servers: RealServers, plan: Plan, corpus: Corpus) -> list[Row]:
    n = plan.inbox_messages
    progress(f"case 4: inbox at {n:,} messages; seeding the store ...")
    data_dir = plan.workdir / "inbox" / "data"
    with Store(data_dir) as store:
        rate = seed_mailbox(store.mailbox(web_account(servers, USER)), corpus, n, address(USER))
    size = store_bytes(data_dir)
    progress(f"  seeded at {rate:,.0f} messages/s; store {size / 1e6:,.0f} MB")
    try:
        rows = test_client_rows(servers, plan, data_dir, n)
        rows += gunicorn_rows(servers, plan, data_dir, n)
    finally:
        shutil.rmtree(data_dir.parent, ignore_errors=True)
    rows[0].extra["store bytes/message"] = f"{size / n:,.0f}"
    rows[0].extra["messages"] = f"{n:,}"
    return rows
