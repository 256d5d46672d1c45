"""A consistent backup of Pochta's data dir while Pochta keeps running, as a tar on stdout.

Run it inside the container (the image has Python but no sqlite3 command):

    docker compose exec -T pochta python - < deploy/backup.py > pochta-$(date +%F).tar

Each SQLite database (pochta.sqlite3, accounts/*.sqlite3) is copied with SQLite's online
backup API, so the copy is one consistent snapshot even while users fetch mail; the other
files (secret_key, drafts/) are copied as they are. The spool of messages in transit and
the databases' -wal/-shm files are left out: the copies are complete without them.
Restore by unpacking the tar into an empty data volume while Pochta is stopped.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import tarfile
import tempfile
from pathlib import Path

STORE_MARKERS = ("pochta.sqlite3", "accounts", "secret_key")
LEFT_OUT_DIRS = {"spool"}
LEFT_OUT_SUFFIXES = ("-wal", "-shm", "-journal")


def snapshot(database: Path, copy: Path) -> None:
    """Copy one database with SQLite's backup API: a read transaction holds it still."""
    source = sqlite3.connect(database)
    try:
        target = sqlite3.connect(copy)
        try:
            source.backup(target)
        finally:
            target.close()
    finally:
        source.close()


def wanted(relative: Path) -> bool:
    return relative.parts[0] not in LEFT_OUT_DIRS and not relative.name.endswith(
        LEFT_OUT_SUFFIXES
    )


def write_backup(data_dir: Path, out: tarfile.TarFile, scratch: Path) -> None:
    for path in sorted(data_dir.rglob("*")):
        relative = path.relative_to(data_dir)
        if not wanted(relative):
            continue
        if path.is_dir():
            out.add(path, arcname=str(relative), recursive=False)
        elif path.suffix == ".sqlite3":
            copy = scratch / "copy.sqlite3"
            snapshot(path, copy)
            info = out.gettarinfo(copy, arcname=str(relative))
            info.mode = path.stat().st_mode & 0o777
            with copy.open("rb") as data:
                out.addfile(info, data)
            copy.unlink()
        elif path.is_file():
            out.add(path, arcname=str(relative))


def main(argv: list[str]) -> int:
    data_dir = Path(argv[1] if len(argv) > 1 else os.environ.get("POCHTA_DATA_DIR", "/data"))
    if not any((data_dir / name).exists() for name in STORE_MARKERS):
        print(f"backup: {data_dir} holds no Pochta data ({', '.join(STORE_MARKERS)})",
              file=sys.stderr)
        return 1
    if sys.stdout.isatty():
        print("backup: the tar goes to stdout; redirect it to a file", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as scratch, tarfile.open(
        fileobj=sys.stdout.buffer, mode="w|"
    ) as out:
        write_backup(data_dir, out, Path(scratch))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
