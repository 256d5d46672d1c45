"""Speaking HTTP to Pochta as a browser would, and loading it as a crowd would.

`logged_in` gives a `WebUser` (the reliability tests' cookie-jar browser) past the real
login form; `KeepAlive` is one connection reused for many requests; `wrk` runs Debian's
load generator (with `python_load` as the fallback when it is missing) and reads its
latency distribution.
"""

from __future__ import annotations

import http.client
import re
import shutil
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.servers import address, password
from tests.reliability.client import WebUser
from tests.support.realservers import RealServers

MESSAGE_LINK = re.compile(r'href="/message/([^/"?]+)')


def login_fields(servers: RealServers, name: str, *, keep: bool = True) -> dict[str, object]:
    """The login form as a browser posts it, for the run's servers (host as the app offers
    it: "localhost"). An unticked checkbox sends only the hidden "0"."""
    return {
        "email": address(name),
        "password": password(name),
        "username": "",
        "smtp_host": "localhost",
        "smtp_port": str(servers.smtp_starttls_port),
        "smtp_security": "starttls",
        "pop3_host": "localhost",
        "pop3_port": str(servers.pop3_tls_port),
        "pop3_security": "tls",
        "keep_on_server": ["y", "0"] if keep else ["0"],
    }


def message_ids(html: str) -> list[str]:
    return list(dict.fromkeys(MESSAGE_LINK.findall(html)))


def logged_in(base_url: str, servers: RealServers, name: str, *, keep: bool = True) -> WebUser:
    """A user at a browser who has logged in as `name` through the real form."""
    user = WebUser(base_url, timeout=120.0)
    reply = user.log_in(login_fields(servers, name, keep=keep))
    if reply.status not in (302, 303):
        raise AssertionError(f"login as {name} answered {reply.status}: {reply.text[:300]}")
    return user


class KeepAlive:
    """One persistent HTTP/1.1 connection carrying a session cookie."""

    def __init__(self, host: str, port: int, cookie: str, timeout: float = 60.0):
        self.connection = http.client.HTTPConnection(host, port, timeout=timeout)
        self.headers = {"Cookie": cookie} if cookie else {}

    def get(self, path: str) -> tuple[int, bytes, float]:
        """(status, body, seconds); reconnects once if the server closed the connection."""
        started = time.perf_counter()
        for attempt in (1, 2):
            try:
                self.connection.request("GET", path, headers=self.headers)
                response = self.connection.getresponse()
                body = response.read()
                return response.status, body, time.perf_counter() - started
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.connection.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.connection.close()


# -- load -------------------------------------------------------------------------------------


@dataclass
class Load:
    """What a load generator saw on one URL: requests per second, latency percentiles."""

    tool: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


_WRK_LATENCY = re.compile(r"^\s*(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_WRK_RATE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_WRK_ERRORS = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
# "Socket errors: connect 0, read 2, write 0, timeout 1": every kind counts.
_WRK_SOCKET_ERRORS = re.compile(r"(?:connect|read|write|timeout) (\d+)")
_SCALE = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def wrk(url: str, cookie: str, seconds: int, connections: int = 8, threads: int = 2) -> Load:
    """`wrk -t2 -c8 -dNs --latency -H "Cookie: ..." URL`, parsed."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
               "--timeout", "30s", "-H", f"Cookie: {cookie}", url]
    out = subprocess.run(command, capture_output=True, text=True, check=True,
                         timeout=seconds + 60).stdout
    latency = {m.group(1): float(m.group(2)) * _SCALE[m.group(3)]
               for m in _WRK_LATENCY.finditer(out)}
    rate = _WRK_RATE.search(out)
    if rate is None or set(latency) != {"50", "99"}:
        raise AssertionError(f"could not read wrk's output:\n{out}")
    errors = sum(int(n) for n in _WRK_ERRORS.findall(out))
    for line in out.splitlines():
        if line.strip().startswith("Socket errors:"):
            errors += sum(int(n) for n in _WRK_SOCKET_ERRORS.findall(line))
    return Load("wrk", float(rate.group(1)), latency["50"], latency["99"], errors)


def python_load(host: str, port: int, path: str, cookie: str, seconds: float,
                connections: int = 8) -> Load:
    """The fallback without wrk: `connections` threads, each a keep-alive connection."""
    return crowd(host, port, [cookie] * connections, lambda _user, _k: path, seconds,
                 tool="python threads")


def crowd(host: str, port: int, cookies: list[str], next_path: Callable[[int, int], str],
          seconds: float, *, tool: str = "python threads") -> Load:
    """One thread per cookie, each looping `next_path(user, k)` over its own keep-alive
    connection for `seconds`; a status that is not `ok`, or an exception, is an error."""
    latencies: list[list[float]] = [[] for _ in cookies]
    errors = [0] * len(cookies)
    start = threading.Barrier(len(cookies) + 1)
    stop_at: list[float] = []

    def user(index: int) -> None:
        client = KeepAlive(host, port, cookies[index])
        start.wait()
        k = 0
        try:
            while time.perf_counter() < stop_at[0]:
                try:
                    status, _body, elapsed = client.get(next_path(index, k))
                except Exception:
                    errors[index] += 1
                    client.close()
                    client = KeepAlive(host, port, cookies[index])
                    continue
                latencies[index].append(elapsed)
                if status != 200:
                    errors[index] += 1
                k += 1
        finally:
            client.close()

    threads = [threading.Thread(target=user, args=(i,), daemon=True) for i in range(len(cookies))]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    stop_at.append(began + seconds)
    start.wait()
    for thread in threads:
        thread.join(seconds + 120)
    took = time.perf_counter() - began
    samples = sorted(x for per_user in latencies for x in per_user)
    if not samples:
        raise AssertionError("the load generator completed no request")
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return Load(tool, len(samples) / took, statistics.median(samples) * 1000, p99 * 1000,
                sum(errors))
