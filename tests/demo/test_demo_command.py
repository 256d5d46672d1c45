"""`pochta demo` as a newcomer runs it: the installed console script in a process of its own.

It must print the URL and the demo login, serve the login page with the demo mail server
filled in, let alice log in and get her seeded mail, answer SMTP and POP3 on the printed
ports with the printed CA, and stop cleanly on Ctrl-C: exit status 0, "Pochta demo stopped.",
no gunicorn process and no listening port left behind. A second run on the same data
directory finds the mail of the first, seeded once.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import os
import poplib
import queue
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from html import unescape
from pathlib import Path

import pytest

POCHTA = Path(sys.executable).with_name("pochta")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
ALICE = ("alice@demo.pochta.test", "alice-demo")
BOB = ("bob@demo.pochta.test", "bob-demo")
SEEDED = {"alice": 6, "bob": 1}  # app/demo/seed.py

BANNER_URL = re.compile(r"Pochta demo is running at (http://\S+/)")
BANNER_SERVERS = re.compile(
    r"SMTP localhost:(\d+) \(STARTTLS\), POP3 localhost:(\d+) \(TLS\), CA (\S+)"
)
CSRF_FIELD = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')

pytestmark = pytest.mark.skipif(not POCHTA.exists(), reason=f"no console script {POCHTA}")


# -- running the command ----------------------------------------------------------------


@dataclass
class Output:
    """Every line the process prints (stdout and stderr together), read by a thread."""

    lines: list[str] = field(default_factory=list)
    fresh: queue.Queue[str | None] = field(default_factory=queue.Queue)

    def read(self, stream) -> None:
        for line in stream:
            self.lines.append(line)
            self.fresh.put(line)
        self.fresh.put(None)

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.fresh.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break  # the process closed its output
            if match := pattern.search(line):
                return match
        raise AssertionError(f"no line matching {pattern.pattern!r}:\n{self.text}")

    @property
    def text(self) -> str:
        return "".join(self.lines)


@dataclass
class Demo:
    process: subprocess.Popen[str]
    output: Output
    url: str
    smtp_port: int
    pop3_port: int
    ca_file: Path
    children: list[int] = field(default_factory=list)  # gunicorn's master and workers

    def stop(self, signum: int, timeout: float = STOP_TIMEOUT) -> int:
        """Signal the `pochta demo` process; its exit status once it has ended."""
        os.kill(self.process.pid, signum)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"pochta demo still running {timeout} s after signal {signum}:\n"
                f"{self.output.text}"
            ) from None

    def survivors(self) -> list[int]:
        """Those of gunicorn's processes still alive."""
        return [pid for pid in self.children if alive(pid)]


def free_ports(n: int) -> list[int]:
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(n)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def clean_environment() -> dict[str, str]:
    """The caller's environment without any POCHTA_* setting: the demo brings its own."""
    return {k: v for k, v in os.environ.items() if not k.startswith("POCHTA_")}


def _proc_stat(pid: int) -> list[str] | None:
    """state, ppid, ... of a live process (None when gone or a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] in ("Z", "X") else fields


def alive(pid: int) -> bool:
    return _proc_stat(pid) is not None


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (gunicorn's master, its workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (stat := _proc_stat(int(entry.name))) is not None:
            children.setdefault(int(stat[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def wait_for_workers(pid: int, timeout: float = 10.0) -> list[int]:
    """gunicorn's master and its two workers (POCHTA_WORKERS defaults to 2)."""
    deadline = time.monotonic() + timeout
    while len(found := descendants(pid)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def pochta_demo(data_dir: Path, web: int, smtp: int, pop3: int, *,
                sigint_ignored: bool = False) -> Iterator[Demo]:
    """Start `pochta demo` and wait for its banner. On the way out (say, a test that failed
    early) whatever is left of it and its gunicorn is killed. `sigint_ignored` starts it the
    way a shell starts a background job: with SIGINT ignored."""
    process = subprocess.Popen(
        [str(POCHTA), "demo", "--port", str(web), "--smtp-port", str(smtp),
         "--pop3-port", str(pop3), "--data-dir", str(data_dir)],
        cwd=data_dir.parent, env=clean_environment(), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, encoding="utf-8",
        preexec_fn=_ignore_sigint if sigint_ignored else None,
    )
    output = Output()
    reader = threading.Thread(target=output.read, args=(process.stdout,), daemon=True)
    reader.start()
    demo = None
    try:
        url = output.wait_for(BANNER_URL, START_TIMEOUT).group(1)
        smtp_port, pop3_port, ca_file = output.wait_for(BANNER_SERVERS, 5).groups()
        demo = Demo(process, output, url, int(smtp_port), int(pop3_port), Path(ca_file),
                    wait_for_workers(process.pid))
        yield demo
    finally:
        leftovers = [process.pid, *(demo.children if demo else descendants(process.pid))]
        for pid in leftovers:
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        process.wait()
        reader.join(5)
        if process.stdout:
            process.stdout.close()


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


# -- talking to it as a browser, a mail client ------------------------------------------


class Browser:
    """urllib with a cookie jar: enough of a browser for forms with a CSRF token."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def get(self, path: str, **headers: str) -> tuple[int, str, str]:
        """(status, final URL, body) after redirects."""
        request = urllib.request.Request(self.base + path.lstrip("/"), headers=headers)
        with self.opener.open(request, timeout=10) as response:
            return response.status, response.url, response.read().decode()

    def post(self, path: str, data: dict[str, str], **headers: str) -> tuple[int, str, str]:
        body = urllib.parse.urlencode(data).encode()
        request = urllib.request.Request(self.base + path.lstrip("/"), data=body,
                                         headers=headers)
        with self.opener.open(request, timeout=20) as response:
            return response.status, response.url, response.read().decode()

    def token(self, path: str) -> str:
        match = CSRF_FIELD.search(self.get(path)[2])
        assert match, f"no csrf_token on {path}"
        return match.group(1)


def field_value(html: str, name: str) -> str:
    tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', html)
    assert tag, f"no input {name}"
    value = re.search(r'value="([^"]*)"', tag.group(0))
    return unescape(value.group(1)) if value else ""


def selected(html: str, name: str) -> str:
    select = re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', html, re.S)
    assert select, f"no select {name}"
    option = re.search(r'<option selected value="([^"]*)"', select.group(1))
    assert option, f"nothing selected in {name}"
    return option.group(1)


def log_in_and_fetch(demo: Demo) -> tuple[Browser, dict]:
    """Log in as alice with what the login page offers, press "Get mail" (JSON), and wait."""
    browser = Browser(demo.url)
    status, _, html = browser.get("/login")
    assert status == 200
    form = {name: field_value(html, name)
            for name in ("csrf_token", "smtp_host", "smtp_port", "pop3_host", "pop3_port")}
    form.update(smtp_security=selected(html, "smtp_security"),
                pop3_security=selected(html, "pop3_security"),
                email=ALICE[0], password=ALICE[1], keep_on_server="y")
    status, url, html = browser.post("/login", form)
    assert (status, urllib.parse.urlsplit(url).path) == (200, "/inbox"), html[:3000]

    token = browser.token("/inbox")
    status, _, body = browser.post("/fetch", {"csrf_token": token},
                                   Accept="application/json")
    assert status == 202, body
    job = json.loads(body)["job"]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        state = json.loads(browser.get(f"/fetch/{job}")[2])
        if state["state"] != "running":
            return browser, state
        time.sleep(0.1)
    raise AssertionError(f"fetch {job} still running")


def tls(demo: Demo) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(demo.ca_file))


def pop3_count(demo: Demo, account: tuple[str, str]) -> int:
    """How many messages the demo's POP3 server holds for a user (poplib, the printed CA)."""
    user = account[0].split("@")[0]
    pop = poplib.POP3_SSL("localhost", demo.pop3_port, context=tls(demo), timeout=10)
    try:
        pop.user(user)
        pop.pass_(account[1])
        return pop.stat()[0]
    finally:
        pop.quit()


def send_as_alice(demo: Demo, subject: str) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = ALICE[0], BOB[0], subject
    message.set_content("Sent with smtplib to the demo's SMTP port.\n")
    with smtplib.SMTP("localhost", demo.smtp_port, timeout=10) as smtp:
        smtp.starttls(context=tls(demo))
        smtp.login("alice", ALICE[1])
        smtp.send_message(message)


# -- the tests ----------------------------------------------------------------------------


def assert_all_gone(demo: Demo, *ports: int) -> None:
    assert demo.survivors() == [], f"gunicorn processes outlived the demo:\n{demo.output.text}"
    for port in ports:
        assert refuses_connections(port), f"port {port} still listens after the demo"


def test_pochta_demo_serves_logs_in_stops_on_sigint_and_keeps_its_mail(tmp_path):
    data_dir = tmp_path / "pochta-demo"
    web, smtp, pop3 = free_ports(3)

    with pochta_demo(data_dir, web, smtp, pop3) as demo:
        # The banner names the URL, the demo logins and the mail server.
        assert demo.url == f"http://127.0.0.1:{web}/"
        assert (demo.smtp_port, demo.pop3_port) == (smtp, pop3)
        assert demo.ca_file.is_file() and demo.ca_file.is_relative_to(data_dir.resolve())
        assert "alice@demo.pochta.test / alice-demo" in demo.output.text
        assert "bob@demo.pochta.test / bob-demo" in demo.output.text
        assert len(demo.children) == 3, "gunicorn's master and two workers"

        status, _, body = Browser(demo.url).get("/healthz")
        assert (status, body.strip()) == (200, "ok")
        status, url, html = Browser(demo.url).get("/")
        assert (status, urllib.parse.urlsplit(url).path) == (200, "/login")
        assert (field_value(html, "smtp_host"), field_value(html, "smtp_port")) == (
            "localhost", str(smtp))
        assert (field_value(html, "pop3_host"), field_value(html, "pop3_port")) == (
            "localhost", str(pop3))
        assert (selected(html, "smtp_security"), selected(html, "pop3_security")) == (
            "starttls", "tls")

        browser, state = log_in_and_fetch(demo)
        assert (state["state"], state["new"], state["error"]) == ("done", SEEDED["alice"], None)
        inbox = unescape(browser.get("/inbox")[2])
        assert "Welcome to the Pochta demo" in inbox
        assert "Отчёт по лабораторной работе 3" in inbox  # KOI8-R, decoded

        assert pop3_count(demo, ALICE) == SEEDED["alice"]  # kept on the server
        assert pop3_count(demo, BOB) == SEEDED["bob"]
        send_as_alice(demo, "Hello from smtplib")
        deadline = time.monotonic() + 5
        while pop3_count(demo, BOB) != SEEDED["bob"] + 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pop3_count(demo, BOB) == SEEDED["bob"] + 1

        assert demo.stop(signal.SIGINT) == 0, demo.output.text
        demo.output.wait_for(re.compile(r"^Pochta demo stopped\.$"), 5)
        assert_all_gone(demo, web, smtp, pop3)

    # Again, on the same ports and data directory: the same mail, seeded only once, and the
    # app's store remembers what alice fetched. This time stopped as a service manager does.
    with pochta_demo(data_dir, web, smtp, pop3) as demo:
        assert pop3_count(demo, ALICE) == SEEDED["alice"]
        assert pop3_count(demo, BOB) == SEEDED["bob"] + 1
        _, state = log_in_and_fetch(demo)
        assert (state["state"], state["new"], state["error"]) == ("done", 0, None)
        assert demo.stop(signal.SIGTERM) == 0, demo.output.text
        demo.output.wait_for(re.compile(r"^Pochta demo stopped\.$"), 5)
        assert_all_gone(demo, web, smtp, pop3)


@pytest.mark.slow
def test_ctrl_c_stops_a_demo_started_with_sigint_ignored(tmp_path):
    web, smtp, pop3 = free_ports(3)
    with pochta_demo(tmp_path / "pochta-demo", web, smtp, pop3, sigint_ignored=True) as demo:
        assert _ignores_sigint(demo.process.pid) is False  # the demo took it back
        assert demo.stop(signal.SIGINT) == 0, demo.output.text
        demo.output.wait_for(re.compile(r"^Pochta demo stopped\.$"), 5)
        assert_all_gone(demo, web, smtp, pop3)


def _ignores_sigint(pid: int) -> bool:
    """Whether SIGINT is in the process's ignored set now (/proc/<pid>/status, SigIgn)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    raise AssertionError(f"no SigIgn line for {pid}")


@pytest.mark.slow
def test_a_worker_that_will_not_stop_is_not_left_behind(tmp_path):
    web, smtp, pop3 = free_ports(3)
    with pochta_demo(tmp_path / "pochta-demo", web, smtp, pop3) as demo:
        master = demo.children[0]
        workers = [pid for pid in demo.children if _proc_stat(pid)[1] == str(master)]
        assert workers
        # A worker that cannot act on signals, as one deadlocked in its quit handler.
        os.kill(workers[0], signal.SIGSTOP)
        # It may take the demo its 15 s of patience with gunicorn to give up on it.
        assert demo.stop(signal.SIGINT, timeout=STOP_TIMEOUT + 15) == 0, demo.output.text
        assert "Pochta demo stopped." in demo.output.text
        assert_all_gone(demo, web, smtp, pop3)
