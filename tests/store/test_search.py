"""Full-text search over subject, addresses and body: any text the user types is searched
for literally, never obeyed as FTS syntax, in any script."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.store import Mailbox
from tests.store.conftest import message


def found(mailbox: Mailbox, query: str) -> set[str]:
    page = mailbox.page(query=query, per_page=500)
    assert page.total == len(page.items)
    return {item.uid for item in page.items}


@pytest.fixture
def mail(mailbox: Mailbox) -> Mailbox:
    mailbox.add_messages(
        [
            message("greeting", subject="Привет из Москвы", body_text="Как дела? Всё хорошо."),
            message("report", subject="Отчёт за квартал", body_text="Прилагаю отчёта черновик"),
            message("cafe", subject="Meeting at the café", body_text="Crème brûlée after lunch"),
            message(
                "syntax",
                subject='Q&A: AND gate NEAR(ly) done - status: "ready"*',
                body_text="column:value a-b OR NOT c^d {x} (y) +z",
            ),
            message(
                "people",
                subject="hello",
                from_name="Ольга Смирнова",
                from_addr="olga.smirnova@example.ru",
                to="Pavel <pavel@example.net>",
                cc="archive@example.com",
                body_text="plain words",
            ),
        ]
    )
    return mailbox


def test_finds_words_in_subject_and_body(mail: Mailbox) -> None:
    assert found(mail, "квартал") == {"report"}
    assert found(mail, "lunch") == {"cafe"}


def test_finds_sender_name_address_and_recipients(mail: Mailbox) -> None:
    assert found(mail, "Смирнова") == {"people"}
    assert found(mail, "olga.smirnova@example.ru") == {"people"}
    assert found(mail, "pavel") == {"people"}
    assert found(mail, "archive@example.com") == {"people"}


def test_cyrillic_search_ignores_case(mail: Mailbox) -> None:
    assert found(mail, "ПРИВЕТ") == {"greeting"}
    assert found(mail, "москвы") == {"greeting"}


def test_yo_and_ie_find_each_other(mail: Mailbox) -> None:
    assert found(mail, "отчет") == {"report"}
    assert found(mail, "Всё") == {"greeting"}
    assert found(mail, "все") == {"greeting"}


def test_diacritics_are_ignored(mail: Mailbox) -> None:
    assert found(mail, "cafe") == {"cafe"}
    assert found(mail, "creme brulee") == {"cafe"}
    assert found(mail, "CAFÉ") == {"cafe"}


def test_last_word_matches_as_a_prefix(mail: Mailbox) -> None:
    assert found(mail, "отчёт") == {"report"}  # also finds "отчёта" in the same message
    assert found(mail, "прилага") == {"report"}
    assert found(mail, "Прив") == {"greeting"}


def test_short_last_word_matches_whole_words_only(mail: Mailbox) -> None:
    assert found(mail, "he") == set()  # no prefix match for "hello"
    assert found(mail, "at") == {"cafe"}


def test_earlier_words_must_match_whole(mail: Mailbox) -> None:
    assert found(mail, "Прив Москвы") == set()
    assert found(mail, "Привет Москвы") == {"greeting"}


def test_all_words_must_match(mail: Mailbox) -> None:
    assert found(mail, "meeting lunch") == {"cafe"}
    assert found(mail, "meeting квартал") == set()


@pytest.mark.parametrize(
    "query",
    [
        '"',
        '""',
        "AND",
        "OR",
        "NOT",
        "*",
        "NEAR(",
        "NEAR(ly",
        "-",
        ":",
        "status:",
        "^",
        "(",
        ")",
        "{x}",
        "+z",
        'a" OR "b',
        "subject:hello",
        "column:value",
        "a-b",
        "c^d",
        "\\",
        "'",
        "*ready",
        "NEAR(x y, 2)",
        "\x00",
        "a\x00b",
        "\udcff",
        "\t\n",
        "💌",
        "x" * 5000,
        " ".join(["word"] * 500),
    ],
)
def test_no_query_text_causes_an_error(mail: Mailbox, query: str) -> None:
    page = mail.page(query=query)

    assert page.total == len(page.items)  # counted and listed alike, and nothing raised


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("AND", {"syntax"}),
        ("NEAR(ly", {"syntax"}),
        ("NOT", {"syntax"}),
        ("OR", {"syntax"}),
        ("status:", {"syntax"}),
        ('"ready"*', {"syntax"}),
        ("column:value", {"syntax"}),
        ("a-b", {"syntax"}),
        ("{x} (y) +z", {"syntax"}),
        ("Q&A:", {"syntax"}),
    ],
)
def test_syntax_looking_words_are_found_literally(
    mail: Mailbox, query: str, expected: set[str]
) -> None:
    assert found(mail, query) == expected


def test_words_on_either_side_of_a_nul_are_searchable(mailbox: Mailbox) -> None:
    mailbox.add_messages([message("nul", body_text="before\x00after")])

    assert found(mailbox, "before") == {"nul"}
    assert found(mailbox, "after") == {"nul"}
    assert found(mailbox, "before\x00after") == {"nul"}


@pytest.mark.parametrize("query", ["-", "*", '"', ":", "( )", "- * :"])
def test_a_query_without_words_matches_nothing(mail: Mailbox, query: str) -> None:
    page = mail.page(query=query)

    assert (page.items, page.total) == ([], 0)


@pytest.mark.parametrize("query", [None, "", "   "])
def test_a_blank_query_lists_the_whole_inbox(mail: Mailbox, query: str | None) -> None:
    assert mail.page(query=query).total == 5


def test_search_results_are_newest_first_and_paginated(mailbox: Mailbox) -> None:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    mailbox.add_messages(
        [
            message(
                f"u{i:02}",
                date=t0 + timedelta(hours=i),
                body_text="needle" if i % 3 == 0 else "hay",
            )
            for i in range(30)
        ]
    )
    first = mailbox.page(1, per_page=4, query="needle")
    last = mailbox.page(3, per_page=4, query="needle")

    assert first.total == 10
    assert first.pages == 3
    assert [m.uid for m in first.items] == ["u27", "u24", "u21", "u18"]
    assert [m.uid for m in last.items] == ["u03", "u00"]
    assert mailbox.page(99, per_page=4, query="needle").page == 3


def test_a_deleted_message_is_no_longer_found(mail: Mailbox) -> None:
    [target] = mail.page(query="квартал").items
    mail.delete(target.id)

    assert found(mail, "квартал") == set()
    assert found(mail, "Прилагаю") == set()


def test_search_stays_within_the_account(mail: Mailbox, store) -> None:  # type: ignore[no-untyped-def]
    from tests.store.conftest import BOB

    other = store.mailbox(BOB)
    other.add_messages([message("bob-only", subject="квартал у Боба")])

    assert found(mail, "квартал") == {"report"}
    assert found(other, "квартал") == {"bob-only"}
