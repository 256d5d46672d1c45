"""`pochta send` and `pochta fetch` against the demo mail server (fast, no root), and every way
the command line can be used wrongly: usage errors exit 2, everything else that fails exits 1
with one line on stderr naming what failed.
"""

from __future__ import annotations

import email
import email.policy
import io
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.cli import main
from app.demo.server import DemoMailServer
from app.mail.security import Security

USERS = {"alice": "alice-pw", "bob": "bob-pw", "ivan": "пароль-Ü"}
POCHTA = Path(sys.executable).with_name("pochta")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DemoMailServer]:
    with DemoMailServer(
        tmp_path / "mailserver", users=USERS, pop3_security=Security.TLS,
        smtp_security=Security.STARTTLS,
    ) as running:
        yield running


@pytest.fixture(autouse=True)
def pochta_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No POCHTA_* variable from the machine running the tests leaks in."""
    for name in list(os.environ):
        if name.startswith("POCHTA_"):
            monkeypatch.delenv(name)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, server: DemoMailServer) -> DemoMailServer:
    """The demo server's CA trusted and alice's password given, as a user would set them."""
    monkeypatch.setenv("POCHTA_CA_FILE", str(server.ca_file))
    monkeypatch.setenv("POCHTA_PASSWORD", USERS["alice"])
    return server


@pytest.fixture(autouse=True)
def restore_pochta_logger() -> Iterator[None]:
    """--transcript attaches a handler to the "pochta" logger; do not let it outlive a test."""
    logger = logging.getLogger("pochta")
    handlers, level = list(logger.handlers), logger.level
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)


def run(monkeypatch: pytest.MonkeyPatch, capsys, *argv: str, stdin: str = "") -> tuple:
    """main(argv) with `stdin` as standard input: (exit status, stdout, stderr)."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def usage_error(monkeypatch, capsys, *argv: str) -> str:
    """Run a command line argparse must refuse; its exit status is 2. Returns stderr."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    return err


def smtp(server: DemoMailServer) -> list[str]:
    return ["--smtp-host", "localhost", "--smtp-port", str(server.smtp_port),
            "--smtp-security", "starttls"]


def pop3(server: DemoMailServer) -> list[str]:
    return ["--pop3-host", "localhost", "--pop3-port", str(server.pop3_port),
            "--pop3-security", "tls"]


def inbox(server: DemoMailServer, user: str) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(stored.path.read_bytes(), policy=email.policy.default)
        for stored in server.mailboxes.list(user)
    ]


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- pochta send --------------------------------------------------------------------------


def test_send_to_several_recipients_with_an_attachment(env, monkeypatch, capsys, tmp_path):
    server = env
    attachment = tmp_path / "данные.csv"
    attachment.write_bytes("имя;число\nальфа;1\n".encode())
    status, out, err = run(
        monkeypatch, capsys, "send", "--from", server.address("alice"),
        "--to", server.address("bob"), "--to", server.address("ivan"),
        "--bcc", server.address("alice"), "--subject", "Тема", "--attach", str(attachment),
        *smtp(server), stdin="Строка один.\n.\nСтрока три.\n",
    )
    assert (status, err) == (0, "")
    assert [line.split()[:2] for line in out.splitlines()] == [
        ["accepted", "bob@demo.pochta.test"],
        ["accepted", "ivan@demo.pochta.test"],
        ["accepted", "alice@demo.pochta.test"],
    ]
    (message,) = inbox(server, "bob")
    assert len(inbox(server, "ivan")) == len(inbox(server, "alice")) == 1
    assert "Bcc" not in message and "Bcc" not in inbox(server, "alice")[0]
    assert message["Subject"] == "Тема"
    body = message.get_body(("plain",)).get_content()
    assert body == "Строка один.\r\n.\r\nСтрока три.\r\n"
    (part,) = message.iter_attachments()
    assert part.get_filename() == "данные.csv"
    assert part.get_payload(decode=True) == attachment.read_bytes()


def test_send_takes_the_server_from_the_environment(env, monkeypatch, capsys):
    server = env
    monkeypatch.setenv("POCHTA_SMTP_HOST", "localhost")
    monkeypatch.setenv("POCHTA_SMTP_PORT", str(server.smtp_port))
    monkeypatch.setenv("POCHTA_SMTP_SECURITY", "starttls")
    status, out, _err = run(
        monkeypatch, capsys, "send", "--from", server.address("alice"),
        "--to", f"{server.address('bob')}, Иван <{server.address('ivan')}>", stdin="x\n",
    )
    assert status == 0 and len(out.splitlines()) == 2  # one --to may list several
    assert len(inbox(server, "bob")) == len(inbox(server, "ivan")) == 1


def test_send_with_a_separate_login_name_and_a_utf8_password(env, monkeypatch, capsys):
    server = env
    monkeypatch.setenv("POCHTA_PASSWORD", USERS["ivan"])
    status, _out, err = run(
        monkeypatch, capsys, "send", "--from", f"Иван <{server.address('ivan')}>",
        "--user", "ivan", "--to", server.address("bob"), *smtp(server), stdin="x\n",
    )
    assert (status, err) == (0, "")
    assert inbox(server, "bob")[0]["From"].addresses[0].display_name == "Иван"


def test_send_partly_refused_exits_1_after_delivering(env, monkeypatch, capsys):
    server = env
    status, out, err = run(
        monkeypatch, capsys, "send", "--from", server.address("alice"),
        "--to", server.address("bob"), "--to", "nobody@elsewhere.example", *smtp(server),
        stdin="x\n",
    )
    assert status == 1
    assert out.splitlines()[1].startswith("refused   nobody@elsewhere.example  (550 5.7.1")
    assert one_line(err) == "pochta send: 1 of 2 recipients were refused"
    assert len(inbox(server, "bob")) == 1


def test_send_all_refused_is_one_line(env, monkeypatch, capsys):
    server = env
    status, out, err = run(
        monkeypatch, capsys, "send", "--from", server.address("alice"),
        "--to", "nobody@elsewhere.example", *smtp(server), stdin="x\n",
    )
    assert (status, out) == (1, "")
    assert one_line(err).startswith("pochta send: RecipientsRefused: localhost refused every")


def test_send_transcript_is_redacted(env, monkeypatch, capsys):
    server = env
    status, _out, err = run(
        monkeypatch, capsys, "send", "--from", server.address("alice"),
        "--to", server.address("bob"), "--transcript", *smtp(server), stdin="x\n",
    )
    assert status == 0
    assert " C: AUTH PLAIN ***\n" in err and " S: 235 " in err
    assert USERS["alice"] not in err


def test_wrong_password_exits_1_with_the_server_words(env, monkeypatch, capsys):
    server = env
    monkeypatch.setenv("POCHTA_PASSWORD", "nope")
    status, _out, err = run(
        monkeypatch, capsys, "send", "--from", server.address("alice"),
        "--to", server.address("bob"), *smtp(server), stdin="x\n",
    )
    assert status == 1
    assert one_line(err).startswith("pochta send: AuthFailed: localhost did not accept")


def test_header_injection_in_the_subject_is_refused(env, monkeypatch, capsys):
    server = env
    status, _out, err = run(
        monkeypatch, capsys, "send", "--from", server.address("alice"),
        "--to", server.address("bob"), "--subject", "hi\r\nBcc: mallory@evil.example",
        *smtp(server), stdin="x\n",
    )
    assert status == 1
    assert one_line(err) == (
        "pochta send: The subject may not contain line breaks or control characters."
    )
    assert server.mailboxes.count("bob") == 0


# --- pochta fetch -------------------------------------------------------------------------


def test_fetch_saves_keeps_and_deletes(env, monkeypatch, capsys, tmp_path):
    server = env
    raws = [b"Subject: m%d\r\n\r\nbody %d\r\n.dot\r\n" % (n, n) for n in range(3)]
    for raw in raws:
        server.mailboxes.deliver("alice", raw)
    dest = tmp_path / "saved"
    argv = ["fetch", "--user", "alice", "--dest", str(dest), *pop3(server)]
    assert run(monkeypatch, capsys, *argv) == (0, f"3 new messages saved in {dest}\n", "")
    assert sorted(p.read_bytes() for p in dest.glob("*.eml")) == sorted(raws)
    assert run(monkeypatch, capsys, *argv) == (0, f"0 new messages saved in {dest}\n", "")
    assert server.mailboxes.count("alice") == 3
    status, out, _err = run(monkeypatch, capsys, *argv, "--delete")
    assert (status, out) == (0, f"0 new messages saved in {dest}\n3 deleted from the server\n")
    assert server.mailboxes.count("alice") == 0


def test_fetch_transcript_is_redacted(env, monkeypatch, capsys, tmp_path):
    server = env
    status, out, err = run(
        monkeypatch, capsys, "fetch", "--user", "alice", "--dest", str(tmp_path),
        "--transcript", *pop3(server),
    )
    assert (status, out) == (0, f"0 new messages saved in {tmp_path}\n")
    assert " C: AUTH PLAIN ***\n" in err and " C: QUIT\n" in err
    assert USERS["alice"] not in err


# --- what exits 2: the command line itself is wrong -----------------------------------------


def test_send_without_to_is_a_usage_error(monkeypatch, capsys):
    err = usage_error(monkeypatch, capsys, "send", "--from", "a@example.org")
    assert "--to" in err and "required" in err


def test_send_without_from_is_a_usage_error(monkeypatch, capsys):
    assert "--from" in usage_error(monkeypatch, capsys, "send", "--to", "a@example.org")


@pytest.mark.parametrize("option", ["--smtp-security", "--pop3-security"])
def test_unknown_security_mode_is_a_usage_error(monkeypatch, capsys, option):
    command = "send" if option.startswith("--smtp") else "fetch"
    required = (["--from", "a@example.org", "--to", "b@example.org"] if command == "send"
                else ["--user", "a", "--dest", "d"])
    err = usage_error(monkeypatch, capsys, command, *required, option, "ssl")
    assert "choose tls, starttls or none" in err


@pytest.mark.parametrize("port", ["0", "65536", "smtp", "-1"])
def test_bad_port_is_a_usage_error(monkeypatch, capsys, port):
    err = usage_error(
        monkeypatch, capsys, "send", "--from", "a@example.org", "--to", "b@example.org",
        "--smtp-port", port,
    )
    assert "a TCP port is a number from 1 to 65535" in err


def test_fetch_without_dest_is_a_usage_error(monkeypatch, capsys):
    assert "--dest" in usage_error(monkeypatch, capsys, "fetch", "--user", "alice")


def test_no_command_is_a_usage_error(monkeypatch, capsys):
    usage_error(monkeypatch, capsys)


def test_console_script_exits_2_on_a_usage_error(tmp_path):
    assert POCHTA.is_file(), f"the console script is not installed at {POCHTA}"
    result = subprocess.run(
        [str(POCHTA), "send", "--from", "a@example.org"], capture_output=True, text=True,
        stdin=subprocess.DEVNULL, cwd=tmp_path, timeout=60, check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("POCHTA_")},
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "the following arguments are required: --to" in result.stderr


# --- what exits 1: one line naming what failed ---------------------------------------------


def test_unknown_host_names_the_host(monkeypatch, capsys):
    monkeypatch.setenv("POCHTA_PASSWORD", "x")
    status, _out, err = run(
        monkeypatch, capsys, "send", "--from", "a@example.org", "--to", "b@example.org",
        "--smtp-host", "no-such-host.invalid", stdin="x\n",
    )
    assert status == 1
    assert one_line(err).startswith(
        "pochta send: ConnectFailed: cannot find the host no-such-host.invalid"
    )


def test_refused_connection_names_host_and_port(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("POCHTA_PASSWORD", "x")
    port = free_port()
    status, _out, err = run(
        monkeypatch, capsys, "fetch", "--user", "alice", "--dest", str(tmp_path),
        "--pop3-host", "127.0.0.1", "--pop3-port", str(port),
    )
    assert status == 1
    assert one_line(err).startswith(
        f"pochta fetch: ConnectFailed: cannot connect to 127.0.0.1:{port}"
    )


def test_untrusted_certificate_is_one_line(server, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("POCHTA_PASSWORD", USERS["alice"])  # but no POCHTA_CA_FILE
    status, _out, err = run(
        monkeypatch, capsys, "fetch", "--user", "alice", "--dest", str(tmp_path), *pop3(server),
    )
    assert status == 1
    assert one_line(err).startswith("pochta fetch: TLSFailed: the TLS certificate of localhost")


@pytest.mark.parametrize("command", ["send", "fetch"])
def test_no_password_and_no_terminal_is_a_clear_error(server, monkeypatch, capsys, command,
                                                     tmp_path):
    argv = (["send", "--from", server.address("alice"), "--to", server.address("bob"),
             *smtp(server)] if command == "send"
            else ["fetch", "--user", "alice", "--dest", str(tmp_path), *pop3(server)])
    status, out, err = run(monkeypatch, capsys, *argv, stdin="x\n")
    assert (status, out) == (1, "")
    assert one_line(err) == (
        f"pochta {command}: no password: set POCHTA_PASSWORD (stdin is not a terminal)"
    )
    assert server.mailboxes.count("bob") == 0


def test_no_server_configured(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("POCHTA_PASSWORD", "x")
    status, _out, err = run(
        monkeypatch, capsys, "send", "--from", "a@example.org", "--to", "b@example.org",
        stdin="x\n",
    )
    assert status == 1
    assert one_line(err) == "pochta send: no SMTP server: use --smtp-host or POCHTA_SMTP_HOST"
    status, _out, err = run(
        monkeypatch, capsys, "fetch", "--user", "a", "--dest", str(tmp_path),
    )
    assert one_line(err) == "pochta fetch: no POP3 server: use --pop3-host or POCHTA_POP3_HOST"


def test_host_outside_the_allow_list_is_refused_before_connecting(monkeypatch, capsys):
    monkeypatch.setenv("POCHTA_PASSWORD", "x")
    monkeypatch.setenv("POCHTA_ALLOWED_HOSTS", "mail.example.org")
    port = free_port()
    with socket.socket() as listener:  # would see a connection attempt
        listener.bind(("127.0.0.1", port))
        listener.listen()
        listener.settimeout(0.2)
        status, _out, err = run(
            monkeypatch, capsys, "send", "--from", "a@example.org", "--to", "b@example.org",
            "--smtp-host", "127.0.0.1", "--smtp-port", str(port), stdin="x\n",
        )
        with pytest.raises(TimeoutError):
            listener.accept()
    assert status == 1
    assert one_line(err) == "pochta send: 127.0.0.1 is not in POCHTA_ALLOWED_HOSTS"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("POCHTA_SMTP_SECURITY", "ssl", "POCHTA_SMTP_SECURITY must be one of"),
        ("POCHTA_SMTP_PORT", "smtp", "POCHTA_SMTP_PORT must be a whole number"),
        ("POCHTA_CA_FILE", "/nonexistent/ca.pem", "POCHTA_CA_FILE names"),
    ],
)
def test_bad_environment_is_one_line(monkeypatch, capsys, variable, value, expected):
    monkeypatch.setenv(variable, value)
    status, _out, err = run(
        monkeypatch, capsys, "send", "--from", "a@example.org", "--to", "b@example.org",
        "--smtp-host", "localhost", stdin="x\n",
    )
    assert status == 1
    assert one_line(err).startswith(f"pochta send: {expected}")


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--to", "bob@", "pochta send: --to: "),
        ("--cc", "<broken", "pochta send: --cc: "),
        ("--from", "a@example.org, b@example.org", "pochta send: --from needs exactly one"),
        ("--attach", "/nonexistent/file.txt", "pochta send: cannot read the attachment"),
    ],
)
def test_bad_send_arguments_are_one_line(monkeypatch, capsys, option, value, expected):
    monkeypatch.setenv("POCHTA_PASSWORD", "x")
    argv = {"--from": "a@example.org", "--to": "b@example.org"}
    argv[option] = value
    status, _out, err = run(
        monkeypatch, capsys, "send", *[x for pair in argv.items() for x in pair],
        "--smtp-host", "localhost", "--smtp-port", str(free_port()), stdin="x\n",
    )
    assert status == 1
    assert one_line(err).startswith(expected)


# --- main() can be called more than once in a process -------------------------------------


def test_transcript_handler_does_not_outlive_the_command(env, monkeypatch, capsys, tmp_path):
    server = env
    logger = logging.getLogger("pochta")
    before = (list(logger.handlers), logger.level)
    argv = ["fetch", "--user", "alice", "--dest", str(tmp_path), *pop3(server)]
    assert run(monkeypatch, capsys, *argv, "--transcript")[0] == 0
    assert (list(logger.handlers), logger.level) == before
