"""The protocol log: format, bounds, and that a hostile server cannot forge lines in it."""

from __future__ import annotations

import logging
import re

from app.mail.transcript import Transcript, data_summary, printable


def test_lines_have_timestamp_and_direction():
    transcript = Transcript("test.transcript")
    transcript.client("EHLO me")
    transcript.server("250 hello")
    first, second = transcript.lines()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} C: EHLO me", first)
    assert second.endswith(" S: 250 hello")


def test_lines_also_go_to_the_logging_module(caplog):
    transcript = Transcript("pochta.smtp")
    with caplog.at_level(logging.DEBUG, logger="pochta.smtp"):
        transcript.client("NOOP")
    assert [r.getMessage() for r in caplog.records] == ["C: NOOP"]


def test_memory_is_bounded_and_the_loss_is_said():
    transcript = Transcript("test.transcript", limit=3)
    for n in range(5):
        transcript.note(f"line {n}")
    lines = transcript.lines()
    assert lines[0] == "(2 earlier lines not kept)"
    assert [line.rsplit(": ", 1)[1] for line in lines[1:]] == ["line 2", "line 3", "line 4"]


def test_control_characters_from_the_server_are_made_visible():
    assert printable(b"250 ok\x1b[31m\rfake") == "250 ok\\x1b[31m\\x0dfake"
    assert printable("ответ\u2028".encode()) == "ответ\\u2028"


def test_data_summary_names_only_the_size():
    assert data_summary(1457) == "<message data, 1457 bytes>"
