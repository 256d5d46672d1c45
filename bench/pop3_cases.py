"""Cases 1-3: downloading mail into the store, against `poplib` on the same server and data.

Pochta's side is the web app's own fetch: the job `POST /fetch` starts (`run_job`: a POP3
client connected and logged in as the web app does, `fetch_new` into a `MailboxDestination`
of a fresh store, progress and log written to the store), timed from its start to its end
(QUIT done, outcome recorded). The reference is the standard library's `poplib`: log in,
RETR every message into memory, DELE each, QUIT (case 3: log in, UIDL, QUIT).
Before every run of either side the mailbox is emptied and seeded with the same messages.
"""

from __future__ import annotations

import io
import poplib
import shutil
import statistics
import time
from collections.abc import Callable, Sized
from typing import Any

from app.fetch.jobs import FetchRequest, run_job
from app.mail.pop3 import POP3Client
from app.mail.security import Security
from app.mail.transcript import Transcript
from app.store import AccountKey, Store
from bench.corpus import Corpus
from bench.plan import Plan
from bench.results import Row, interleaved, progress
from bench.servers import HOST, address, password, plain_tls_context, tls_context
from tests.support.realservers import RealServers

MAX_MESSAGE_BYTES = 40 * 1024 * 1024
POPLIB_MAXLINE = 64 * 1024  # poplib refuses lines over 2048 bytes by default


class Pop3Bench:
    """One mailbox on the real server, and both ways of downloading it."""

    def __init__(self, servers: RealServers, plan: Plan, name: str, *, tls: bool):
        self.servers = servers
        self.plan = plan
        self.user = address(name)
        self.password = password(name)
        self.tls = tls
        self.port = servers.pop3_tls_port if tls else servers.pop3_plain_port
        self.security = Security.TLS if tls else Security.NONE
        self.context = tls_context(servers)
        self.reference_context = plain_tls_context(servers)
        self.account = AccountKey(HOST, self.port, self.user)
        self.runs = 0

    # -- the mailbox --------------------------------------------------------------------

    def reseed(self, messages: list[bytes]) -> None:
        self.servers.clear(self.user)
        self.servers.deliver_many(self.user, messages)

    # -- poplib -------------------------------------------------------------------------

    def _poplib(self) -> poplib.POP3:
        """Connected and logged in with USER/PASS, as a poplib user would write it."""
        poplib._MAXLINE = POPLIB_MAXLINE
        if self.tls:
            pop = poplib.POP3_SSL(HOST, self.port, context=self.reference_context, timeout=60)
        else:
            pop = poplib.POP3(HOST, self.port, timeout=60)
        pop.user(self.user)
        pop.pass_(self.password)
        return pop

    def poplib_retrieve(self, expected: int) -> float:
        """Log in, RETR every message into memory, DELE each, QUIT: seconds."""
        def work(pop: poplib.POP3) -> list[list[bytes]]:
            count, _size = pop.stat()
            held = [pop.retr(n)[1] for n in range(1, count + 1)]  # the lines of each
            for n in range(1, count + 1):
                pop.dele(n)
            return held

        return _timed(self._poplib, work, expected, "poplib retrieved")

    def poplib_uidl(self, expected: int) -> float:
        return _timed(self._poplib, lambda pop: pop.uidl()[1], expected, "UIDL listed")

    # -- Pochta -------------------------------------------------------------------------

    def _connect(self, transcript: Transcript) -> POP3Client:
        """What `mailops.fetch_request` hands the job: connected and logged in."""
        client = POP3Client(
            HOST, self.port, security=self.security, tls_context=self.context, timeout=30,
            transcript=transcript, max_message_bytes=MAX_MESSAGE_BYTES,
        )
        client.connect()
        try:
            client.login(self.user, self.password)
        except BaseException:
            client.close()
            raise
        return client

    def wire_only(self, expected: int) -> float:
        """Pochta's POP3 client alone, as poplib is timed: pipelined RETR of every message
        into memory, DELE, QUIT; no store, no index. Where the fetch's time goes."""
        def work(client: POP3Client) -> list[object]:
            numbers = sorted(client.list())
            held = [r.sink for r in client.retr_many(numbers, lambda _n: io.BytesIO())]
            client.dele_many(numbers)
            return held

        return _timed(lambda: self._connect(Transcript("pochta.pop3")), work, expected,
                      "the client retrieved")

    def fresh_store(self) -> Store:
        self.runs += 1
        data_dir = self.plan.workdir / f"store-{self.user}-{self.runs}"
        store = Store(data_dir)
        store.mailbox(self.account)  # an account that exists, with an empty mailbox
        return store

    def pochta_fetch(self, store: Store, *, delete: bool, expected_new: int) -> float:
        """The web app's fetch job, start to end: seconds."""
        request = FetchRequest(
            account=self.account, connect=self._connect, delete=delete,
            max_message_bytes=MAX_MESSAGE_BYTES, describe=str,
        )
        started = time.perf_counter()
        job_id, _created = store.start_job(self.account)
        run_job(store, job_id, request)
        elapsed = time.perf_counter() - started
        job = store.get_job(self.account, job_id)
        if job is None or job.state != "done" or job.error or job.new != expected_new:
            raise AssertionError(f"Pochta's fetch did not do what it should: {job}")
        return elapsed


def _timed(
    connect: Callable[[], Any], work: Callable[[Any], Sized], expected: int, what: str
) -> float:
    """Seconds to connect and log in, do `work`, and QUIT; `work` returns what it got,
    which must be `expected` many."""
    started = time.perf_counter()
    client = connect()
    got = len(work(client))
    client.quit()
    elapsed = time.perf_counter() - started
    if got != expected:
        raise AssertionError(f"{what} {got} messages, not {expected}")
    return elapsed


def _drop(store: Store) -> None:
    store.close()
    shutil.rmtree(store.data_dir, ignore_errors=True)


def download_then_delete(
    servers: RealServers, plan: Plan, case: str, what: str, messages: list[bytes], *, tls: bool
) -> Row:
    """Cases 1 and 2: an empty store, a full mailbox, download-then-delete."""
    bench = Pop3Bench(servers, plan, "fetch", tls=tls)
    n = len(messages)

    def reference() -> float:
        bench.reseed(messages)
        return bench.poplib_retrieve(n)

    def pochta() -> float:
        bench.reseed(messages)
        store = bench.fresh_store()
        try:
            elapsed = bench.pochta_fetch(store, delete=True, expected_new=n)
            if servers.count(bench.user) != 0:
                raise AssertionError("the fetch left mail on the server")
            stored = store.mailbox(bench.account).count()
            if stored != n:
                raise AssertionError(f"the store holds {stored} messages, not {n}")
            return elapsed
        finally:
            _drop(store)

    def wire() -> float:
        bench.reseed(messages)
        return bench.wire_only(n)

    progress(f"case {case}: {what}")
    theirs, ours = interleaved(plan.repeat, reference, pochta, label=f"case {case}")
    wire_only = statistics.median(wire() for _ in range(plan.repeat))
    size = sum(len(m) for m in messages)
    return Row(
        case=case, what=what, reference="poplib RETR into memory + DELE",
        reference_samples=theirs, pochta_samples=ours, bar=1.0, aim=0.6,
        extra={"MB": f"{size / 1e6:.1f}",
               "Pochta msg/s": f"{n / statistics.median(ours):,.0f}",
               "Pochta's POP3 client alone": f"{wire_only:.3f} s "
               f"({wire_only / statistics.median(theirs):.2f}x)"},
    )


def nothing_new(servers: RealServers, plan: Plan, corpus: Corpus) -> Row:
    """Case 3: everything already stored, keep-on-server; against a bare UIDL."""
    n = plan.kept_messages
    what = f"nothing new: {n:,} stored, keep on server (TLS)"
    progress(f"case 3: {what}")
    bench = Pop3Bench(servers, plan, "keep", tls=True)
    progress(f"  seeding {n:,} messages into the server and the store ...")
    bench.reseed(list(corpus.messages(n, first=500_000)))
    store = bench.fresh_store()
    try:
        bench.pochta_fetch(store, delete=False, expected_new=n)
        theirs, ours = interleaved(
            plan.repeat,
            lambda: bench.poplib_uidl(n),
            lambda: bench.pochta_fetch(store, delete=False, expected_new=0),
            label="case 3",
        )
    finally:
        _drop(store)
        servers.clear(bench.user)
    return Row(
        case="3", what=what, reference="poplib login + UIDL + QUIT",
        reference_samples=theirs, pochta_samples=ours, bar=2.0,
    )


def run(
    servers: RealServers, plan: Plan, corpus: Corpus, wanted: Callable[[str], bool]
) -> list[Row]:
    rows = []
    n = plan.small_messages
    if wanted("1") or wanted("2"):
        progress(f"building {n:,} messages of 4 KB ...")
        small = list(corpus.messages(n))
        if wanted("1"):
            rows.append(download_then_delete(
                servers, plan, "1", f"download-then-delete {n:,} x 4 KB (plain)", small,
                tls=False))
        if wanted("2"):
            rows.append(download_then_delete(
                servers, plan, "2a", f"download-then-delete {n:,} x 4 KB (TLS)", small,
                tls=True))
    if wanted("2"):
        k = plan.big_messages
        progress(f"building {k} messages of 1 MB ...")
        big = list(corpus.messages(k, first=900_000, size=1_000_000, attachment=700_000))
        rows.append(download_then_delete(
            servers, plan, "2b", f"download-then-delete {k} x 1 MB (TLS)", big, tls=True))
    if wanted("3"):
        rows.append(nothing_new(servers, plan, corpus))
    return rows

