"""Turning mail bytes into text whatever charset they claim, without ever raising.

Mail arrives labelled with charsets that are right (UTF-8, KOI8-R, windows-1251), wrong
(UTF-8 labelled us-ascii), unknown to Python (x-unknown) or absurd (base64, undefined). Every
body and header goes through `decode_bytes`, which tries the label, then UTF-8, then the label
again with replacement characters, then windows-1252, which always succeeds.
"""

from __future__ import annotations

import codecs

FALLBACK = "cp1252"

# Codec names Python accepts that are not charsets a mail could honestly mean; decoding with
# them would interpret backslashes or always fail, so a label naming them is ignored.
_NOT_MAIL_CHARSETS = frozenset(
    {"undefined", "unicode-escape", "raw-unicode-escape", "idna", "punycode", "mbcs", "oem",
     "charmap"}
)


def lookup_charset(label: str | None) -> str | None:
    """Python's codec name for a charset label, or None when it is unknown or not text."""
    if not label:
        return None
    name = label.strip().strip('"').split("*", 1)[0].lower()
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError, TypeError):
        return None
    if not getattr(info, "_is_text_encoding", True):
        return None
    if info.name.replace("_", "-") in _NOT_MAIL_CHARSETS:
        return None
    return info.name


def decode_bytes(data: bytes, label: str | None, *, truncated: bool = False) -> str:
    """Decode `data` declared as `label`; `truncated` says it may end inside a character."""
    declared = lookup_charset(label)
    for codec in (declared, "utf-8"):
        if codec is None:
            continue
        try:
            return _decode(data, codec, "strict", truncated)
        except (UnicodeError, ValueError):
            continue
    if declared is not None:
        try:
            return _decode(data, declared, "replace", truncated)
        except (UnicodeError, ValueError):
            pass
    return _decode(data, FALLBACK, "replace", truncated)


def _decode(data: bytes, codec: str, errors: str, truncated: bool) -> str:
    if not truncated:
        return data.decode(codec, errors)
    return codecs.getincrementaldecoder(codec)(errors).decode(data, final=False)


def repair_8bit(value: str, hint: str | None = None) -> str:
    """Undo the parser's surrogateescape on raw 8-bit header text (RFC 6532 or careless
    mailers): the bytes are read as UTF-8, else as `hint` (the body's charset), else cp1252."""
    if value.isascii():
        return value
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeError:
        return value.encode("utf-8", "replace").decode("utf-8", "replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return decode_bytes(raw, hint)
