"""Compiling the interface's message catalogues: each translations/<language>/LC_MESSAGES/
messages.po into the messages.mo that Flask-Babel reads.

The build does it (`setup.py` runs this file by path, before the package's dependencies are
installed, so it needs only Babel and the standard library). An app started from a source
checkout does it again for a catalogue whose .mo is missing or older than its .po, so an
edited translation shows without reinstalling; that is a development fallback only, since an
installed wheel carries the .mo files and no .po.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

DOMAIN = "messages"


def catalogues(directory: Path) -> list[Path]:
    """The .po file of every language in `directory`."""
    return sorted(directory.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))


def compile_catalogue(po: Path) -> Path:
    """Write the .mo beside `po`, atomically (workers starting together may race)."""
    with po.open("rb") as source:
        catalog = read_po(source, locale=po.parents[1].name, domain=DOMAIN)
    mo = po.with_suffix(".mo")
    handle, temporary = tempfile.mkstemp(dir=po.parent, prefix=f".{DOMAIN}-", suffix=".mo")
    try:
        with os.fdopen(handle, "wb") as target:
            write_mo(target, catalog)
        os.chmod(temporary, 0o644)  # noqa: PTH101 - readable by the user the app runs as
        os.replace(temporary, mo)  # noqa: PTH105
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return mo


def compile_all(directory: Path) -> list[Path]:
    """Compile every catalogue (the build step)."""
    return [compile_catalogue(po) for po in catalogues(directory)]


def compile_stale(directory: Path) -> list[Path]:
    """Compile the catalogues whose .mo is missing or older than the .po (the fallback)."""
    compiled = []
    for po in catalogues(directory):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            compiled.append(compile_catalogue(po))
    return compiled
