"""Looking into the running gunicorn from outside: its workers' memory, which worker holds a
connection, killing it; and a faster "stale job" clock for the workers.

Everything here reads /proc (Linux only, as the real servers are) and acts on the workers of
one `LiveApp` by pid, never by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from tests.support.liveapp import LiveApp

# How long a killed worker's fetch job stays "running" in the apps these tests start
# (POCHTA_FETCH_STALE_SECONDS; 30 s by default): the fault tests need not wait half a minute
# per kill.
STALE_SECONDS = 3.0


def fast_stale_env(stale: float = STALE_SECONDS) -> dict[str, str]:
    """Environment for `start_live_app` whose workers see a silent fetch job as failed after
    `stale` seconds."""
    return {"POCHTA_FETCH_STALE_SECONDS": f"{stale:g}"}


# -- memory -----------------------------------------------------------------------------------


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


class PeakMemory:
    """How far each worker's peak RSS (VmHWM) rose above its RSS at the start of the block.

    The peak is reset at the start (`/proc/<pid>/clear_refs`, "5"), so an earlier test's
    peak does not hide this one's.
    """

    def __init__(self, app: LiveApp):
        self.app = app
        self.start_rss: dict[int, int] = {}
        self.growth_kib: dict[int, int] = {}

    def __enter__(self) -> PeakMemory:
        for pid in self.app.worker_pids():
            with contextlib.suppress(OSError):
                Path(f"/proc/{pid}/clear_refs").write_text("5")
            self.start_rss[pid] = _status_kib(pid, "VmRSS")
        assert self.start_rss, "no gunicorn workers to measure"
        return self

    def __exit__(self, *exc_info: object) -> None:
        for pid, rss in self.start_rss.items():
            with contextlib.suppress(OSError):
                self.growth_kib[pid] = _status_kib(pid, "VmHWM") - rss

    @property
    def max_growth_kib(self) -> int:
        return max(self.growth_kib.values(), default=0)

    @property
    def max_growth_mib(self) -> float:
        return self.max_growth_kib / 1024


# -- which worker, and killing it --------------------------------------------------------------


def _socket_inodes(local_port: int) -> set[str]:
    """Inodes of the loopback TCP sockets whose local port is `local_port`."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                parts = line.split()
                if int(parts[1].rsplit(":", 1)[1], 16) == local_port:
                    inodes.add(parts[9])
    inodes.discard("0")
    return inodes


def worker_holding(app: LiveApp, local_port: int) -> int | None:
    """The worker that owns the outgoing connection from `local_port` (say, to a mail
    server through a proxy that saw this peer port), or None."""
    wanted = {f"socket:[{inode}]" for inode in _socket_inodes(local_port)}
    for pid in app.worker_pids():
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in wanted:
                        return pid
    return None


def kill_worker(app: LiveApp, pid: int, timeout: float = 20.0) -> None:
    """SIGKILL one worker; return once gunicorn runs its full number of workers again."""
    assert pid in app.worker_pids(), f"{pid} is not a worker of this gunicorn"
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while True:
        pids = app.worker_pids()
        if pid not in pids and len(pids) >= app.workers:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"gunicorn did not replace worker {pid}:\n{app.log_tail()}")
        time.sleep(0.05)
