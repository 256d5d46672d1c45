"""An account is its POP3 host, port and username: each gets mail of its own, in a file of
its own, and nothing about one account leaks into another."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from app.store import AccountKey, Store
from tests.store.conftest import message


def test_same_username_on_two_hosts_has_separate_mail(store: Store) -> None:
    first = store.mailbox(AccountKey("pop.one.example", 995, "ivan"))
    second = store.mailbox(AccountKey("pop.two.example", 995, "ivan"))
    first.add_messages([message("u1", subject="only on one")])

    assert second.count() == 0
    assert second.page().items == []
    assert second.known_uids() == set()
    assert first.count() == 1


def test_same_address_on_two_ports_has_separate_mail(store: Store) -> None:
    tls = store.mailbox(AccountKey("mail.example.org", 995, "ivan@example.org"))
    plain = store.mailbox(AccountKey("mail.example.org", 110, "ivan@example.org"))
    [message_id] = tls.add_messages([message("u1")])

    assert plain.get(message_id) is None
    assert plain.raw(message_id) is None
    assert plain.delete(message_id) is False
    assert tls.get(message_id) is not None


def test_the_same_uid_may_exist_in_two_accounts(store: Store) -> None:
    first = store.mailbox(AccountKey("a.example", 995, "u"))
    second = store.mailbox(AccountKey("b.example", 995, "u"))

    assert len(first.add_messages([message("1")])) == 1
    assert len(second.add_messages([message("1")])) == 1


def test_host_is_case_and_trailing_dot_blind_but_username_is_not() -> None:
    assert AccountKey("Mail.Example.ORG.", 995, "Ivan") == AccountKey(
        "mail.example.org", 995, "Ivan"
    )
    assert (
        AccountKey("mail.example.org", 995, "Ivan").hex
        == AccountKey(" MAIL.example.org", 995, "Ivan").hex
    )
    assert AccountKey("mail.example.org", 995, "Ivan") != AccountKey(
        "mail.example.org", 995, "ivan"
    )


def test_account_hex_is_a_stable_sha256_of_the_identity() -> None:
    key = AccountKey("mail.example.org", 995, "ivan")

    assert len(key.hex) == 64
    assert key.hex == AccountKey("mail.example.org", 995, "ivan").hex
    assert key.hex != AccountKey("mail.example.org", 996, "ivan").hex
    # Fields cannot bleed into each other: a separator inside a value is still another account.
    assert AccountKey("a.example", 995, "b c").hex != AccountKey("a.example", 995, "b  c").hex


@pytest.mark.parametrize(
    ("host", "port", "username"),
    [
        ("", 995, "u"),
        ("  ", 995, "u"),
        ("h.example", 0, "u"),
        ("h.example", 65536, "u"),
        ("h.example", 995, ""),
    ],
)
def test_an_incomplete_account_is_refused(host: str, port: int, username: str) -> None:
    with pytest.raises(ValueError):
        AccountKey(host, port, username)


def test_each_account_has_its_own_database_file(store: Store, data_dir: Path) -> None:
    one = AccountKey("a.example", 995, "u")
    two = AccountKey("b.example", 995, "u")
    store.mailbox(one).add_messages([message("1")])
    store.mailbox(two).add_messages([message("1")])

    files = sorted(p.name for p in (data_dir / "accounts").glob("*.sqlite3"))
    assert files == sorted([f"{one.hex}.sqlite3", f"{two.hex}.sqlite3"])
    assert store.mailbox_path(one) == data_dir / "accounts" / f"{one.hex}.sqlite3"


def test_data_dir_and_database_files_are_private(store: Store, data_dir: Path) -> None:
    mailbox = store.mailbox(AccountKey("a.example", 995, "u"))
    mailbox.add_messages([message("1")])
    store.save_log(mailbox.account, "fetch", ["+OK"], ok=True)

    for directory in (data_dir, data_dir / "accounts"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for database in [data_dir / "pochta.sqlite3", store.mailbox_path(mailbox.account)]:
        assert stat.S_IMODE(database.stat().st_mode) == 0o600


def test_mailbox_is_reused_for_the_same_account(store: Store) -> None:
    assert store.mailbox(AccountKey("A.example", 995, "u")) is store.mailbox(
        AccountKey("a.example", 995, "u")
    )


def test_mail_is_still_there_when_the_store_is_reopened(data_dir: Path) -> None:
    account = AccountKey("a.example", 995, "u")
    with Store(data_dir) as first:
        [message_id] = first.mailbox(account).add_messages([message("1", subject="kept")])
    with Store(data_dir) as second:
        found = second.mailbox(account).get(message_id)

    assert found is not None
    assert found.subject == "kept"


def open_account_files(data_dir: Path) -> set[str]:
    """Mailbox files this process holds open (their -wal/-shm companions included)."""
    accounts = str(data_dir / "accounts")
    names = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = str(fd.readlink())
        except OSError:
            continue
        if target.startswith(accounts):
            names.add(Path(target).name.split(".")[0])
    return names


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_only_recently_used_mailboxes_keep_connections_open(store: Store, data_dir: Path) -> None:
    from app.store.store import POOLED_MAILBOXES

    accounts = [
        AccountKey("pop.example.org", 995, f"user{i}") for i in range(POOLED_MAILBOXES + 10)
    ]
    for account in accounts:
        store.mailbox(account).add_messages([message("1")])

    held = open_account_files(data_dir)
    assert held == {a.hex for a in accounts[-POOLED_MAILBOXES:]}
    assert store.mailbox(accounts[0]).count() == 1  # an evicted mailbox still works
