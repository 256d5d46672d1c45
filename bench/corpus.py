"""Realistic, reproducible mail for the benchmark, built with the standard library's `email`.

Words come from the fixed list in words.txt (English and Russian, most frequent first) with a
Zipf distribution, in lines of a dozen words and short paragraphs, under a Subject, From, To,
Date and Message-ID. Bodies rotate through 8bit, quoted-printable and base64, as real mail
does. The same seed gives the same bytes on every machine.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from io import BytesIO
from pathlib import Path

from app.fetch.policy import Downloaded
from app.fetch.store_destination import new_message
from app.store import NewMessage

WORDS = tuple(
    line for line in (Path(__file__).with_name("words.txt").read_text("utf-8").splitlines())
    if line and not line.startswith("#")
)
RARE_WORD = "zanzibarite"  # not in the word list: the search target, put in 1% of bodies
ENCODINGS = ("8bit", "quoted-printable", "base64")
HEADER_ALLOWANCE = 420  # the header section and MIME framing of a text message, roughly
START = datetime(2016, 1, 1, tzinfo=UTC)
SENDERS = (
    ("Ivan Petrov", "ivan"), ("Мария Соколова", "maria"), ("Olga Smirnova", "olga"),
    ("Bob Lee", "bob"), ("Анна Кузнецова", "anna"), ("Chen Wei", "chen"),
    ("Дмитрий Орлов", "dmitry"), ("Lab Robot", "robot"),
)


def _encoded_cost(word: str, encoding: str) -> float:
    """Bytes one word (and its space) adds to the body once encoded."""
    raw = len(word.encode("utf-8")) + 1
    if encoding == "base64":
        return raw * 4 / 3 * 78 / 76
    if encoding == "quoted-printable":
        return raw + 2 * (raw - len(word) - 1 + sum(1 for c in word if not c.isascii()))
    return raw


class Corpus:
    """A stream of messages; `message(i)` depends only on the seed and i."""

    def __init__(self, seed: int = 1):
        self.seed = seed
        self._weights = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(WORDS))))

    def _rng(self, i: int) -> random.Random:
        return random.Random(self.seed * 1_000_003 + i)  # noqa: S311 (test data, not secrets)

    def words(self, rng: random.Random, k: int) -> list[str]:
        return rng.choices(WORDS, cum_weights=self._weights, k=k)

    def text(self, rng: random.Random, budget: float, encoding: str, rare: bool = False) -> str:
        """Lines of 8-14 words in paragraphs, until the encoded body would pass `budget`."""
        lines: list[str] = []
        used = 0.0
        pool = iter(())
        while used < budget:
            line: list[str] = []
            for _ in range(rng.randint(8, 14)):
                word = next(pool, None)
                if word is None:
                    pool = iter(self.words(rng, 256))
                    word = next(pool)
                cost = _encoded_cost(word, encoding)
                if used + cost > budget:
                    break
                line.append(word)
                used += cost
            if not line:
                break
            lines.append(" ".join(line))
            if rng.random() < 0.2:
                lines.append("")
        if rare and lines:
            where = rng.randrange(len(lines))
            lines[where] = f"{lines[where]} {RARE_WORD}".strip()
        if lines:
            lines[0] = lines[0][:1].upper() + lines[0][1:]
        return "\n".join(lines) + "\n"

    def message(
        self,
        i: int,
        *,
        to: str = "alice@pochta.test",
        size: int = 4096,
        rare: bool | None = None,
        attachment: int = 0,
    ) -> bytes:
        """Message number i, about `size` bytes; `attachment` bytes of binary data attached
        (base64, so a third bigger); `rare` puts RARE_WORD in the body (default: 1 in 100)."""
        rng = self._rng(i)
        encoding = ENCODINGS[i % len(ENCODINGS)]
        name, local = SENDERS[rng.randrange(len(SENDERS))]
        message = EmailMessage(policy=SMTP)
        message["From"] = f"{name} <{local}{rng.randrange(40)}@example.org>"
        message["To"] = to
        message["Subject"] = " ".join(self.words(rng, rng.randint(3, 8))).capitalize()
        message["Date"] = format_datetime(START + timedelta(seconds=i * 3151 + rng.randrange(3000)))
        message["Message-ID"] = f"<{i}.{self.seed}@bench.pochta.test>"
        budget = max(200, size - HEADER_ALLOWANCE - attachment * 4 / 3 * 78 / 76)
        rare = (i % 100 == 7) if rare is None else rare
        message.set_content(self.text(rng, budget, encoding, rare), cte=encoding)
        if attachment:
            message.add_attachment(
                rng.randbytes(attachment), maintype="application", subtype="octet-stream",
                filename=f"data-{i}.bin",
            )
        return message.as_bytes()

    def messages(self, n: int, first: int = 0, **options: object) -> Iterator[bytes]:
        for i in range(first, first + n):
            yield self.message(i, **options)  # type: ignore[arg-type]


def stored(corpus: Corpus, first: int, n: int, to: str) -> list[NewMessage]:
    """Messages first..first+n as the fetch would hand them to the store (indexed by the same
    `new_message`), for seeding a store directly. A process pool's unit of work."""
    records = []
    for i in range(first, first + n):
        raw = corpus.message(i, to=to)
        records.append(new_message(Downloaded(i + 1, f"bench-{i}", len(raw), BytesIO(raw))))
    return records
