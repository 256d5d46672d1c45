"""Server-side sessions (revocable, idle-expiring) and login-failure counting."""

from __future__ import annotations

import re
import time

from app.store import Store
from tests.store.conftest import ALICE, BOB


def test_a_new_session_is_live_and_knows_its_account(store: Store) -> None:
    sid = store.create_session(ALICE)

    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", sid)
    assert store.touch_session(sid, idle_timeout=60) is True
    assert store.session_account(sid) == ALICE


def test_sessions_are_distinct(store: Store) -> None:
    assert store.create_session(ALICE) != store.create_session(ALICE)


def test_a_revoked_session_is_gone(store: Store) -> None:
    sid = store.create_session(ALICE)
    other = store.create_session(BOB)
    store.revoke_session(sid)

    assert store.touch_session(sid, idle_timeout=60) is False
    assert store.session_account(sid) is None
    assert store.touch_session(other, idle_timeout=60) is True


def test_an_idle_session_expires_and_stays_expired(store: Store) -> None:
    sid = store.create_session(ALICE)
    time.sleep(0.05)

    assert store.touch_session(sid, idle_timeout=0.01) is False
    assert store.touch_session(sid, idle_timeout=60) is False


def test_touching_keeps_a_session_alive(store: Store) -> None:
    # Touches well inside the idle limit (no slow machine pauses that long), yet the
    # session lives past that limit.
    sid = store.create_session(ALICE)
    for _ in range(3):
        time.sleep(0.4)
        assert store.touch_session(sid, idle_timeout=1.0) is True


def test_an_unknown_session_is_not_live(store: Store) -> None:
    assert store.touch_session("forged", idle_timeout=60) is False
    assert store.session_account("forged") is None


def test_purge_drops_only_idle_sessions(store: Store) -> None:
    old = store.create_session(ALICE)
    time.sleep(0.05)
    fresh = store.create_session(ALICE)

    assert store.purge_sessions(idle_timeout=0.03) == 1
    assert store.session_account(old) is None
    assert store.session_account(fresh) == ALICE


def test_login_failures_count_up_within_the_window(store: Store) -> None:
    assert store.login_failures("alice@example.org", 60) == 0
    assert store.record_login_failure("alice@example.org", 60) == 1
    assert store.record_login_failure("alice@example.org", 60) == 2
    assert store.login_failures("alice@example.org", 60) == 2
    assert store.login_failures("bob@example.org", 60) == 0


def test_login_failures_outside_the_window_do_not_count(store: Store) -> None:
    store.record_login_failure("ip:192.0.2.1", 60)
    time.sleep(0.05)

    assert store.login_failures("ip:192.0.2.1", 0.01) == 0
    assert store.record_login_failure("ip:192.0.2.1", 0.01) == 1
    assert store.login_failures("ip:192.0.2.1", 60) == 2


def test_clearing_login_failures_resets_one_scope(store: Store) -> None:
    store.record_login_failure("a", 60)
    store.record_login_failure("b", 60)
    store.clear_login_failures("a")

    assert store.login_failures("a", 60) == 0
    assert store.login_failures("b", 60) == 1
