"""Adding, listing, reading, flagging and deleting messages in one account's mailbox."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.store import MAX_PER_PAGE, Mailbox, Page
from tests.store.conftest import ALICE, message

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def subjects(page: Page) -> list[str]:
    return [item.subject for item in page.items]


def test_added_message_reads_back_with_every_field(mailbox: Mailbox) -> None:
    date = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone(timedelta(hours=3)))
    new = message(
        "uid-1",
        subject="Отчёт за май",
        from_name="Иван Петров",
        from_addr="ivan@example.org",
        to="Alice <alice@example.org>",
        cc="bob@example.org",
        date=date,
        message_id="<m1@example.org>",
        has_attachments=True,
        snippet="Привет, вот отчёт",
    )
    [message_id] = mailbox.add_messages([new])
    got = mailbox.get(message_id)

    assert got is not None
    assert (got.id, got.uid, got.subject) == (message_id, "uid-1", "Отчёт за май")
    assert (got.from_name, got.from_addr) == ("Иван Петров", "ivan@example.org")
    assert (got.to, got.cc) == ("Alice <alice@example.org>", "bob@example.org")
    assert got.date == date
    assert got.date is not None and got.date.utcoffset() == timedelta(hours=3)
    assert got.size == len(new.raw)  # type: ignore[arg-type]
    assert got.has_attachments is True
    assert got.seen is False
    assert got.snippet == "Привет, вот отчёт"
    assert got.message_id == "<m1@example.org>"
    assert got.stored_at.tzinfo is not None
    assert abs(got.stored_at - datetime.now(UTC)) < timedelta(minutes=1)


def test_public_ids_are_random_url_safe_and_not_the_rowid(mailbox: Mailbox) -> None:
    ids = mailbox.add_messages([message(f"u{i}") for i in range(20)])

    assert len(set(ids)) == 20
    for message_id in ids:
        assert re.fullmatch(r"[A-Za-z0-9_-]{16}", message_id)
        assert not message_id.isdigit()


def test_a_uid_already_stored_is_skipped_in_a_later_batch(mailbox: Mailbox) -> None:
    first = mailbox.add_messages([message("a", subject="original"), message("b")])
    second = mailbox.add_messages([message("a", subject="again"), message("c")])

    assert len(first) == 2
    assert len(second) == 1
    assert mailbox.count() == 3
    assert sorted(subjects(mailbox.page())) == ["original", "subject b", "subject c"]


def test_a_uid_repeated_inside_one_batch_is_stored_once(mailbox: Mailbox) -> None:
    added = mailbox.add_messages([message("x", subject="first"), message("x", subject="second")])

    assert len(added) == 1
    assert subjects(mailbox.page()) == ["first"]


def test_known_uids_lists_every_stored_uid(mailbox: Mailbox) -> None:
    mailbox.add_messages([message("a"), message("b")])

    assert mailbox.known_uids() == {"a", "b"}


def test_empty_batch_adds_nothing(mailbox: Mailbox) -> None:
    assert mailbox.add_messages([]) == []
    assert mailbox.count() == 0


def test_inbox_is_newest_first_by_message_date(mailbox: Mailbox) -> None:
    mailbox.add_messages(
        [
            message("mid", subject="mid", date=T0),
            message("new", subject="new", date=T0 + timedelta(days=1)),
            message("old", subject="old", date=T0 - timedelta(days=1)),
        ]
    )

    assert subjects(mailbox.page()) == ["new", "mid", "old"]


def test_dates_in_other_time_zones_compare_as_instants(mailbox: Mailbox) -> None:
    moscow = timezone(timedelta(hours=3))
    mailbox.add_messages(
        [
            message(
                "a",
                subject="10:00 Moscow = 07:00 UTC",
                date=datetime(2024, 1, 1, 10, tzinfo=moscow),
            ),
            message("b", subject="08:00 UTC", date=datetime(2024, 1, 1, 8, tzinfo=UTC)),
        ]
    )

    assert subjects(mailbox.page()) == ["08:00 UTC", "10:00 Moscow = 07:00 UTC"]


def test_undated_message_orders_by_the_time_it_was_stored(mailbox: Mailbox) -> None:
    mailbox.add_messages(
        [message("future", subject="future", date=datetime.now(UTC) + timedelta(days=1))]
    )
    mailbox.add_messages([message("undated", subject="undated", date=None)])
    mailbox.add_messages([message("past", subject="past", date=datetime(2001, 1, 1, tzinfo=UTC))])

    page = mailbox.page()
    assert subjects(page) == ["future", "undated", "past"]
    undated = page.items[1]
    assert undated.date is None
    assert undated.sort_date == undated.stored_at


def test_same_date_ties_break_by_insertion_order_newest_first(mailbox: Mailbox) -> None:
    mailbox.add_messages([message(f"u{i}", subject=str(i), date=T0) for i in range(5)])
    mailbox.add_messages([message("u5", subject="5", date=T0)])

    assert subjects(mailbox.page()) == ["5", "4", "3", "2", "1", "0"]


def test_naive_date_is_taken_as_utc(mailbox: Mailbox) -> None:
    [message_id] = mailbox.add_messages([message("n", date=datetime(2024, 1, 1, 12))])
    got = mailbox.get(message_id)

    assert got is not None
    assert got.date == datetime(2024, 1, 1, 12, tzinfo=UTC)


def fill(mailbox: Mailbox, n: int) -> None:
    mailbox.add_messages(
        [message(f"u{i:03}", subject=f"{i:03}", date=T0 + timedelta(minutes=i)) for i in range(n)]
    )


def test_pages_split_the_inbox_without_gaps_or_overlap(mailbox: Mailbox) -> None:
    fill(mailbox, 23)
    pages = [mailbox.page(n, per_page=10) for n in (1, 2, 3)]

    assert [len(p.items) for p in pages] == [10, 10, 3]
    seen = [s for p in pages for s in subjects(p)]
    assert seen == [f"{i:03}" for i in range(22, -1, -1)]
    assert all(p.total == 23 and p.pages == 3 for p in pages)
    assert (pages[0].has_prev, pages[0].has_next) == (False, True)
    assert (pages[1].has_prev, pages[1].has_next) == (True, True)
    assert (pages[2].has_prev, pages[2].has_next) == (True, False)


@pytest.mark.parametrize(("asked", "given"), [(0, 1), (-5, 1), (4, 3), (10**9, 3)])
def test_page_number_is_clamped_into_range(mailbox: Mailbox, asked: int, given: int) -> None:
    fill(mailbox, 23)
    page = mailbox.page(asked, per_page=10)

    assert page.page == given
    assert page.items == mailbox.page(given, per_page=10).items


def test_per_page_is_clamped(mailbox: Mailbox) -> None:
    fill(mailbox, 3)

    assert mailbox.page(per_page=0).per_page == 1
    assert len(mailbox.page(per_page=-1).items) == 1
    assert mailbox.page(per_page=10**6).per_page == MAX_PER_PAGE


def test_empty_mailbox_has_one_empty_page(mailbox: Mailbox) -> None:
    page = mailbox.page(3)

    assert (page.items, page.page, page.total, page.pages) == ([], 1, 0, 1)
    assert not page.has_next
    assert not page.has_prev


def test_get_of_an_unknown_id_is_none(mailbox: Mailbox) -> None:
    mailbox.add_messages([message("a")])

    assert mailbox.get("no-such-id") is None
    assert mailbox.get("1") is None  # never the rowid


def test_mark_seen_changes_the_flag_and_the_unread_count(mailbox: Mailbox) -> None:
    first, _second = mailbox.add_messages([message("a"), message("b")])
    assert mailbox.unread_count() == 2

    assert mailbox.mark_seen(first) is True
    assert mailbox.get(first).seen is True  # type: ignore[union-attr]
    assert mailbox.unread_count() == 1
    assert mailbox.mark_seen(first) is True  # again: no double counting
    assert mailbox.unread_count() == 1
    assert mailbox.mark_seen(first, seen=False) is True
    assert mailbox.unread_count() == 2
    assert mailbox.mark_seen("no-such-id") is False


def test_delete_removes_the_message_but_keeps_its_uid_known(mailbox: Mailbox) -> None:
    gone, kept = mailbox.add_messages([message("gone"), message("kept")])
    mailbox.mark_seen(kept)

    assert mailbox.delete(gone) is True
    assert mailbox.get(gone) is None
    assert mailbox.raw(gone) is None
    assert mailbox.open_raw(gone) is None
    assert [m.id for m in mailbox.page().items] == [kept]
    assert (mailbox.count(), mailbox.unread_count()) == (1, 0)
    assert mailbox.known_uids() == {"gone", "kept"}
    assert mailbox.delete(gone) is False


def test_a_deleted_uid_is_not_stored_again(mailbox: Mailbox) -> None:
    [message_id] = mailbox.add_messages([message("once")])
    mailbox.delete(message_id)

    assert mailbox.add_messages([message("once")]) == []
    assert mailbox.count() == 0


def test_counts_follow_adds_and_deletes(mailbox: Mailbox) -> None:
    ids = mailbox.add_messages([message(f"u{i}") for i in range(5)])
    mailbox.mark_seen(ids[0])
    mailbox.delete(ids[1])

    assert mailbox.count() == 4
    assert mailbox.unread_count() == 3


def test_neighbours_follow_inbox_order(mailbox: Mailbox) -> None:
    fill(mailbox, 4)  # inbox order: 003, 002, 001, 000
    by_subject = {m.subject: m.id for m in mailbox.page().items}

    assert mailbox.neighbours(by_subject["002"]) == (by_subject["003"], by_subject["001"])
    assert mailbox.neighbours(by_subject["003"]) == (None, by_subject["002"])
    assert mailbox.neighbours(by_subject["000"]) == (by_subject["001"], None)
    assert mailbox.neighbours("no-such-id") == (None, None)


def test_neighbours_step_through_equal_dates_in_insertion_order(mailbox: Mailbox) -> None:
    a, b, c = mailbox.add_messages([message(u, date=T0) for u in "abc"])  # inbox: c, b, a

    assert mailbox.neighbours(b) == (c, a)


def test_text_with_lone_surrogates_is_stored_with_replacement_characters(mailbox: Mailbox) -> None:
    # What email's surrogateescape leaves behind for undecodable header bytes.
    [message_id] = mailbox.add_messages([message("s", subject="bad \udcd0\udcbf byte")])
    got = mailbox.get(message_id)

    assert got is not None
    assert got.subject == "bad \ufffd\ufffd byte"


def test_version_moves_with_every_change_to_the_list(store):
    mailbox = store.mailbox(ALICE)
    seen = [mailbox.version()]
    (first,) = mailbox.add_messages([message("u1")])
    seen.append(mailbox.version())
    mailbox.page(1)
    mailbox.get(first)
    assert mailbox.version() == seen[-1]  # reading changes nothing
    mailbox.mark_seen(first)
    seen.append(mailbox.version())
    mailbox.mark_seen(first)  # already read: no change
    assert mailbox.version() == seen[-1]
    mailbox.delete(first)
    seen.append(mailbox.version())
    assert len(set(seen)) == 4


def test_a_batch_is_written_in_a_few_statements_however_big(store):
    """A statement per message would make the writer wait for Python's GIL once per row
    while a fetch parses the next batch in another thread (hundreds of times slower)."""
    mailbox = store.mailbox(ALICE)
    statements: list[str] = []
    conn = mailbox._db.take()
    conn.set_trace_callback(statements.append)
    mailbox._db.give_back(conn)
    for size in (10, 300):
        statements.clear()
        mailbox.add_messages([message(f"{size}-{n}") for n in range(size)])
        ours = ("INSERT INTO messages (", "INSERT INTO raw_messages", "INSERT INTO messages_fts (")
        # Not SQLite's own statements inside; a trigger's run repeats its statement's text.
        writes = {s for s in statements if s.startswith(ours)}
        assert 0 < len(writes) <= 3, sorted(w[:60] for w in writes)
    assert mailbox.count() == 310
