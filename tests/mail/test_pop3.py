"""The POP3 client against scripted fake servers: exact bytes, faults and hostile replies."""

from __future__ import annotations

import io
import re
import time

import pytest

from app.mail.errors import (
    AuthFailed,
    AuthUnavailable,
    CommandRefused,
    ConnectionLost,
    MailTimeout,
    MessageTooLarge,
    ProtocolViolation,
    StartTLSUnavailable,
)
from app.mail.pop3 import POP3Client, response_code
from app.mail.replies import POP3Response
from app.mail.security import Security
from app.mail.transcript import Transcript
from tests.support.scripted import Expect, Hangup, Pause, ScriptedServer, Send, StartTLS

GREETING = Send(b"+OK POP3 ready <1896.697170952@dbc.mtview.ca.us>\r\n")
QUIT = [Expect(b"QUIT"), Send(b"+OK bye\r\n")]


def capa(*names: bytes) -> list:
    return [Expect(b"CAPA"), Send(b"+OK\r\n" + b"".join(n + b"\r\n" for n in names) + b".\r\n")]


def session(*steps: object, caps: tuple[bytes, ...] = (b"USER", b"UIDL", b"TOP")) -> list:
    return [GREETING, *capa(*caps), *steps]


def client(server: ScriptedServer, **kwargs: object) -> POP3Client:
    kwargs.setdefault("security", Security.NONE)
    kwargs.setdefault("timeout", 5.0)
    return POP3Client("127.0.0.1", server.port, **kwargs)


def retr_reply(body: bytes) -> bytes:
    """What a server sends for RETR: status, the dot-stuffed body, the terminator."""
    stuffed = re.sub(rb"(?m)^\.", b"..", body)
    return b"+OK %d octets\r\n" % len(body) + stuffed + b".\r\n"


# -- greeting, CAPA, login --------------------------------------------------------------


def test_capa_is_parsed_with_arguments():
    script = session(*QUIT, caps=(b"TOP", b"UIDL", b"SASL PLAIN LOGIN", b"PIPELINING",
                                  b"RESP-CODES", b"IMPLEMENTATION Fake 1.0"))
    with ScriptedServer(script) as server, client(server) as pop:
        caps = pop.capabilities
    server.verify()
    assert caps.known and caps.pipelining and caps.uidl and caps.top
    assert caps.sasl == {"PLAIN", "LOGIN"}
    assert caps.names["IMPLEMENTATION"] == ("Fake", "1.0")


def test_server_without_capa_still_gets_user_pass():
    script = [GREETING, Expect(b"CAPA"), Send(b"-ERR unknown command\r\n"),
              Expect(b"USER alice"), Send(b"+OK\r\n"), Expect(b"PASS secret"),
              Send(b"+OK logged in\r\n"), *QUIT]
    with ScriptedServer(script) as server, client(server) as pop:
        assert not pop.capabilities.known
        pop.login("alice", "secret")
    server.verify()


def test_sasl_plain_is_preferred_and_carries_a_utf8_password():
    # base64 of "\0alice\0пароль€"
    payload = b"AGFsaWNlANC/0LDRgNC+0LvRjOKCrA=="
    script = session(Expect(re.escape(b"AUTH PLAIN " + payload)), Send(b"+OK welcome\r\n"),
                     *QUIT, caps=(b"USER", b"SASL PLAIN"))
    transcript = Transcript("test.pop3")
    with ScriptedServer(script) as server, client(server, transcript=transcript) as pop:
        pop.login("alice", "пароль€")
    server.verify()
    log = transcript.text()
    assert "AUTH PLAIN ***" in log and payload.decode() not in log


def test_sasl_plain_continuation_is_answered_and_redacted():
    script = session(Expect(rb"AUTH PLAIN \S+"), Send(b"+ \r\n"), Expect(rb"AGFsaWNlAHNlY3JldA=="),
                     Send(b"+OK\r\n"), *QUIT, caps=(b"SASL PLAIN",))
    transcript = Transcript("test.pop3")
    with ScriptedServer(script) as server, client(server, transcript=transcript) as pop:
        pop.login("alice", "secret")
    server.verify()
    assert "AGFsaWNlAHNlY3JldA==" not in transcript.text()


def test_pass_is_redacted_in_the_transcript():
    script = session(Expect(b"USER alice"), Send(b"+OK\r\n"), Expect(b"PASS hunter2"),
                     Send(b"+OK\r\n"), *QUIT)
    transcript = Transcript("test.pop3")
    with ScriptedServer(script) as server, client(server, transcript=transcript) as pop:
        pop.login("alice", "hunter2")
    server.verify()
    log = transcript.text()
    assert "C: PASS ***" in log and "hunter2" not in log
    assert "C: USER alice" in log


def test_wrong_password_is_auth_failed_with_response_code():
    script = session(Expect(b"USER alice"), Send(b"+OK\r\n"), Expect(b"PASS wrong"),
                     Send(b"-ERR [AUTH] Authentication failed.\r\n"), *QUIT)
    with ScriptedServer(script) as server, client(server) as pop:
        with pytest.raises(AuthFailed) as caught:
            pop.login("alice", "wrong")
    server.verify()
    assert response_code(caught.value.reply) == "AUTH"
    assert "Authentication failed" in str(caught.value)


def test_in_use_mailbox_is_reported_with_its_code():
    assert response_code(POP3Response(False, "[IN-USE] Mailbox locked")) == "IN-USE"
    assert response_code(POP3Response(False, "no code here")) is None


def test_apop_uses_the_greeting_timestamp():
    # RFC 1939's example: secret "tanstaaf" with the greeting timestamp above
    script = session(Expect(b"APOP mrose c4c9334bac560ecc979e58001b3e22fb"), Send(b"+OK\r\n"),
                     *QUIT)
    transcript = Transcript("test.pop3")
    with ScriptedServer(script) as server, client(server, transcript=transcript) as pop:
        pop.apop("mrose", "tanstaaf")
    server.verify()
    assert "c4c9334bac560ecc979e58001b3e22fb" not in transcript.text()


def test_no_usable_login_method_is_auth_unavailable():
    script = session(*QUIT, caps=(b"UIDL", b"SASL GSSAPI"))
    with ScriptedServer(script) as server, client(server) as pop:
        with pytest.raises(AuthUnavailable, match="GSSAPI"):
            pop.login("alice", "secret")
    server.verify()


def test_malformed_status_line_is_a_protocol_violation():
    with ScriptedServer([Send(b"HELLO I am a POP3 server\r\n")]) as server:
        with pytest.raises(ProtocolViolation):
            client(server).connect()


# -- STLS -------------------------------------------------------------------------------


def test_stls_upgrades_and_asks_capa_again(tls):
    script = [GREETING, *capa(b"STLS", b"USER"), Expect(b"STLS"), Send(b"+OK begin TLS\r\n"),
              StartTLS(), *capa(b"USER", b"SASL PLAIN", b"PIPELINING"), *QUIT]
    server = ScriptedServer(script, tls_context=tls.server)
    with server, client(server, security=Security.STARTTLS, tls_context=tls.client) as pop:
        assert pop.tls_active
        assert pop.capabilities.pipelining and not pop.capabilities.stls
    server.verify()


def test_stls_discards_injected_response(tls):
    """A "+OK" smuggled after the STLS answer must not be taken as the answer to CAPA."""
    script = [GREETING, *capa(b"STLS"), Expect(b"STLS"),
              Send(b"+OK begin TLS\r\n+OK\r\nSASL EVIL\r\n.\r\n"), StartTLS(),
              *capa(b"USER"), *QUIT]
    transcript = Transcript("test.pop3")
    server = ScriptedServer(script, tls_context=tls.server)
    with server, client(server, security=Security.STARTTLS, tls_context=tls.client,
                        transcript=transcript) as pop:
        assert pop.capabilities.has("USER")
        assert not pop.capabilities.sasl
    server.verify()
    assert any("discarded 19 bytes" in line for line in transcript.lines())


def test_missing_stls_is_an_error_and_no_password_is_sent(tls):
    script = session(*QUIT)
    server = ScriptedServer(script, tls_context=tls.server)
    with server, pytest.raises(StartTLSUnavailable, match="does not offer STLS"):
        client(server, security=Security.STARTTLS, tls_context=tls.client).connect()
    assert b"PASS" not in server.all_received and b"USER" not in server.all_received


def test_implicit_tls_session(tls):
    script = session(*QUIT)
    server = ScriptedServer(script, tls_context=tls.server, implicit_tls=True)
    with server, client(server, security=Security.TLS, tls_context=tls.client) as pop:
        assert pop.tls_active
    server.verify()


# -- listings and retrieval ----------------------------------------------------------------


def test_stat_list_and_uidl():
    script = session(
        Expect(b"STAT"), Send(b"+OK 2 320\r\n"),
        Expect(b"LIST"), Send(b"+OK 2 messages\r\n1 120\r\n2 200\r\n.\r\n"),
        Expect(b"UIDL"),
        Send(b"+OK\r\n1 whqtswO00WBw418f9t5JxYwZ\r\n2 QhdPYR:00WBw1Ph7x7\r\n.\r\n"),
        Expect(b"UIDL 2"), Send(b"+OK 2 QhdPYR:00WBw1Ph7x7\r\n"),
        Expect(b"LIST 1"), Send(b"+OK 1 120\r\n"), *QUIT)
    with ScriptedServer(script) as server, client(server) as pop:
        assert pop.stat() == (2, 320)
        assert pop.list() == {1: 120, 2: 200}
        assert pop.uidl() == {1: "whqtswO00WBw418f9t5JxYwZ", 2: "QhdPYR:00WBw1Ph7x7"}
        assert pop.uidl_one(2) == "QhdPYR:00WBw1Ph7x7"
        assert pop.list_one(1) == 120
    server.verify()


def test_malformed_uidl_listing_is_a_protocol_violation():
    script = session(Expect(b"UIDL"), Send(b"+OK\r\n1 a b c\r\n.\r\n"))
    with ScriptedServer(script) as server, client(server) as pop:
        with pytest.raises(ProtocolViolation, match="UIDL"):
            pop.uidl()


def test_retr_unstuffs_dots_and_keeps_every_byte():
    body = (b"Subject: dots\r\n\r\n.leading dot\r\n..two\r\n.\r\n"
            b"bare\rCR and \x00NUL and \xff\xfe 8-bit\r\nbare LF\nlast\r\n")
    script = session(Expect(b"RETR 1"), Send(retr_reply(body)), *QUIT)
    with ScriptedServer(script) as server, client(server) as pop:
        assert pop.retr_bytes(1) == body
    server.verify()


def test_retr_of_an_empty_message():
    script = session(Expect(b"RETR 1"), Send(b"+OK 0 octets\r\n.\r\n"), Expect(b"NOOP"),
                     Send(b"+OK\r\n"), *QUIT)
    with ScriptedServer(script) as server, client(server) as pop:
        assert pop.retr_bytes(1) == b""
        pop.noop()
    server.verify()


def test_retr_streams_a_large_message_into_the_sink():
    body = b"".join(b"line %06d .with text\r\n" % i for i in range(100_000))
    script = session(Expect(b"RETR 1"), Send(retr_reply(body)), *QUIT)
    sink = io.BytesIO()
    with ScriptedServer(script) as server, client(server) as pop:
        assert pop.retr(1, sink) == len(body)
    server.verify()
    assert sink.getvalue() == body


def test_retr_over_the_size_limit_stops_and_breaks_the_connection():
    body = b"x" * 70 + b"\r\n"
    script = session(Expect(b"RETR 1"), Send(retr_reply(body * 2000)), Pause(0.5))
    with ScriptedServer(script) as server, client(server, max_message_bytes=10_000) as pop:
        with pytest.raises(MessageTooLarge):
            pop.retr(1, io.BytesIO())
        with pytest.raises(ConnectionLost, match="no longer usable"):
            pop.noop()


def test_endless_line_in_a_message_is_bounded():
    script = session(Expect(b"RETR 1"), Send(b"+OK\r\n" + b"z" * 300_000), Pause(1))
    with ScriptedServer(script) as server, client(server, max_message_bytes=100_000) as pop:
        with pytest.raises(MessageTooLarge):
            pop.retr(1, io.BytesIO())


def test_connection_dropped_mid_retr_is_connection_lost():
    script = session(Expect(b"RETR 1"), Send(b"+OK 5000 octets\r\nSubject: x\r\n\r\npart"),
                     Hangup())
    with ScriptedServer(script) as server, client(server) as pop:
        with pytest.raises(ConnectionLost):
            pop.retr(1, io.BytesIO())
    server.verify()


def test_stalled_server_times_out():
    script = session(Expect(b"RETR 1"), Send(b"+OK\r\nSubject: x\r\n"), Pause(3))
    with ScriptedServer(script) as server, client(server, timeout=0.5) as pop:
        started = time.monotonic()
        with pytest.raises(MailTimeout):
            pop.retr(1, io.BytesIO())
        elapsed = time.monotonic() - started
    assert elapsed < 2


def test_status_line_over_the_cap_is_refused():
    with ScriptedServer([Send(b"+OK " + b"a" * 50_000 + b"\r\n")]) as server:
        with pytest.raises(ProtocolViolation, match="longer"):
            client(server, max_line=4096).connect()


def test_top_returns_headers_and_some_lines():
    top = b"Subject: x\r\nFrom: a@b\r\n\r\nfirst line\r\n"
    script = session(Expect(b"TOP 3 1"), Send(retr_reply(top)), *QUIT)
    with ScriptedServer(script) as server, client(server) as pop:
        assert pop.top(3, 1) == top
    server.verify()


def test_refused_command_carries_the_server_words():
    script = session(Expect(b"RETR 9"), Send(b"-ERR no such message\r\n"), *QUIT)
    with ScriptedServer(script) as server, client(server) as pop:
        with pytest.raises(CommandRefused, match="no such message"):
            pop.retr_bytes(9)
    server.verify()


# -- pipelining ---------------------------------------------------------------------------

BODIES = {n: b"Subject: message %d\r\n\r\n.body %d\r\n" % (n, n) for n in (1, 2, 3, 4)}


def test_pipelined_retr_sends_the_window_before_reading():
    """The server answers nothing until all four RETRs are in: a client that waited for
    each message before asking for the next would time out."""
    script = session(
        *(Expect(b"RETR %d" % n) for n in BODIES),
        Send(b"".join(retr_reply(BODIES[n]) for n in BODIES)), *QUIT,
        caps=(b"USER", b"PIPELINING"))
    with ScriptedServer(script) as server, client(server, timeout=2) as pop:
        results = list(pop.retr_many(BODIES, lambda n: io.BytesIO()))
    server.verify()
    assert [r.number for r in results] == [1, 2, 3, 4]
    assert {r.number: r.sink.getvalue() for r in results} == BODIES


def test_pipelined_retr_keeps_at_most_the_window_in_flight():
    script = session(
        Expect(b"RETR 1"), Expect(b"RETR 2"), Send(retr_reply(BODIES[1])),
        Expect(b"RETR 3"), Send(retr_reply(BODIES[2])), Expect(b"RETR 4"),
        Send(retr_reply(BODIES[3]) + retr_reply(BODIES[4])), *QUIT,
        caps=(b"PIPELINING", b"USER"))
    with ScriptedServer(script) as server, client(server, timeout=2) as pop:
        results = list(pop.retr_many(BODIES, lambda n: io.BytesIO(), window=2))
    server.verify()
    assert [r.sink.getvalue() for r in results] == list(BODIES.values())


def test_without_pipelining_one_retr_at_a_time():
    script = session(*(step for n in BODIES for step in (
        Expect(b"RETR %d" % n), Pause(0.05), Send(retr_reply(BODIES[n])))), *QUIT)
    with ScriptedServer(script) as server, client(server) as pop:
        results = list(pop.retr_many(BODIES, lambda n: io.BytesIO()))
    server.verify()
    assert len(results) == 4
    assert all(chunk.count(b"RETR") == 1 for chunk in server.received if b"RETR" in chunk)


def test_one_failed_retr_does_not_stop_the_others():
    script = session(
        Expect(b"RETR 1"), Expect(b"RETR 2"),
        Send(b"-ERR message 1 is gone\r\n" + retr_reply(BODIES[2])), *QUIT,
        caps=(b"PIPELINING",))
    with ScriptedServer(script) as server, client(server) as pop:
        first, second = pop.retr_many([1, 2], lambda n: io.BytesIO())
    server.verify()
    assert first.error is not None and "gone" in first.error.text and first.sink is None
    assert second.error is None and second.sink.getvalue() == BODIES[2]


def test_pipelined_dele_and_quit():
    script = session(Expect(b"DELE 1"), Expect(b"DELE 2"), Expect(b"DELE 3"),
                     Send(b"+OK\r\n+OK\r\n-ERR already deleted\r\n"), *QUIT,
                     caps=(b"PIPELINING",))
    with ScriptedServer(script) as server:
        pop = client(server)
        pop.connect()
        responses = pop.dele_many([1, 2, 3])
        assert pop.quit() == POP3Response(True, "bye")
    server.verify()
    assert [r.ok for r in responses.values()] == [True, True, False]


def test_transcript_summarizes_message_data_and_long_listings():
    listing = b"".join(b"%d uid-%d\r\n" % (n, n) for n in range(1, 101))
    script = session(Expect(b"UIDL"), Send(b"+OK\r\n" + listing + b".\r\n"),
                     Expect(b"RETR 1"), Send(retr_reply(BODIES[1])), *QUIT)
    transcript = Transcript("test.pop3", listing_lines=5)
    with ScriptedServer(script) as server, client(server, transcript=transcript) as pop:
        pop.uidl()
        pop.retr_bytes(1)
    server.verify()
    log = transcript.text()
    assert "S: <95 more lines>" in log
    assert f"S: <message data, {len(BODIES[1])} bytes>" in log
    assert "body 1" not in log


def test_connecting_twice_is_refused_instead_of_leaking_the_first_socket():
    from app.mail.errors import MailError

    with ScriptedServer(session(*QUIT)) as server, client(server) as pop:
        with pytest.raises(MailError, match="already connected"):
            pop.connect()
    server.verify()


def test_time_limit_bounds_a_server_that_answers_just_in_time():
    """Each line comes well within the per-read timeout and fast enough in bytes, but the
    listing never ends: the session's time limit stops it."""
    line = b"%d " + b"u" * 2000 + b"\r\n"
    drip = [step for n in range(1, 40) for step in (Pause(0.1), Send(line % n))]
    script = session(Expect(b"UIDL"), Send(b"+OK\r\n"), *drip)
    with ScriptedServer(script) as server:
        pop = client(server, timeout=1.0, time_limit=1.5)
        pop.connect()
        started = time.monotonic()
        with pytest.raises(MailTimeout, match="longer than this operation may take"):
            pop.uidl()
        elapsed = time.monotonic() - started
        pop.close()
    assert elapsed < 2.0


def test_capa_answer_is_capped_far_below_a_mailbox_listing():
    filler = (b"X-FILLER " + b"y" * 60 + b"\r\n") * 2000
    script = [GREETING, Expect(b"CAPA"), Send(b"+OK\r\n" + filler), Pause(0.5)]
    with ScriptedServer(script) as server, pytest.raises(MessageTooLarge):
        client(server).connect()


def test_listing_trickled_a_line_at_a_time_is_cut_off():
    """No single wait reaches the timeout, but the answer crawls: after the timeout the
    body must keep coming at the minimum rate."""
    drip = [step for n in range(1, 40) for step in (Pause(0.3), Send(b"%d u%d\r\n" % (n, n)))]
    script = session(Expect(b"UIDL"), Send(b"+OK\r\n"), *drip)
    with ScriptedServer(script) as server:
        pop = client(server, timeout=1.0)
        pop.connect()
        started = time.monotonic()
        with pytest.raises(MailTimeout):
            pop.uidl()
        elapsed = time.monotonic() - started
        pop.close()
    assert 1.0 <= elapsed < 2.5
