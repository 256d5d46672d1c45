"""Real Dovecot (POP3) and Postfix (SMTP submission) on loopback, started by the test setup.

End-to-end tests talk to Debian's own mail servers, not to fakes. `start_servers()` renders the
config templates in tests/support/mailserver-config/ into a work directory, starts one Dovecot
and one Postfix listening on 127.0.0.1 only, and returns once every port greets. Postfix takes
authenticated submission (checked by Dovecot) for the test domain only and delivers into the
users' Maildirs, which Dovecot serves over POP3. Tests seed mailboxes directly through
`RealServers.deliver()`.

Use the session fixture `real_servers`, or run the servers by hand:

    python -m tests.support.realservers start DIR   # prints the ports and CA file as JSON
    python -m tests.support.realservers stop DIR
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import grp
import hashlib
import itertools
import json
import os
import pwd
import shutil
import signal
import socket
import ssl
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from types import MappingProxyType

import pytest

HOST = "127.0.0.1"
DOMAIN = "pochta.test"
USERS: Mapping[str, str] = MappingProxyType({
    f"alice@{DOMAIN}": "alice-password",
    f"bob@{DOMAIN}": "bob-password",
    f"carol@{DOMAIN}": "carol password with spaces",
    # A plain ASCII login with a non-ASCII password: AUTH must send it as UTF-8.
    f"ivan@{DOMAIN}": "пароль-Ünï€",
})
MESSAGE_SIZE_LIMIT = 100 * 1024 * 1024
REQUIRE_ENV = "POCHTA_REQUIRE_REAL_SERVERS"

CONFIG_TEMPLATES = Path(__file__).resolve().parent / "mailserver-config"
POSTFIX = "/usr/sbin/postfix"
DOVECOT = "/usr/sbin/dovecot"
REQUIRED_PROGRAMS = (
    POSTFIX,
    DOVECOT,
    "/usr/lib/postfix/sbin/master",
    "/usr/lib/postfix/sbin/virtual",
    "/usr/lib/dovecot/pop3",
)
POSTFIX_USER = "postfix"
DOVECOT_USER = "dovecot"  # Dovecot's default_internal_user, reads the users file
MAIL_USER = "mail"  # owns the Maildirs: Dovecot will not serve mail as root
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0

_PORT_NAMES = (
    "smtp_starttls_port",
    "smtp_tls_port",
    "smtp_plain_port",
    "pop3_starttls_port",
    "pop3_tls_port",
    "pop3_plain_port",
)
_delivery_serial = itertools.count()


class ServerSetupError(Exception):
    """The real servers could not be started or stopped; the message says why."""


@dataclass(frozen=True)
class _Layout:
    """Where everything lives inside a work directory."""

    workdir: Path

    @property
    def certs(self) -> Path:
        return self.workdir / "certs"

    @property
    def mail(self) -> Path:
        return self.workdir / "mail"

    @property
    def dovecot(self) -> Path:
        return self.workdir / "dovecot"

    @property
    def dovecot_conf(self) -> Path:
        return self.dovecot / "dovecot.conf"

    @property
    def dovecot_run(self) -> Path:
        return self.dovecot / "run"

    @property
    def dovecot_log(self) -> Path:
        return self.workdir / "dovecot.log"

    @property
    def postfix(self) -> Path:
        return self.workdir / "postfix"

    @property
    def postfix_queue(self) -> Path:
        return self.workdir / "postfix-queue"

    @property
    def postfix_log(self) -> Path:
        return self.workdir / "postfix.log"

    @property
    def state(self) -> Path:
        return self.workdir / "servers.json"

    def logs(self) -> str:
        return (
            f"--- {self.postfix_log}:\n{_tail(self.postfix_log)}\n"
            f"--- {self.dovecot_log}:\n{_tail(self.dovecot_log)}"
        )


@dataclass(frozen=True)
class RealServers:
    """Where the running servers listen, who may log in, and direct access to the mailboxes."""

    host: str
    domain: str
    ca_file: Path
    smtp_starttls_port: int
    smtp_tls_port: int
    smtp_plain_port: int
    pop3_starttls_port: int
    pop3_tls_port: int
    pop3_plain_port: int
    users: Mapping[str, str]
    workdir: Path  # config, Maildirs (mail/<user>/) and logs (postfix.log, dovecot.log)

    def maildir(self, user: str) -> Path:
        """The Maildir of a login name (the full address)."""
        name = user.lower()
        if name not in self.users:
            raise KeyError(f"no such test user: {user!r}")
        return _Layout(self.workdir).mail / name

    def deliver(self, user: str, raw: bytes) -> None:
        """Put one message straight into the user's mailbox; POP3 sees it at once."""
        self.deliver_many(user, [raw])

    def deliver_many(self, user: str, messages: Iterable[bytes]) -> None:
        """Put messages into the mailbox, numbered by POP3 in the order given."""
        maildir = self.maildir(user)
        tmp, new = str(maildir / "tmp"), str(maildir / "new")
        owner = os.stat(maildir)
        now = time.time()
        # Dovecot numbers new files by the time in their names, then by name: keep both rising.
        stamp = f"{int(now)}.M{int(now % 1 * 1_000_000):06d}P{os.getpid()}"
        for raw in messages:
            # Maildir files keep LF line ends; POP3 sends CRLF. S= and W= tell Dovecot the
            # size on disk and on the wire without reading the file.
            data = raw.replace(b"\r\n", b"\n")
            name = f"{stamp}Q{next(_delivery_serial):09d}.pochta-test"
            wire_size = len(data) + data.count(b"\n")
            fd = os.open(f"{tmp}/{name}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.fchown(fd, owner.st_uid, owner.st_gid)
                _write_all(fd, data)
            finally:
                os.close(fd)
            os.rename(f"{tmp}/{name}", f"{new}/{name},S={len(data)},W={wire_size}")

    def clear(self, user: str) -> None:
        """Empty the mailbox. Dovecot notices at the next login; its UIDs keep rising."""
        maildir = self.maildir(user)
        for folder in ("new", "cur"):
            for entry in os.scandir(maildir / folder):
                os.unlink(entry.path)

    def count(self, user: str) -> int:
        """How many messages the mailbox holds right now."""
        maildir = self.maildir(user)
        return sum(1 for folder in ("new", "cur") for _ in os.scandir(maildir / folder))

    def wait_for_count(self, user: str, n: int, timeout: float = 20) -> None:
        """Wait until mail sent through Postfix has arrived: the mailbox holds exactly n."""
        deadline = time.monotonic() + timeout
        while (found := self.count(user)) != n:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{user} holds {found} messages, not {n}, after {timeout} s\n"
                    f"{_Layout(self.workdir).logs()}"
                )
            time.sleep(0.02)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


@dataclass(frozen=True)
class RunningServers:
    """A started pair of servers; `stop()` ends every process they started."""

    servers: RealServers

    def stop(self) -> None:
        stop_servers(self.servers.workdir)

    def __enter__(self) -> RunningServers:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# --- availability -------------------------------------------------------------------------


def unavailable_reason() -> str | None:
    """Why the real servers cannot run on this machine, or None when they can."""
    if os.geteuid() != 0:
        return "the real Dovecot and Postfix need root (run the tests as root, as CI does)"
    missing = [path for path in REQUIRED_PROGRAMS if not Path(path).exists()]
    if missing:
        return (
            f"missing {', '.join(missing)}: install dovecot-core dovecot-pop3d postfix "
            "(scripts/install-system-deps)"
        )
    for user in (POSTFIX_USER, DOVECOT_USER, MAIL_USER):
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f"there is no system user {user!r} (are postfix and dovecot installed?)"
    return None


# --- start --------------------------------------------------------------------------------


def start_servers(
    workdir: Path, base_port: int | None = None, users: Mapping[str, str] | None = None
) -> RunningServers:
    """Start Dovecot and Postfix with all their files in `workdir`; return once all ports greet.

    The ports are base_port .. base_port+5 when given, else free ones picked by the kernel.
    `users` (address → password, addresses at DOMAIN) replaces the default USERS, say for a
    second instance with many accounts. On failure whatever started is stopped and
    ServerSetupError carries the logs' tails.
    """
    reason = unavailable_reason()
    if reason:
        raise ServerSetupError(reason)
    layout = _Layout(Path(workdir).resolve())
    attempts = 1 if base_port is not None else 3
    for attempt in range(1, attempts + 1):
        if base_port is not None:
            ports = tuple(range(base_port, base_port + len(_PORT_NAMES)))
        else:
            ports = _free_ports(len(_PORT_NAMES))
        try:
            return _start(layout, dict(zip(_PORT_NAMES, ports, strict=True)), users or USERS)
        except ServerSetupError:
            stop_servers(layout.workdir)
            # Another process may have taken a free port between our probe and the bind.
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


def _start(
    layout: _Layout, ports: dict[str, int], users: Mapping[str, str] = USERS
) -> RunningServers:
    from app.demo.certs import make_certificates

    stop_servers(layout.workdir)  # an instance left running in the same directory
    _prepare_workdir(layout)
    certs = make_certificates(layout.certs, ("localhost", HOST))
    servers = RealServers(
        host=HOST, domain=DOMAIN, ca_file=certs.ca_cert, users=MappingProxyType(dict(users)),
        workdir=layout.workdir, **ports,
    )
    mail = pwd.getpwnam(MAIL_USER)
    postfix = pwd.getpwnam(POSTFIX_USER)
    names = {
        **ports,
        "host": HOST,
        "domain": DOMAIN,
        "workdir": layout.workdir,
        "instance_name": f"pochta-{layout.workdir.name}",
        "server_cert": certs.server_cert,
        "server_key": certs.server_key,
        "users_file": layout.dovecot / "users",
        "maildir_root": layout.mail,
        "mail_uid": mail.pw_uid,
        "mail_gid": mail.pw_gid,
        "postfix_user": postfix.pw_name,
        "postfix_group": grp.getgrgid(postfix.pw_gid).gr_name,
        "dovecot_run_dir": layout.dovecot_run,
        "dovecot_state_dir": layout.dovecot / "state",
        "dovecot_log": layout.dovecot_log,
        "postfix_config_dir": layout.postfix,
        "postfix_queue_dir": layout.postfix_queue,
        "postfix_data_dir": layout.workdir / "postfix-data",
        "postfix_log": layout.postfix_log,
        "message_size_limit": MESSAGE_SIZE_LIMIT,
    }
    _write_dovecot_files(layout, names, users)
    _write_postfix_files(layout, names, users)
    _make_maildirs(layout, mail, users)
    layout.state.write_text(json.dumps(describe(servers), indent=2, ensure_ascii=False) + "\n")

    _start_dovecot(layout)
    _start_postfix(layout)
    _wait_until_ready(servers, layout)
    return RunningServers(servers)


def describe(servers: RealServers) -> dict[str, object]:
    """The servers as plain JSON values (what `start` prints)."""
    values = {field.name: getattr(servers, field.name) for field in fields(servers)}
    values.update(
        users=dict(servers.users), ca_file=str(servers.ca_file), workdir=str(servers.workdir)
    )
    return values


def _free_ports(n: int) -> tuple[int, ...]:
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(n)]
        for sock in sockets:
            sock.bind((HOST, 0))
        return tuple(sock.getsockname()[1] for sock in sockets)


def _prepare_workdir(layout: _Layout) -> None:
    workdir = layout.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    # The postfix and mail users must reach their files in here.
    workdir.chmod(0o755)
    for parent in workdir.parents:
        if parent.stat().st_mode & 0o001 == 0:
            raise ServerSetupError(
                f"{parent} is closed to other users, but the postfix and mail users need to "
                f"reach {workdir}: use a directory under /tmp"
            )
    layout.postfix_log.touch()
    layout.dovecot_log.touch()
    # A stale Dovecot runtime directory (sockets, pid file) makes it log errors.
    shutil.rmtree(layout.dovecot_run, ignore_errors=True)


def _render(template: str, names: Mapping[str, object]) -> str:
    text = (CONFIG_TEMPLATES / template).read_text()
    return string.Template(text).substitute({key: str(value) for key, value in names.items()})


def _write_dovecot_files(
    layout: _Layout, names: Mapping[str, object], users: Mapping[str, str] = USERS
) -> None:
    (layout.dovecot / "state").mkdir(parents=True, exist_ok=True)
    layout.dovecot_conf.write_text(_render("dovecot.conf", names))
    # passwd-file: user:password:uid:gid:gecos:home:shell:extra
    users_file = layout.dovecot / "users"
    users_file.write_text(
        "".join(
            f"{user}:{{SSHA512}}{_ssha512(password)}:{names['mail_uid']}:{names['mail_gid']}::"
            f"{layout.mail / user}::\n"
            for user, password in users.items()
        ),
        encoding="utf-8",
    )
    internal = pwd.getpwnam(DOVECOT_USER)
    os.chown(users_file, internal.pw_uid, internal.pw_gid)
    users_file.chmod(0o600)


def _ssha512(password: str) -> str:
    """Dovecot's SSHA512 scheme: base64(SHA-512(password + salt) + salt), password in UTF-8."""
    salt = os.urandom(8)
    digest = hashlib.sha512(password.encode("utf-8") + salt).digest()
    return base64.b64encode(digest + salt).decode("ascii")


def _write_postfix_files(
    layout: _Layout, names: Mapping[str, object], users: Mapping[str, str] = USERS
) -> None:
    folder = layout.postfix
    folder.mkdir(exist_ok=True)
    (folder / "main.cf").write_text(_render("postfix/main.cf", names))
    (folder / "master.cf").write_text(_render("postfix/master.cf", names))
    # virtual(8) delivers to $virtual_mailbox_base/<value>; a trailing slash means Maildir.
    (folder / "virtual-mailboxes").write_text("".join(f"{user} {user}/\n" for user in users))
    # Every Postfix command waits up to 2 s until a just-written main.cf looks settled.
    settled = time.time() - 60
    for path in folder.iterdir():
        os.utime(path, (settled, settled))


def _make_maildirs(
    layout: _Layout, mail: pwd.struct_passwd, users: Mapping[str, str] = USERS
) -> None:
    layout.mail.mkdir(exist_ok=True)
    for user in users:
        top = layout.mail / user
        for path in (top, top / "cur", top / "new", top / "tmp"):
            path.mkdir(mode=0o700, exist_ok=True)
            os.chown(path, mail.pw_uid, mail.pw_gid)


def _start_dovecot(layout: _Layout) -> None:
    # The daemon keeps the caller's stdout and stderr: give it the log file, never a pipe.
    with layout.dovecot_log.open("ab") as log:
        result = subprocess.run(
            [DOVECOT, "-c", str(layout.dovecot_conf)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, check=False, timeout=60,
        )
    if result.returncode != 0:
        raise ServerSetupError(f"dovecot exited with {result.returncode}\n{layout.logs()}")


def _start_postfix(layout: _Layout) -> None:
    layout.postfix_queue.mkdir(mode=0o755, exist_ok=True)
    # Create the queue's subdirectories and the data directory with the right owners (the
    # first step of `postfix start`), then let the start skip its integrity checks of the
    # whole installation, two seconds of `find` (the documented quick-start marker).
    _postfix(layout, "post-install", "create-missing")
    (layout.postfix_queue / "quick-start").touch()
    _postfix(layout, "start")


def _postfix(layout: _Layout, *command: str) -> None:
    # Output goes to a file: the daemonized master would hold a pipe open for a while.
    with tempfile.TemporaryFile() as output:
        result = subprocess.run(
            [POSTFIX, "-c", str(layout.postfix), *command],
            env={**os.environ, "MAIL_CONFIG": str(layout.postfix)},
            stdin=subprocess.DEVNULL, stdout=output, stderr=output, check=False, timeout=60,
        )
        output.seek(0)
        said = output.read().decode(errors="replace").strip()
    if result.returncode != 0:
        raise ServerSetupError(
            f"postfix {' '.join(command)} exited with {result.returncode}: {said}\n"
            f"{layout.logs()}"
        )


def _wait_until_ready(servers: RealServers, layout: _Layout) -> None:
    tls = ssl.create_default_context(cafile=servers.ca_file)
    checks = [
        (servers.smtp_starttls_port, None, b"220 "),
        (servers.smtp_tls_port, tls, b"220 "),
        (servers.smtp_plain_port, None, b"220 "),
        (servers.pop3_starttls_port, None, b"+OK"),
        (servers.pop3_tls_port, tls, b"+OK"),
        (servers.pop3_plain_port, None, b"+OK"),
    ]
    deadline = time.monotonic() + START_TIMEOUT
    for port, context, greeting in checks:
        while (problem := _greeting_problem(servers.host, port, context, greeting)) is not None:
            if time.monotonic() > deadline:
                raise ServerSetupError(
                    f"port {port} did not greet within {START_TIMEOUT} s: {problem}\n"
                    f"{layout.logs()}"
                )
            time.sleep(0.02)


def _greeting_problem(
    host: str, port: int, context: ssl.SSLContext | None, greeting: bytes
) -> str | None:
    try:
        with socket.create_connection((host, port), timeout=5) as raw:
            sock = context.wrap_socket(raw, server_hostname=host) if context else raw
            with sock:
                line = sock.makefile("rb").readline()
                sock.sendall(b"QUIT\r\n")
    except OSError as exc:
        return str(exc)
    return None if line.startswith(greeting) else f"greeted with {line!r}"


# --- stop ---------------------------------------------------------------------------------


def stop_servers(workdir: Path) -> None:
    """Stop the servers started in `workdir`, leaving none of their processes behind."""
    layout = _Layout(Path(workdir).resolve())
    for pid_file in (layout.postfix_queue / "pid" / "master.pid",
                     layout.dovecot_run / "master.pid"):
        master = _read_master_pid(pid_file)
        if master is not None:
            _end_session(master)


def _read_master_pid(path: Path) -> int | None:
    """The pid in a master.pid file, if that process still runs as a session leader."""
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    # Both masters daemonize with setsid(); a recycled pid would not lead its own session.
    return pid if pid > 1 and _session_of(pid) == pid else None


def _session_of(pid: int) -> int | None:
    """The session id of a live process; None for a gone or zombie one."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # After the parenthesised command name: state ppid pgrp session ...
    state, _ppid, _pgrp, session = stat.rsplit(")", 1)[1].split()[:4]
    return None if state in ("Z", "X") else int(session)


def _members(session: int) -> list[int]:
    return [
        int(entry.name)
        for entry in os.scandir("/proc")
        if entry.name.isdigit() and _session_of(int(entry.name)) == session
    ]


def _end_session(master: int) -> None:
    """SIGTERM a master, give it a moment, then SIGKILL whatever is left of its session.

    A master's children share its session, which thus names exactly this instance's
    processes. Dovecot's helpers (log, auth, anvil, stats) outlive their master by up to
    30 s after a SIGTERM; a throwaway test instance does not wait for them.
    """
    _signal(master, signal.SIGTERM)
    _wait_until(lambda: master not in _members(master), 3.0)
    for pid in _members(master):
        _signal(pid, signal.SIGKILL)
    if not _wait_until(lambda: not _members(master), STOP_TIMEOUT):
        raise ServerSetupError(f"processes {_members(master)} survived SIGKILL")


def _wait_until(done: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(missing)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


# --- pytest -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def real_servers() -> Iterator[RealServers]:
    """Dovecot and Postfix, started once per test run and always stopped at its end.

    Skipped when they cannot run here (not root, packages missing), except that with
    POCHTA_REQUIRE_REAL_SERVERS=1 (set by scripts/test, so in CI) that is a failure: CI never
    passes by silently skipping the end-to-end tests.
    """
    reason = unavailable_reason()
    if reason:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1, but the real mail servers cannot run: {reason}")
        pytest.skip(reason)
    workdir = Path(tempfile.mkdtemp(prefix="pochta-realservers-"))
    try:
        try:
            running = start_servers(workdir)
        except ServerSetupError as exc:
            pytest.fail(f"the real mail servers did not start: {exc}")
        yield running.servers
    finally:
        stop_servers(workdir)
        shutil.rmtree(workdir, ignore_errors=True)


# --- command line -------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.realservers",
        description="Start or stop the test setup's Dovecot and Postfix on 127.0.0.1.",
    )
    parser.add_argument("command", choices=("start", "stop"))
    parser.add_argument("directory", type=Path, help="work directory: config, mail, logs")
    parser.add_argument("--base-port", type=int, help="use six ports from this one on")
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            running = start_servers(args.directory, args.base_port)
            print(json.dumps(describe(running.servers), indent=2, ensure_ascii=False))
        else:
            stop_servers(args.directory)
    except ServerSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
