from __future__ import annotations

import datetime as dt

from app.messages.headers import (
    Mailbox,
    decode_mailboxes,
    decode_text,
    first_message_id,
    message_ids,
    parse_date,
)


def test_adjacent_encoded_words_join_without_the_space_between_them():
    assert decode_text("=?utf-8?Q?a?= =?utf-8?Q?b?=") == "ab"


def test_folded_text_is_unfolded():
    assert decode_text("one\r\n two\r\n\tthree") == "one two three"


def test_control_characters_are_removed_from_display_text():
    assert decode_text("a\x00b\x1bc\x7fd") == "abcd"


def test_very_long_values_are_cut():
    assert len(decode_text("x" * 1_000_000)) == 16 * 1024


def test_mailboxes_drop_empty_garbage_and_decode_names():
    mailboxes = decode_mailboxes("=?utf-8?B?0JjQstCw0L0=?= <i@x.ru>, , <>")
    assert mailboxes == [Mailbox("Иван", "i@x.ru")]
    assert mailboxes[0].display == "Иван <i@x.ru>"
    assert Mailbox("", "a@b").display == "a@b"


def test_minus_zero_zone_is_read_as_utc():
    assert parse_date("Mon, 1 Jan 2024 10:00:00 -0000") == dt.datetime(2024, 1, 1, 10,
                                                                        tzinfo=dt.UTC)


def test_message_ids_in_order_and_bare_tokens():
    assert message_ids("<a@x> junk <b@y>") == ["<a@x>", "<b@y>"]
    assert first_message_id("no-brackets@x") == "no-brackets@x"
    assert first_message_id("   ") is None
    assert first_message_id(None) is None
