"""Moving raw messages in and out of BLOBs in chunks, never whole in memory.

A big message arrives as a file: the row is inserted with a `zeroblob` of its size and the
file is copied into it through an incremental BLOB handle, one chunk at a time. Reading it
back for a download works the same way in reverse, through `BlobReader`, a read-only
file object that holds its own connection (and so one read snapshot) until closed.
"""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Callable
from typing import BinaryIO

CHUNK = 1024 * 1024


def copy_into_blob(
    conn: sqlite3.Connection, table: str, column: str, rowid: int, source: BinaryIO, size: int
) -> None:
    """Fill a `zeroblob(size)` cell from `source`, which must hold exactly `size` bytes."""
    copied = 0
    with conn.blobopen(table, column, rowid) as blob:
        while copied < size:
            chunk = source.read(min(CHUNK, size - copied))
            if not chunk:
                raise ValueError(f"raw message ended after {copied} of {size} bytes")
            blob.write(chunk)
            copied += len(chunk)
    if source.read(1):
        raise ValueError(f"raw message is longer than its stated size ({size} bytes)")


class BlobReader(io.RawIOBase):
    """A read-only, seekable file over one BLOB; closing it releases its connection."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        blob: sqlite3.Blob,
        release: Callable[[sqlite3.Connection], None],
    ) -> None:
        super().__init__()
        self._conn: sqlite3.Connection | None = conn
        self._blob: sqlite3.Blob | None = blob
        self._release = release
        self.size = len(blob)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._open_blob().read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        return self._open_blob().read(size if size is not None and size >= 0 else -1)

    def readall(self) -> bytes:
        return self.read(-1)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        blob = self._open_blob()
        blob.seek(offset, whence)
        return blob.tell()

    def tell(self) -> int:
        return self._open_blob().tell()

    def close(self) -> None:
        if self._blob is not None:
            self._blob.close()
            self._blob = None
        if self._conn is not None:
            conn, self._conn = self._conn, None
            self._release(conn)
        super().close()

    def _open_blob(self) -> sqlite3.Blob:
        if self._blob is None:
            raise ValueError("I/O operation on a closed raw message")
        return self._blob
