"""Case 7: twenty users browsing at once against gunicorn with 4 workers.

Twenty real accounts, each with a few hundred messages seeded into its own store, each logged
in through the form. Then each user is a thread with its own keep-alive connection, going
round an inbox page, a message and a search, as fast as the app answers, for ten seconds.
Reported: requests per second over all users, median and p99 latency, and errors (any
answer but 200, or a failed connection), of which there must be none.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from app.store import Store
from bench.corpus import WORDS, Corpus
from bench.inbox_case import PER_PAGE, seed_mailbox, web_account
from bench.plan import Plan
from bench.results import Row, progress
from bench.servers import address, crowd_names
from bench.web import crowd, logged_in, message_ids
from tests.support.liveapp import real_servers_env, start_live_app
from tests.support.realservers import RealServers

# Words a user might look for: common enough to find a few messages, not in every one.
SEARCH_WORDS = [w for w in WORDS[150:400] if len(w) >= 6 and re.fullmatch(r"\w+", w)][:12]


def run(servers: RealServers, plan: Plan, corpus: Corpus) -> list[Row]:
    names = crowd_names()
    per_user = plan.crowd_messages
    progress(f"case 7: {len(names)} users browsing; seeding {per_user} messages each ...")
    data_dir = plan.workdir / "crowd" / "data"
    with Store(data_dir) as store:
        for k, name in enumerate(names):
            seed_mailbox(store.mailbox(web_account(servers, name)), corpus, per_user,
                         address(name), first=2_000_000 + k * per_user)
    app = start_live_app(data_dir, real_servers_env(servers), workers=4, threads=8)
    try:
        cookies: list[str] = []
        messages: list[list[str]] = []
        for name in names:
            browser = logged_in(app.url, servers, name)
            cookies.append(browser.cookie_header())
            ids = message_ids(browser.get("/inbox").text)
            if not ids:
                raise AssertionError(f"{name}'s inbox lists no message")
            messages.append(ids)
        pages = max(1, per_user // PER_PAGE)

        def next_path(user: int, k: int) -> str:
            step, turn = k % 3, k // 3 + user
            if step == 0:
                return f"/inbox?page={turn % pages + 1}"
            if step == 1:
                ids = messages[user]
                return f"/message/{ids[turn % len(ids)]}"
            return f"/inbox?q={quote(SEARCH_WORDS[turn % len(SEARCH_WORDS)])}"

        progress(f"  {len(names)} users for {plan.crowd_seconds:g} s ...")
        load = crowd("127.0.0.1", app.port, cookies, next_path, plan.crowd_seconds)
        progress(f"  {load.requests_per_second:,.0f} req/s, p50 {load.p50_ms:.1f} ms, "
                 f"p99 {load.p99_ms:.1f} ms, {load.errors} errors")
    finally:
        app.stop()
    return [Row(
        case="7", what=f"{len(names)} users browsing (inbox, message, search), 4 workers",
        unit="errors", value=load.errors, limit=1,
        extra={"req/s": f"{load.requests_per_second:,.0f}", "p50": f"{load.p50_ms:.1f} ms",
               "p99": f"{load.p99_ms:.1f} ms", "seconds": f"{plan.crowd_seconds:g}"},
        note="load from Python threads on the same machine",
    )]
