"""How the store holds up at scale: seed one big mailbox, time the queries the inbox makes.

Seeds N messages (default 100,000) with ~4 KB bodies through the public `add_messages` API
in big batches, then times the first page, a deep page, a search for a word found in 1% of
the bodies, the counts and prev/next navigation, and prints the store size per message.

    .venv/bin/python bench/store_bench.py [--messages N] [--batch B] [--dir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import itertools
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from app.store import AccountKey, Mailbox, NewMessage, Store

RARE_WORD = "zanzibarite"  # in 1% of the bodies
BODY_WORDS = 365  # about 4 KB of UTF-8 (a third of the words are Cyrillic)
LATIN = "abcdefghijklmnopqrstuvwxyz"
CYRILLIC = "абвгдежзийклмнопрстуфхцчшщыэюя"
WORD_LENGTHS = (2, 3, 4, 5, 5, 6, 6, 7, 7, 8, 9, 10, 12)
SEED = 1
ACCOUNT = AccountKey("pop.bench.example", 995, "bench")


def vocabulary(seed: int, size: int = 20_000) -> list[str]:
    """Random Latin (70%) and Cyrillic words, most frequent first (frequency unrelated to
    spelling, so frequent words do not all share a prefix)."""
    rng = random.Random(seed)  # noqa: S311 (reproducible test data, not secrets)
    words = set()
    while len(words) < size:
        alphabet = LATIN if rng.random() < 0.7 else CYRILLIC
        words.add("".join(rng.choices(alphabet, k=rng.choice(WORD_LENGTHS))))
    ranked = sorted(words)
    rng.shuffle(ranked)
    return ranked


def messages(n: int, seed: int = SEED) -> Iterator[NewMessage]:
    """N synthetic messages: Zipf-distributed words, ~4 KB bodies, dates over ten years.

    Bodies are random windows of one long pre-drawn word stream, which keeps seeding
    bound by the store rather than by the random number generator.
    """
    words = vocabulary(seed)
    rng = random.Random(seed + 1)  # noqa: S311 (reproducible test data, not secrets)
    cumulative = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(words))))
    stream = rng.choices(words, cum_weights=cumulative, k=1_000_000)
    start = datetime(2016, 1, 1, tzinfo=UTC)
    for i in range(n):
        at = rng.randrange(len(stream) - BODY_WORDS)
        body_words = stream[at : at + BODY_WORDS]
        if i % 100 == 0:
            body_words[rng.randrange(BODY_WORDS)] = RARE_WORD
        body = " ".join(body_words)
        subject = " ".join(rng.choices(words, cum_weights=cumulative, k=6))
        date = None if i % 50 == 0 else start + timedelta(seconds=rng.randrange(315_360_000))
        sender = f"user{rng.randrange(500)}@example.org"
        raw = (
            f"From: User {i % 500} <{sender}>\r\nTo: bench@example.org\r\n"
            f"Subject: {subject}\r\nMessage-ID: <{i}@bench>\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
        ).encode()
        yield NewMessage(
            uid=f"uid-{i}",
            raw=raw,
            size=len(raw),
            subject=subject,
            from_name=f"User {i % 500}",
            from_addr=sender,
            to="bench@example.org",
            cc="",
            date=date,
            message_id=f"<{i}@bench>",
            has_attachments=i % 10 == 0,
            body_text=body,
            snippet=body[:160],
        )


def seed(mailbox: Mailbox, n: int, batch_size: int) -> float:
    """Add n messages in batches; return messages per second."""
    began = time.perf_counter()
    batch: list[NewMessage] = []
    for message in messages(n):
        batch.append(message)
        if len(batch) == batch_size:
            mailbox.add_messages(batch)
            batch = []
    if batch:
        mailbox.add_messages(batch)
    return n / (time.perf_counter() - began)


def timed(action: Callable[[], object], repeat: int = 20) -> tuple[float, float]:
    """(first call, median of the rest) in milliseconds."""
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        action()
        samples.append((time.perf_counter() - began) * 1000)
    return samples[0], statistics.median(samples[1:])


def store_bytes(data_dir: Path) -> int:
    return sum(p.stat().st_size for p in data_dir.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--dir", type=Path, help="data dir to use (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the data dir afterwards")
    args = parser.parse_args(argv)
    data_dir = args.dir or Path(tempfile.mkdtemp(prefix="pochta-bench-"))
    try:
        with Store(data_dir) as store:
            run(store, data_dir, args.messages, args.batch)
    finally:
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
        else:
            print(f"kept {data_dir}")
    return 0


def run(store: Store, data_dir: Path, n: int, batch_size: int) -> None:
    mailbox = store.mailbox(ACCOUNT)
    print(f"seeding {n:,} messages in batches of {batch_size:,} ...", flush=True)
    rate = seed(mailbox, n, batch_size)
    print(f"seeding: {rate:,.0f} messages/s")
    last = max(1, (n + 49) // 50)
    deep = min(1000, last)
    middle = mailbox.page(deep).items[0].id
    top, second = [w for w in vocabulary(SEED) if len(w) >= 5][:2]  # in nearly every body
    checks: list[tuple[str, Callable[[], object]]] = [
        ("first page (50)", lambda: mailbox.page(1)),
        (f"page {deep} (offset {(deep - 1) * 50:,})", lambda: mailbox.page(deep)),
        (f"last page ({last})", lambda: mailbox.page(last)),
        (f"search '{RARE_WORD}' (1%), page 1", lambda: mailbox.page(1, query=RARE_WORD)),
        (f"search '{RARE_WORD}', page 20", lambda: mailbox.page(20, query=RARE_WORD)),
        ("search prefix 'zan'", lambda: mailbox.page(1, query="zan")),
        (f"search '{top}' (in ~all), page 1", lambda: mailbox.page(1, query=top)),
        (f"search '{top} {second}'", lambda: mailbox.page(1, query=f"{top} {second}")),
        (f"search prefix '{top[:3]}'", lambda: mailbox.page(1, query=top[:3])),
        ("count", mailbox.count),
        ("unread count", mailbox.unread_count),
        ("get one", lambda: mailbox.get(middle)),
        ("neighbours", lambda: mailbox.neighbours(middle)),
        ("raw one", lambda: mailbox.raw(middle)),
    ]
    print(f"{'query':40} {'first ms':>9} {'median ms':>10}")
    for label, action in checks:
        first, median = timed(action)
        print(f"{label:40} {first:9.2f} {median:10.2f}")
    hits = mailbox.page(1, query=RARE_WORD).total
    print(f"search hits for '{RARE_WORD}': {hits:,}")
    store.close()  # checkpoints the WAL into the database file before measuring
    size = store_bytes(data_dir)
    print(f"store size: {size / 1e6:,.1f} MB, {size / n:,.0f} bytes per message")


if __name__ == "__main__":
    sys.exit(main())
