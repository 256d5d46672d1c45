"""Case 6: sending through the real Postfix, against `smtplib` sending the same bytes.

The message is built once by `app.messages.build_message` (what compose sends); both sides
then connect to the submission port, STARTTLS, log in, send it and QUIT, timed from connect
to QUIT. Pochta's `SMTPClient` pipelines MAIL, every RCPT and DATA when the server offers
PIPELINING (Postfix does); `smtplib` waits for each reply. Between runs Postfix delivers
what was sent and the mailbox is emptied, so no queue builds up.
"""

from __future__ import annotations

import random
import smtplib
import time
from collections.abc import Callable

from app.mail.security import Security
from app.mail.smtp import SMTPClient
from app.mail.transcript import Transcript
from app.messages import Attachment, Draft, OutgoingMessage, build_message
from app.messages.addresses import parse_address
from bench.corpus import Corpus
from bench.plan import Plan
from bench.results import Row, interleaved, progress
from bench.servers import HOST, address, password, plain_tls_context, tls_context
from tests.support.realservers import RealServers

SENDER = "send"
SINK = "sink"
ATTACHMENT_BYTES = 10_000_000
RECIPIENTS = 100


class SendBench:
    def __init__(self, servers: RealServers):
        self.servers = servers
        self.port = servers.smtp_starttls_port
        self.context = tls_context(servers)
        self.reference_context = plain_tls_context(servers)
        self.user = address(SENDER)
        self.password = password(SENDER)

    def smtplib_send(self, message: OutgoingMessage, data: bytes) -> float:
        """smtplib with the finished bytes, written out before the clock starts."""
        started = time.perf_counter()
        smtp = smtplib.SMTP(HOST, self.port, timeout=60)
        smtp.starttls(context=self.reference_context)
        smtp.login(self.user, self.password)
        refused = smtp.sendmail(message.envelope_from, message.envelope_recipients, data)
        smtp.quit()
        elapsed = time.perf_counter() - started
        if refused:
            raise AssertionError(f"smtplib: refused {refused}")
        return elapsed

    def pochta_send(self, message: OutgoingMessage) -> float:
        """What `mailops.send` does, without the web request around it: the message is
        written out (its attachment base64-encoded) while it is sent, inside the clock."""
        started = time.perf_counter()
        with SMTPClient(HOST, self.port, security=Security.STARTTLS, tls_context=self.context,
                        timeout=30, transcript=Transcript("pochta.smtp")) as smtp:
            smtp.login(self.user, self.password)
            result = smtp.send(message.envelope_from, message.envelope_recipients,
                               message, smtputf8=message.needs_smtputf8)
        elapsed = time.perf_counter() - started
        if result.refused or len(result.accepted) != len(message.envelope_recipients):
            raise AssertionError(f"Pochta: refused {result.refused}")
        return elapsed

    def delivered(self, send: Callable[[], float], copies: int) -> float:
        """Send, then wait until Postfix has delivered every copy, and empty the mailbox."""
        elapsed = send()
        self.servers.wait_for_count(address(SINK), copies, timeout=120)
        self.servers.clear(address(SINK))
        return elapsed


def _compare(bench: SendBench, plan: Plan, case: str, what: str, message: OutgoingMessage,
             copies: int, bar: float, reference: str) -> Row:
    progress(f"case {case}: {what}")
    bench.servers.clear(address(SINK))
    data = message.data
    theirs, ours = interleaved(
        plan.repeat,
        lambda: bench.delivered(lambda: bench.smtplib_send(message, data), copies),
        lambda: bench.delivered(lambda: bench.pochta_send(message), copies),
        label=f"case {case}",
    )
    return Row(case=case, what=what, reference=reference, reference_samples=theirs,
               pochta_samples=ours, bar=bar,
               extra={"message": _size(message.size)})


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} KB"


def run(servers: RealServers, plan: Plan, corpus: Corpus) -> list[Row]:
    bench = SendBench(servers)
    rng = random.Random(6)  # noqa: S311 (test data)
    sender = parse_address(address(SENDER))
    body = corpus.text(rng, 2000, "8bit")
    big = build_message(
        Draft(to=[parse_address(address(SINK))], subject="The measurements", body=body),
        sender=sender,
        attachments=[Attachment("measurements.bin", rng.randbytes(ATTACHMENT_BYTES))],
    )
    many = build_message(
        Draft(to=[parse_address(f"{SINK}+{k}@{servers.domain}") for k in range(RECIPIENTS)],
              subject="Seminar on Thursday", body=body),
        sender=sender,
    )
    return [
        _compare(bench, plan, "6a", "send one message with a 10 MB attachment", big, 1, 1.2,
                 "smtplib, same bytes"),
        _compare(bench, plan, "6b", f"send one message to {RECIPIENTS} recipients", many,
                 RECIPIENTS, 1.0, "smtplib (no pipelining), same bytes"),
    ]
