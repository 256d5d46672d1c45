"""Server replies as small immutable values, so callers compare codes instead of strings."""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple


class ReplyClass(IntEnum):
    """The first digit of an SMTP reply code (RFC 5321, 4.2.1)."""

    POSITIVE_PRELIMINARY = 1
    POSITIVE_COMPLETION = 2
    POSITIVE_INTERMEDIATE = 3
    TRANSIENT_NEGATIVE = 4
    PERMANENT_NEGATIVE = 5


class SMTPReply(NamedTuple):
    """One (possibly multiline) SMTP reply: the code and each line's text without it."""

    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def reply_class(self) -> ReplyClass:
        return ReplyClass(self.code // 100)

    @property
    def ok(self) -> bool:
        """2xx or 3xx: the command went through (3xx asks for more)."""
        return self.code // 100 in (2, 3)

    def summary(self) -> str:
        return f"{self.code} {' '.join(line for line in self.lines if line)}".rstrip()


class POP3Response(NamedTuple):
    """The status line of a POP3 response: +OK or -ERR and the text after it."""

    ok: bool
    text: str

    @property
    def code(self) -> None:
        """POP3 has no numeric codes; present so both reply kinds read alike."""
        return None

    def summary(self) -> str:
        return f"{'+OK' if self.ok else '-ERR'} {self.text}".rstrip()


Reply = SMTPReply | POP3Response
