"""Small guards shared by views: where a redirect may go."""

from __future__ import annotations

from urllib.parse import urlsplit


def local_target(target: str | None, default: str) -> str:
    """`target` if it is a path on this site, else `default`.

    `?next=` must never send a user elsewhere: absolute URLs, scheme-relative `//host`,
    backslash tricks browsers read as `//`, and control characters are all refused.
    """
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    if any(ord(ch) < 32 or ch == "\\" for ch in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target
