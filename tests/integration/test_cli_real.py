"""`pochta send` and `pochta fetch` against the real Postfix and Dovecot of the test setup.

Most runs call `app.cli.main()` in-process (environment and stdin patched); a few run the
installed console script as a real subprocess, the way a user or a cron job would.
"""

from __future__ import annotations

import email
import email.policy
import io
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.cli import main
from tests.support.realservers import RealServers

pytestmark = pytest.mark.realservers

ALICE = "alice@pochta.test"
BOB = "bob@pochta.test"
CAROL = "carol@pochta.test"
IVAN = "ivan@pochta.test"
TRANSCRIPT_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [CS*]: .*")
POCHTA = Path(sys.executable).with_name("pochta")


@pytest.fixture
def servers(real_servers: RealServers) -> RealServers:
    for user in real_servers.users:
        real_servers.clear(user)
    return real_servers


@pytest.fixture(autouse=True)
def pochta_env(monkeypatch: pytest.MonkeyPatch, real_servers: RealServers) -> None:
    """Only the POCHTA_* variables a test sets: the CA file of the setup and a password."""
    for name in list(os.environ):
        if name.startswith("POCHTA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("POCHTA_CA_FILE", str(real_servers.ca_file))
    monkeypatch.setenv("POCHTA_PASSWORD", real_servers.users[ALICE])


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


def smtp_options(servers: RealServers, security: str = "starttls") -> list[str]:
    port = {"starttls": servers.smtp_starttls_port, "tls": servers.smtp_tls_port}[security]
    return ["--smtp-host", servers.host, "--smtp-port", str(port), "--smtp-security", security]


def pop3_options(servers: RealServers, security: str = "tls") -> list[str]:
    port = {"starttls": servers.pop3_starttls_port, "tls": servers.pop3_tls_port}[security]
    return ["--pop3-host", servers.host, "--pop3-port", str(port), "--pop3-security", security]


def parsed(servers: RealServers, user: str) -> list[email.message.EmailMessage]:
    folder = servers.maildir(user)
    paths = sorted(p for sub in ("new", "cur") for p in (folder / sub).iterdir())
    # Decoded first: headers may be UTF-8 (SMTPUTF8); bodies are 7-bit MIME from build_message.
    return [
        email.message_from_string(p.read_bytes().decode("utf-8"), policy=email.policy.default)
        for p in paths
    ]


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def assert_redacted_transcript(err: str, password: str) -> None:
    lines = err.splitlines()
    assert lines and all(TRANSCRIPT_LINE.fullmatch(line) for line in lines), err
    assert any(line.endswith("C: AUTH PLAIN ***") for line in lines)
    assert password not in err
    assert password.encode().hex() not in err


# --- pochta send --------------------------------------------------------------------------


def test_send_to_cc_bcc_with_a_cyrillic_attachment(servers, monkeypatch, capsys, tmp_path):
    attachment = tmp_path / "отчёт за май.pdf"
    attachment.write_bytes(b"%PDF-1.4\n" + bytes(range(256)) * 10)
    body = "Привет!\nОтчёт во вложении.\n.\n..точки в начале\n"
    status, out, err = run(
        monkeypatch, capsys,
        "send", "--from", ALICE, "--to", BOB, "--to", CAROL, "--cc", IVAN, "--bcc", ALICE,
        "--subject", "Отчёт за май", "--attach", str(attachment), *smtp_options(servers),
        stdin=body,
    )
    assert (status, err) == (0, "")
    assert [line.split()[:2] for line in out.splitlines()] == [
        ["accepted", BOB], ["accepted", CAROL], ["accepted", IVAN], ["accepted", ALICE]
    ]
    assert all(line.endswith("(250 2.1.5 Ok)") for line in out.splitlines())
    for user in (BOB, CAROL, IVAN, ALICE):
        servers.wait_for_count(user, 1)
    copies = [parsed(servers, user)[0] for user in (BOB, CAROL, IVAN, ALICE)]
    assert len({copy["Message-ID"] for copy in copies}) == 1
    for copy in copies:
        assert "Bcc" not in copy
    message = copies[0]
    assert message["Subject"] == "Отчёт за май"
    assert [a.addr_spec for a in message["To"].addresses] == [BOB, CAROL]
    assert [a.addr_spec for a in message["Cc"].addresses] == [IVAN]
    assert message["From"].addresses[0].addr_spec == ALICE
    assert message["Date"] is not None
    # MIME text is encoded in its canonical form, CRLF line ends.
    assert message.get_body(("plain",)).get_content() == body.replace("\n", "\r\n")
    (part,) = message.iter_attachments()
    assert part.get_filename() == "отчёт за май.pdf"
    assert part.get_content_type() == "application/pdf"
    assert part.get_content() == attachment.read_bytes()


def test_send_over_implicit_tls_with_a_utf8_recipient(servers, monkeypatch, capsys):
    recipient = "alice+почта@pochta.test"
    monkeypatch.setenv("POCHTA_PASSWORD", servers.users[BOB])
    status, out, _err = run(
        monkeypatch, capsys, "send", "--from", BOB, "--to", recipient,
        "--subject", "SMTPUTF8", *smtp_options(servers, "tls"), stdin="по-русски\n",
    )
    assert status == 0 and out.startswith(f"accepted  {recipient}  (250")
    servers.wait_for_count(ALICE, 1)
    (message,) = parsed(servers, ALICE)
    assert message["Delivered-To"] == recipient
    assert message["To"].addresses[0].addr_spec == recipient


def test_send_with_login_name_other_than_from(servers, monkeypatch, capsys):
    monkeypatch.setenv("POCHTA_PASSWORD", servers.users[IVAN])
    status, _out, err = run(
        monkeypatch, capsys, "send", "--from", "Иван <ivan@pochta.test>", "--user", IVAN,
        "--to", BOB, *smtp_options(servers), stdin="x\n",
    )
    assert (status, err) == (0, "")
    servers.wait_for_count(BOB, 1)
    assert str(parsed(servers, BOB)[0]["From"]) == "Иван <ivan@pochta.test>"


def test_refused_recipient_is_a_one_line_error(servers, monkeypatch, capsys):
    status, out, err = run(
        monkeypatch, capsys, "send", "--from", ALICE, "--to", "someone@example.com",
        *smtp_options(servers), stdin="x\n",
    )
    assert status == 1 and out == ""
    line = one_line(err)
    assert line.startswith("pochta send: RecipientsRefused: ")
    assert "554 5.7.1 <someone@example.com>: Relay access denied" in line


def test_partly_refused_recipients_exit_non_zero_after_sending(servers, monkeypatch, capsys):
    status, out, err = run(
        monkeypatch, capsys, "send", "--from", ALICE, "--to", BOB,
        "--to", "someone@example.com", *smtp_options(servers), stdin="x\n",
    )
    assert status == 1
    assert out.splitlines()[0].startswith(f"accepted  {BOB}  (250")
    assert out.splitlines()[1].startswith("refused   someone@example.com  (554 5.7.1")
    assert one_line(err) == "pochta send: 1 of 2 recipients were refused"
    servers.wait_for_count(BOB, 1)


def test_send_transcript_shows_the_dialogue_without_the_password(servers, monkeypatch, capsys):
    status, _out, err = run(
        monkeypatch, capsys, "send", "--from", ALICE, "--to", BOB, "--transcript",
        *smtp_options(servers), stdin="hello\n",
    )
    assert status == 0
    assert_redacted_transcript(err, servers.users[ALICE])
    said = [line.split(" ", 2)[2] for line in err.splitlines()]
    assert "C: STARTTLS" in said and "S: 235 2.7.0 Authentication successful" in said
    assert "C: MAIL FROM:<alice@pochta.test> SIZE=" in "\n".join(said)
    assert any(re.fullmatch(r"C: <message data, \d+ bytes>", line) for line in said)
    assert said[-2:] == ["C: QUIT", "S: 221 2.0.0 Bye"]


def test_wrong_password_is_a_one_line_auth_error(servers, monkeypatch, capsys):
    monkeypatch.setenv("POCHTA_PASSWORD", "wrong")
    status, _out, err = run(
        monkeypatch, capsys, "send", "--from", ALICE, "--to", BOB, *smtp_options(servers),
        stdin="x\n",
    )
    assert status == 1
    assert one_line(err).startswith("pochta send: AuthFailed: ")
    assert "535 5.7.8" in err


def test_without_the_ca_file_the_certificate_is_not_trusted(servers, monkeypatch, capsys):
    monkeypatch.delenv("POCHTA_CA_FILE")
    status, _out, err = run(
        monkeypatch, capsys, "send", "--from", ALICE, "--to", BOB, *smtp_options(servers),
        stdin="x\n",
    )
    assert status == 1
    assert one_line(err).startswith("pochta send: TLSFailed: the TLS certificate of 127.0.0.1")
    assert servers.count(BOB) == 0


# --- pochta fetch -------------------------------------------------------------------------


def seed(servers: RealServers, user: str, count: int) -> list[bytes]:
    raws = [
        b"From: bob@pochta.test\r\nSubject: seeded %d\r\n\r\nbody %d\r\n.dot line\r\n" % (n, n)
        for n in range(count)
    ]
    servers.deliver_many(user, raws)
    return raws


def saved(directory: Path) -> list[bytes]:
    return sorted(path.read_bytes() for path in directory.glob("*.eml"))


def test_fetch_saves_new_messages_and_keeps_them_on_the_server(
    servers, monkeypatch, capsys, tmp_path
):
    raws = seed(servers, ALICE, 3)
    dest = tmp_path / "inbox"
    argv = ["fetch", "--user", ALICE, "--dest", str(dest), *pop3_options(servers)]
    assert run(monkeypatch, capsys, *argv) == (0, f"3 new messages saved in {dest}\n", "")
    assert saved(dest) == sorted(raws)
    assert run(monkeypatch, capsys, *argv) == (0, f"0 new messages saved in {dest}\n", "")
    assert servers.count(ALICE) == 3
    # --delete now removes what is already saved, and fetches nothing twice.
    status, out, _err = run(monkeypatch, capsys, *argv, "--delete")
    assert (status, out) == (0, f"0 new messages saved in {dest}\n3 deleted from the server\n")
    assert servers.count(ALICE) == 0
    assert saved(dest) == sorted(raws)


def test_fetch_with_delete_over_stls_from_environment_settings(
    servers, monkeypatch, capsys, tmp_path
):
    raws = seed(servers, ALICE, 2)
    monkeypatch.setenv("POCHTA_POP3_HOST", servers.host)
    monkeypatch.setenv("POCHTA_POP3_PORT", str(servers.pop3_starttls_port))
    monkeypatch.setenv("POCHTA_POP3_SECURITY", "starttls")
    dest = tmp_path / "inbox"
    status, out, err = run(
        monkeypatch, capsys, "fetch", "--user", ALICE, "--dest", str(dest), "--delete",
        "--transcript",
    )
    assert status == 0
    assert out == f"2 new messages saved in {dest}\n2 deleted from the server\n"
    assert saved(dest) == sorted(raws)
    assert servers.count(ALICE) == 0
    assert_redacted_transcript(err, servers.users[ALICE])
    said = [line.split(" ", 2)[2] for line in err.splitlines()]
    assert said.index("C: STLS") < said.index("C: AUTH PLAIN ***") < said.index("C: UIDL")
    assert "C: DELE 1" in said and said[-2] == "C: QUIT"


def test_fetch_with_a_utf8_password(servers, monkeypatch, capsys, tmp_path):
    seed(servers, IVAN, 1)
    monkeypatch.setenv("POCHTA_PASSWORD", servers.users[IVAN])
    status, out, _err = run(
        monkeypatch, capsys, "fetch", "--user", IVAN, "--dest", str(tmp_path),
        *pop3_options(servers),
    )
    assert (status, out) == (0, f"1 new message saved in {tmp_path}\n")


def test_fetch_with_a_wrong_password_is_a_one_line_error(servers, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("POCHTA_PASSWORD", "wrong")
    status, out, err = run(
        monkeypatch, capsys, "fetch", "--user", ALICE, "--dest", str(tmp_path),
        *pop3_options(servers),
    )
    assert (status, out) == (1, "")
    assert one_line(err).startswith("pochta fetch: AuthFailed: ")
    assert "[AUTH] Authentication failed" in err


# --- the installed console script -----------------------------------------------------------


def script_env(servers: RealServers, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POCHTA_")}
    return {**env, "POCHTA_CA_FILE": str(servers.ca_file), **extra}


def test_console_script_sends_and_fetches(servers, tmp_path):
    assert POCHTA.is_file(), f"the console script is not installed at {POCHTA}"
    env = script_env(
        servers,
        POCHTA_PASSWORD=servers.users[BOB],
        POCHTA_SMTP_HOST=servers.host,
        POCHTA_SMTP_PORT=str(servers.smtp_tls_port),
        POCHTA_SMTP_SECURITY="tls",
    )
    sent = subprocess.run(
        [str(POCHTA), "send", "--from", BOB, "--to", ALICE, "--subject", "из консоли",
         "--transcript"],
        input="Сообщение из подпроцесса.\n", capture_output=True, text=True, env=env,
        cwd=tmp_path, timeout=60, check=False,
    )
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.startswith(f"accepted  {ALICE}  (250")
    assert_redacted_transcript(sent.stderr, servers.users[BOB])
    servers.wait_for_count(ALICE, 1)

    dest = tmp_path / "fetched"
    env = script_env(servers, POCHTA_PASSWORD=servers.users[ALICE])
    fetched = subprocess.run(
        [str(POCHTA), "fetch", "--user", ALICE, "--dest", str(dest), "--delete",
         *pop3_options(servers)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60, check=False,
    )
    assert fetched.returncode == 0, fetched.stderr
    assert fetched.stdout == f"1 new message saved in {dest}\n1 deleted from the server\n"
    (path,) = dest.glob("*.eml")
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert message["Subject"] == "из консоли"
    assert message.get_content() == "Сообщение из подпроцесса.\r\n"
    assert servers.count(ALICE) == 0


def test_console_script_reports_a_refused_recipient(servers, tmp_path):
    env = script_env(servers, POCHTA_PASSWORD=servers.users[ALICE])
    result = subprocess.run(
        [str(POCHTA), "send", "--from", ALICE, "--to", "someone@example.com",
         *smtp_options(servers)],
        input="x\n", capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert one_line(result.stderr).startswith("pochta send: RecipientsRefused: ")
