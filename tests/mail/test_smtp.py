"""The SMTP client against scripted fake servers: exact bytes, faults and hostile replies."""

from __future__ import annotations

import io
import re
import time

import pytest

from app.mail.errors import (
    AuthFailed,
    AuthUnavailable,
    ConnectFailed,
    ConnectionLost,
    ExtensionUnavailable,
    InvalidAddress,
    MailTimeout,
    MessageRefused,
    MessageTooLarge,
    ProtocolViolation,
    RecipientsRefused,
    SenderRefused,
    StartTLSUnavailable,
    TLSFailed,
)
from app.mail.security import Security
from app.mail.smtp import Capabilities, SMTPClient
from app.mail.transcript import Transcript
from tests.support.scripted import (
    Expect,
    Hangup,
    Pause,
    ReadData,
    ScriptedServer,
    Send,
    StartTLS,
)

GREETING = Send(b"220 mx.test ESMTP ready\r\n")
EHLO = Expect(rb"EHLO \S+")
QUIT = [Expect(b"QUIT"), Send(b"221 bye\r\n")]


def ehlo_reply(*features: bytes) -> Send:
    lines = [b"mx.test greets you", *features]
    body = b"".join(b"250-" + line + b"\r\n" for line in lines[:-1])
    return Send(body + b"250 " + lines[-1] + b"\r\n")


PLAIN_FEATURES = (b"8BITMIME", b"SIZE 1000000", b"AUTH PLAIN LOGIN")


def client(server: ScriptedServer, **kwargs: object) -> SMTPClient:
    kwargs.setdefault("security", Security.NONE)
    kwargs.setdefault("timeout", 5.0)
    return SMTPClient("127.0.0.1", server.port, local_hostname="client.test", **kwargs)


def plain_session(*steps: object, features: tuple[bytes, ...] = PLAIN_FEATURES) -> list:
    return [GREETING, EHLO, ehlo_reply(*features), *steps]


# -- greeting, EHLO, capabilities -------------------------------------------------------


def test_multiline_ehlo_reply_becomes_capabilities():
    script = plain_session(*QUIT, features=(b"PIPELINING", b"SIZE 35882577", b"AUTH=LOGIN",
                                            b"AUTH PLAIN CRAM-MD5", b"SMTPUTF8", b"8BITMIME"))
    with ScriptedServer(script) as server, client(server) as smtp:
        caps = smtp.capabilities
    server.verify()
    assert caps.pipelining and caps.smtputf8 and caps.eightbitmime
    assert caps.size == 35882577
    assert caps.auth_mechanisms == {"PLAIN", "CRAM-MD5", "LOGIN"}
    assert not caps.starttls


def test_size_without_a_number_means_no_fixed_limit():
    assert Capabilities({"SIZE": ""}).size == 0
    assert Capabilities({}).size is None


def test_server_without_esmtp_gets_helo():
    script = [GREETING, EHLO, Send(b"502 what is EHLO\r\n"), Expect(b"HELO client.test"),
              Send(b"250 hello\r\n"), *QUIT]
    with ScriptedServer(script) as server, client(server) as smtp:
        assert not smtp.capabilities.esmtp
    server.verify()


def test_negative_greeting_is_a_connect_error_with_the_server_words():
    with ScriptedServer([Send(b"554 no service for you\r\n")]) as server:
        with pytest.raises(ConnectFailed) as caught:
            client(server).connect()
    assert caught.value.code == 554
    assert "no service for you" in str(caught.value)


def test_reply_with_mixed_codes_is_a_protocol_violation():
    script = [GREETING, EHLO, Send(b"250-mx.test\r\n251 PIPELINING\r\n")]
    with ScriptedServer(script) as server, pytest.raises(ProtocolViolation, match="mixed"):
        client(server).connect()


def test_garbage_reply_is_a_protocol_violation():
    with ScriptedServer([Send(b"hello there\r\n")]) as server, pytest.raises(ProtocolViolation):
        client(server).connect()


def test_reply_line_over_the_cap_is_refused():
    script = [Send(b"220-" + b"x" * 20000 + b"\r\n220 ok\r\n")]
    with ScriptedServer(script) as server, pytest.raises(ProtocolViolation, match="longer"):
        client(server, max_line=4096).connect()


def test_reply_without_newline_forever_is_refused_at_the_cap():
    script = [Send(b"220 " + b"y" * 100_000)]
    with ScriptedServer(script) as server, pytest.raises(ProtocolViolation, match="longer"):
        client(server, max_line=8192).connect()


def test_endless_multiline_reply_is_cut_off():
    script = [GREETING, EHLO, Send(b"250-x\r\n" * 1000)]
    with ScriptedServer(script) as server, pytest.raises(ProtocolViolation, match="over"):
        client(server).connect()


def test_stalled_server_times_out_within_the_timeout():
    with ScriptedServer([Pause(3)]) as server:
        started = time.monotonic()
        with pytest.raises(MailTimeout):
            client(server, timeout=0.5).connect()
        elapsed = time.monotonic() - started
    assert elapsed < 2


def test_trickling_server_cannot_stretch_one_line_past_the_timeout():
    script = [Send(b"2"), Pause(0.3), Send(b"2"), Pause(0.3), Send(b"0"), Pause(0.3),
              Send(b" hi\r\n")]
    with ScriptedServer(script) as server, pytest.raises(MailTimeout):
        client(server, timeout=0.5).connect()


def test_dropped_connection_is_connection_lost():
    with ScriptedServer([GREETING, EHLO, Hangup()]) as server, pytest.raises(ConnectionLost):
        client(server).connect()


def test_nothing_listening_is_connect_failed():
    with ScriptedServer([]) as server:
        port = server.port
    with pytest.raises(ConnectFailed, match="cannot connect"):
        SMTPClient("127.0.0.1", port, security=Security.NONE, timeout=2).connect()


# -- TLS --------------------------------------------------------------------------------


def test_starttls_upgrades_verifies_and_says_ehlo_again(tls):
    script = [GREETING, EHLO, ehlo_reply(b"STARTTLS", b"PIPELINING"), Expect(b"STARTTLS"),
              Send(b"220 go ahead\r\n"), StartTLS(), EHLO,
              ehlo_reply(b"AUTH PLAIN", b"SIZE 500"), *QUIT]
    server = ScriptedServer(script, tls_context=tls.server)
    with server, client(server, security=Security.STARTTLS, tls_context=tls.client) as smtp:
        assert smtp.tls_active
        assert smtp.capabilities.auth_mechanisms == {"PLAIN"}
        assert not smtp.capabilities.pipelining  # what was said in plaintext is forgotten
    server.verify()


def test_starttls_discards_injected_reply(tls):
    """A reply smuggled in the same packet as "220 go ahead" must not be read as the answer
    to the EHLO sent inside TLS (CVE-2011-0411 and friends)."""
    script = [GREETING, EHLO, ehlo_reply(b"STARTTLS"), Expect(b"STARTTLS"),
              Send(b"220 go ahead\r\n250-injected\r\n250 AUTH PLAIN\r\n"), StartTLS(), EHLO,
              ehlo_reply(b"SIZE 100"), *QUIT]
    transcript = Transcript("test.smtp")
    server = ScriptedServer(script, tls_context=tls.server)
    with server, client(server, security=Security.STARTTLS, tls_context=tls.client,
                        transcript=transcript) as smtp:
        assert smtp.capabilities.size == 100
        assert not smtp.capabilities.auth_mechanisms
    server.verify()
    assert any("discarded 30 bytes" in line for line in transcript.lines())


def test_missing_starttls_is_an_error_not_plaintext(tls):
    script = plain_session(*QUIT)
    server = ScriptedServer(script, tls_context=tls.server)
    with server, pytest.raises(StartTLSUnavailable, match="does not offer STARTTLS"):
        client(server, security=Security.STARTTLS, tls_context=tls.client).connect()
    assert b"AUTH" not in server.all_received


def test_refused_starttls_is_a_tls_error(tls):
    script = [GREETING, EHLO, ehlo_reply(b"STARTTLS"), Expect(b"STARTTLS"),
              Send(b"454 TLS not available now\r\n")]
    server = ScriptedServer(script, tls_context=tls.server)
    with server, pytest.raises(TLSFailed) as caught:
        client(server, security=Security.STARTTLS, tls_context=tls.client).connect()
    assert caught.value.code == 454


def test_implicit_tls_with_untrusted_certificate_fails_clearly(tls, foreign_tls):
    server = ScriptedServer([GREETING], tls_context=foreign_tls, implicit_tls=True)
    with server, pytest.raises(TLSFailed, match="not trusted"):
        client(server, security=Security.TLS, tls_context=tls.client).connect()


def test_implicit_tls_with_certificate_for_another_host_fails(wrong_host_tls):
    server = ScriptedServer([GREETING], tls_context=wrong_host_tls.server, implicit_tls=True)
    with server, pytest.raises(TLSFailed, match="not trusted"):
        client(server, security=Security.TLS, tls_context=wrong_host_tls.client).connect()


def test_implicit_tls_session(tls):
    script = [GREETING, EHLO, ehlo_reply(b"AUTH PLAIN"), *QUIT]
    server = ScriptedServer(script, tls_context=tls.server, implicit_tls=True)
    with server, client(server, security=Security.TLS, tls_context=tls.client) as smtp:
        assert smtp.tls_active
    server.verify()


# -- AUTH -------------------------------------------------------------------------------


def test_auth_plain_sends_utf8_credentials_and_redacts_them():
    # base64 of "\0юзер\0пароль-Ü"
    payload = b"ANGO0LfQtdGAANC/0LDRgNC+0LvRjC3DnA=="
    script = plain_session(
        Expect(re.escape(b"AUTH PLAIN " + payload)), Send(b"235 2.7.0 ok\r\n"), *QUIT
    )
    transcript = Transcript("test.smtp")
    with ScriptedServer(script) as server, client(server, transcript=transcript) as smtp:
        smtp.login("юзер", "пароль-Ü")
    server.verify()
    log = transcript.text()
    assert "AUTH PLAIN ***" in log
    assert payload.decode() not in log and "пароль" not in log


def test_auth_login_answers_both_challenges_and_redacts_them():
    script = plain_session(
        Expect(b"AUTH LOGIN"), Send(b"334 VXNlcm5hbWU6\r\n"), Expect(b"YWxpY2U="),
        Send(b"334 UGFzc3dvcmQ6\r\n"), Expect(b"c2VjcmV0"), Send(b"235 ok\r\n"), *QUIT,
        features=(b"AUTH LOGIN",))
    transcript = Transcript("test.smtp")
    with ScriptedServer(script) as server, client(server, transcript=transcript) as smtp:
        smtp.login("alice", "secret")
    server.verify()
    log = transcript.text()
    for secret in ("YWxpY2U=", "c2VjcmV0", "VXNlcm5hbWU6", "UGFzc3dvcmQ6"):
        assert secret not in log
    assert log.count("334 ***") == 2


def test_cram_md5_when_nothing_else_is_offered():
    # RFC 2195's example: user tim, password tanstaaftanstaaf
    challenge = b"PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+"
    answer = b"dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw"
    script = plain_session(Expect(b"AUTH CRAM-MD5"), Send(b"334 " + challenge + b"\r\n"),
                           Expect(answer), Send(b"235 ok\r\n"), *QUIT,
                           features=(b"AUTH CRAM-MD5",))
    with ScriptedServer(script) as server, client(server) as smtp:
        smtp.login("tim", "tanstaaftanstaaf")
    server.verify()


def test_wrong_password_is_auth_failed_with_server_words():
    script = plain_session(Expect(rb"AUTH PLAIN \S+"),
                           Send(b"535 5.7.8 Error: authentication failed: bad\r\n"), *QUIT)
    with ScriptedServer(script) as server, client(server) as smtp:
        with pytest.raises(AuthFailed) as caught:
            smtp.login("alice", "wrong")
    server.verify()
    assert caught.value.code == 535
    assert "authentication failed: bad" in str(caught.value)


def test_no_auth_on_plaintext_says_to_choose_starttls():
    script = plain_session(*QUIT, features=(b"8BITMIME",))
    with ScriptedServer(script) as server, client(server) as smtp:
        with pytest.raises(AuthUnavailable, match="choose STARTTLS"):
            smtp.login("alice", "secret")
    server.verify()


def test_credentials_never_sent_unencrypted_unless_mode_is_none():
    script = plain_session(*QUIT)
    with ScriptedServer(script) as server:
        smtp = client(server)
        smtp.connect()
        smtp.security = Security.STARTTLS  # as if an upgrade had been skipped
        with pytest.raises(AuthUnavailable, match="unencrypted"):
            smtp.login("alice", "secret")
        smtp.quit()
    server.verify()
    assert b"AUTH" not in server.all_received


# -- sending ------------------------------------------------------------------------------

MESSAGE = b"From: a@x.test\r\nTo: b@y.test\r\nSubject: hi\r\n\r\nHello\r\n"


def test_send_with_pipelining_writes_mail_rcpt_data_before_any_reply():
    """The server answers nothing until it has all four commands: a client that waited for
    the MAIL reply before RCPT would time out here."""
    script = plain_session(
        Expect(rb"MAIL FROM:<a@x\.test> SIZE=\d+"), Expect(b"RCPT TO:<b@y.test>"),
        Expect(b"RCPT TO:<c@y.test>"), Expect(b"DATA"),
        Send(b"250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n"), ReadData(), Send(b"250 queued\r\n"),
        *QUIT, features=(b"PIPELINING", b"SIZE 1000000"))
    with ScriptedServer(script) as server, client(server, timeout=2) as smtp:
        result = smtp.send("a@x.test", ["b@y.test", "c@y.test"], MESSAGE)
    server.verify()
    assert set(result.accepted) == {"b@y.test", "c@y.test"}
    assert not result.partial
    assert server.data == [MESSAGE]


def test_send_without_pipelining_waits_for_each_reply():
    script = plain_session(
        Expect(rb"MAIL FROM:<a@x\.test> SIZE=\d+"), Pause(0.2), Send(b"250 ok\r\n"),
        Expect(b"RCPT TO:<b@y.test>"), Send(b"250 ok\r\n"), Expect(b"DATA"),
        Send(b"354 go\r\n"), ReadData(), Send(b"250 queued\r\n"), *QUIT)
    with ScriptedServer(script) as server, client(server) as smtp:
        smtp.send("a@x.test", ["b@y.test"], MESSAGE)
    server.verify()
    mail_chunk = next(chunk for chunk in server.received if b"MAIL FROM" in chunk)
    assert b"RCPT" not in mail_chunk


def test_some_recipients_refused_is_a_partial_success():
    script = plain_session(
        Expect(rb"MAIL FROM:<a@x\.test>.*"), Expect(b"RCPT TO:<b@y.test>"),
        Expect(b"RCPT TO:<nobody@y.test>"), Expect(b"DATA"),
        Send(b"250 ok\r\n250 ok\r\n550 5.1.1 <nobody@y.test>: user unknown\r\n354 go\r\n"),
        ReadData(), Send(b"250 queued\r\n"), *QUIT, features=(b"PIPELINING",))
    with ScriptedServer(script) as server, client(server) as smtp:
        result = smtp.send("a@x.test", ["b@y.test", "nobody@y.test"], MESSAGE)
    server.verify()
    assert result.partial
    assert list(result.accepted) == ["b@y.test"]
    assert result.refused["nobody@y.test"].code == 550
    assert "user unknown" in result.refused["nobody@y.test"].text


def test_every_recipient_refused_raises_and_sends_no_data():
    script = plain_session(
        Expect(rb"MAIL FROM:<a@x\.test>.*"), Expect(b"RCPT TO:<n@y.test>"), Expect(b"DATA"),
        Send(b"250 ok\r\n550 no such user\r\n554 no valid recipients\r\n"),
        Expect(b"RSET"), Send(b"250 ok\r\n"), *QUIT, features=(b"PIPELINING",))
    with ScriptedServer(script) as server, client(server) as smtp:
        with pytest.raises(RecipientsRefused) as caught:
            smtp.send("a@x.test", ["n@y.test"], MESSAGE)
    server.verify()
    assert caught.value.refused["n@y.test"].code == 550


def test_data_accepted_after_all_recipients_refused_is_ended_empty():
    """RFC 2920 3.1: a server that answers 354 although no RCPT succeeded gets a lone "."."""
    script = plain_session(
        Expect(rb"MAIL FROM:<a@x\.test>.*"), Expect(b"RCPT TO:<n@y.test>"), Expect(b"DATA"),
        Send(b"250 ok\r\n550 no such user\r\n354 go\r\n"), Expect(b"\\."),
        Send(b"554 no valid recipients\r\n"), Expect(b"RSET"), Send(b"250 ok\r\n"), *QUIT,
        features=(b"PIPELINING",))
    with ScriptedServer(script) as server, client(server) as smtp:
        with pytest.raises(RecipientsRefused):
            smtp.send("a@x.test", ["n@y.test"], MESSAGE)
    server.verify()
    assert b"Subject" not in server.all_received


def test_refused_sender_raises_sender_refused():
    script = plain_session(Expect(rb"MAIL FROM:<a@x\.test>.*"), Send(b"553 not yours\r\n"),
                           *QUIT)
    with ScriptedServer(script) as server, client(server) as smtp:
        with pytest.raises(SenderRefused) as caught:
            smtp.send("a@x.test", ["b@y.test"], MESSAGE)
    server.verify()
    assert caught.value.code == 553


def test_refused_message_raises_message_refused_with_server_words():
    script = plain_session(
        Expect(rb"MAIL FROM:.*"), Send(b"250 ok\r\n"), Expect(rb"RCPT TO:.*"),
        Send(b"250 ok\r\n"), Expect(b"DATA"), Send(b"354 go\r\n"), ReadData(),
        Send(b"554 5.7.1 spam detected\r\n"), *QUIT)
    with ScriptedServer(script) as server, client(server) as smtp:
        with pytest.raises(MessageRefused, match="spam detected"):
            smtp.send("a@x.test", ["b@y.test"], MESSAGE)
    server.verify()


def accept_any_message(features: tuple[bytes, ...] = (b"PIPELINING", b"8BITMIME")) -> list:
    return plain_session(
        Expect(rb"MAIL FROM:.*"), Expect(rb"RCPT TO:.*"), Expect(b"DATA"),
        Send(b"250 ok\r\n250 ok\r\n354 go\r\n"), ReadData(), Send(b"250 ok\r\n"), *QUIT,
        features=features)


def test_data_normalizes_bare_cr_and_lf_and_stuffs_dots():
    message = b"Subject: x\n\n.starts with a dot\rbare CR\nbare LF\r\n..two dots\r\nend"
    with ScriptedServer(accept_any_message()) as server, client(server) as smtp:
        smtp.send("a@x.test", ["b@y.test"], message)
    server.verify()
    assert server.data == [
        b"Subject: x\r\n\r\n..starts with a dot\r\nbare CR\r\nbare LF\r\n...two dots\r\nend\r\n"
    ]


def test_smuggled_end_of_data_stays_inside_the_message():
    """The 2023 SMTP smuggling payload: a bare-LF "." line followed by a second transaction."""
    smuggled = (b"Subject: one\r\n\r\nbody\n.\nMAIL FROM:<evil@x.test>\r\n"
                b"RCPT TO:<victim@y.test>\r\nDATA\r\n\r\n.\r\nafter")
    with ScriptedServer(accept_any_message()) as server, client(server) as smtp:
        smtp.send("a@x.test", ["b@y.test"], smuggled)
    server.verify()
    (data,) = server.data
    assert b"\r\n..\r\nMAIL FROM:<evil@x.test>" in data
    assert data.endswith(b"after\r\n")
    assert server.all_received.count(b"\r\n.\r\n") == 1


def test_message_from_a_file_object_is_streamed_whole():
    body = b"".join(b"line %d of a long message\r\n" % i for i in range(40000))
    message = b"Subject: big\r\n\r\n" + body
    with ScriptedServer(accept_any_message()) as server, client(server) as smtp:
        smtp.send("a@x.test", ["b@y.test"], io.BytesIO(message))
    server.verify()
    assert server.data == [message]


def test_message_over_server_size_is_refused_before_mail_from():
    script = plain_session(*QUIT, features=(b"SIZE 100",))
    with ScriptedServer(script) as server, client(server) as smtp:
        with pytest.raises(MessageTooLarge, match="at most 100"):
            smtp.send("a@x.test", ["b@y.test"], MESSAGE * 5)
    server.verify()
    assert b"MAIL FROM" not in server.all_received


def test_utf8_address_uses_smtputf8_when_offered():
    script = plain_session(
        Expect("MAIL FROM:<иван@пример.рф> BODY=8BITMIME SMTPUTF8".encode()),
        Expect(b"RCPT TO:<b@y.test>"), Expect(b"DATA"),
        Send(b"250 ok\r\n250 ok\r\n354 go\r\n"), ReadData(), Send(b"250 ok\r\n"), *QUIT,
        features=(b"PIPELINING", b"8BITMIME", b"SMTPUTF8"))
    with ScriptedServer(script) as server, client(server) as smtp:
        smtp.send("иван@пример.рф", ["b@y.test"], MESSAGE)
    server.verify()


def test_utf8_header_without_smtputf8_is_a_clear_error():
    message = "Subject: привет\r\n\r\nhi\r\n".encode()
    script = plain_session(*QUIT, features=(b"8BITMIME",))
    with ScriptedServer(script) as server, client(server) as smtp:
        with pytest.raises(ExtensionUnavailable, match="SMTPUTF8"):
            smtp.send("a@x.test", ["b@y.test"], message)
    server.verify()


def test_8bit_body_declares_8bitmime():
    message = "Subject: x\r\nContent-Transfer-Encoding: 8bit\r\n\r\nпривет\r\n".encode()
    script = plain_session(
        Expect(b"MAIL FROM:<a@x.test> BODY=8BITMIME"), Send(b"250 ok\r\n"),
        Expect(rb"RCPT TO:.*"), Send(b"250 ok\r\n"), Expect(b"DATA"), Send(b"354 go\r\n"),
        ReadData(), Send(b"250 ok\r\n"), *QUIT, features=(b"8BITMIME",))
    with ScriptedServer(script) as server, client(server) as smtp:
        smtp.send("a@x.test", ["b@y.test"], message)
    server.verify()
    assert server.data == [message]


def test_8bit_body_without_8bitmime_is_a_clear_error():
    message = "Subject: x\r\n\r\nпривет\r\n".encode()
    script = plain_session(*QUIT, features=(b"SIZE 100000",))
    with ScriptedServer(script) as server, client(server) as smtp:
        with pytest.raises(ExtensionUnavailable, match="8BITMIME"):
            smtp.send("a@x.test", ["b@y.test"], message)
    server.verify()


@pytest.mark.parametrize("address", [
    "b@y.test>\r\nRCPT TO:<evil@z.test", "b@y.test\nDATA", "b@y.test\x00", "<b@y.test>",
    " b@y.test",
])
def test_address_that_could_inject_a_command_is_refused_before_sending(address):
    script = plain_session(*QUIT)
    with ScriptedServer(script) as server, client(server) as smtp:
        with pytest.raises(InvalidAddress):
            smtp.send("a@x.test", [address], MESSAGE)
    server.verify()
    assert b"MAIL FROM" not in server.all_received


def test_quit_is_sent_when_the_block_fails():
    script = plain_session(*QUIT)
    with ScriptedServer(script) as server:
        with pytest.raises(RuntimeError), client(server):
            raise RuntimeError("boom")
    server.verify()


def test_transcript_records_dialogue_with_data_summarized():
    transcript = Transcript("test.smtp")
    with ScriptedServer(accept_any_message()) as server:
        with client(server, transcript=transcript) as smtp:
            smtp.send("a@x.test", ["b@y.test"], MESSAGE)
    server.verify()
    lines = transcript.lines()
    assert any(line.endswith("C: MAIL FROM:<a@x.test>") for line in lines)
    assert any(line.endswith(f"C: <message data, {len(MESSAGE)} bytes>") for line in lines)
    assert any(line.endswith("S: 250 ok") for line in lines)
    assert not any("Hello" in line for line in lines)


def test_connecting_twice_is_refused_instead_of_leaking_the_first_socket():
    from app.mail.errors import MailError

    with ScriptedServer(plain_session(*QUIT)) as server, client(server) as smtp:
        with pytest.raises(MailError, match="already connected"):
            smtp.connect()
    server.verify()
