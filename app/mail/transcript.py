"""The redacted protocol log, the descendant of the lab's `smtp_3.log`.

Every line that crosses the wire is recorded with a timestamp and `C:` (client) or `S:`
(server), through the standard `logging` module and in memory for the web UI. The clients
decide what is secret (they know which line carries a password or an AUTH payload) and hand
the transcript an already-redacted text; message data is never recorded, only its size.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass

REDACTED = "***"

CLIENT = "C"
SERVER = "S"
NOTE = "*"


@dataclass(frozen=True, slots=True)
class Entry:
    """One recorded line: when, who spoke (C, S, or * for a note of ours), and what."""

    time: float
    direction: str
    text: str

    def format(self) -> str:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.time))
        millis = int((self.time % 1) * 1000)
        return f"{stamp}.{millis:03d} {self.direction}: {self.text}"


def data_summary(size: int) -> str:
    """What stands in the log for message data."""
    return f"<message data, {size} bytes>"


class Transcript:
    """Collects a session's dialogue; keeps at most `limit` entries in memory.

    Long listings (UIDL of ten thousand messages) would drown the log and the memory, so
    each multiline response is recorded up to `listing_lines` lines and then summarized.
    """

    def __init__(self, logger_name: str, *, limit: int = 2000, listing_lines: int = 20):
        self.logger = logging.getLogger(logger_name)
        self.entries: deque[Entry] = deque(maxlen=limit)
        self.listing_lines = listing_lines
        self.dropped = 0

    def _record(self, direction: str, text: str) -> None:
        if len(self.entries) == self.entries.maxlen:
            self.dropped += 1
        entry = Entry(time.time(), direction, text)
        self.entries.append(entry)
        if self.logger.isEnabledFor(logging.DEBUG):
            self.logger.debug("%s: %s", direction, text)

    def client(self, text: str) -> None:
        self._record(CLIENT, text)

    def server(self, text: str) -> None:
        self._record(SERVER, text)

    def note(self, text: str) -> None:
        self._record(NOTE, text)

    def lines(self) -> list[str]:
        """The log as text lines, oldest first."""
        head = [f"({self.dropped} earlier lines not kept)"] if self.dropped else []
        return head + [entry.format() for entry in self.entries]

    def text(self) -> str:
        return "\n".join(self.lines())


def printable(raw: bytes) -> str:
    """A wire line as log text: decoded leniently, control characters made visible, so a
    hostile server cannot forge log lines or terminal escapes."""
    text = raw.decode("utf-8", errors="replace")
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text)


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
