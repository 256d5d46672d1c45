"""Who is signed in: the account in the session, checked against the server-side session.

The cookie carries the account's settings and the sealed password; the store keeps a
server-side record of each session so that logging out (or an idle timeout) makes an old
cookie useless, even one copied before. Views ask `current_account()` and never read the
session themselves.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import current_app, g, redirect, request, session, url_for

from app.mail.security import Security
from app.store import AccountKey
from app.web.credentials import CredentialsUnreadable, seal, unseal
from app.web.extensions import get_store

TOUCH_EVERY = 60.0  # seconds between idle-clock refreshes of one session, per process

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Server:
    """One mail server as the user configured it."""

    host: str
    port: int
    security: Security


@dataclass(frozen=True)
class Account:
    """The signed-in user's settings (never the password: see `password()`)."""

    email: str
    username: str
    smtp: Server
    pop3: Server
    keep_on_server: bool

    @property
    def key(self) -> AccountKey:
        """The store is keyed by POP3 server and user name, never by the address alone."""
        return AccountKey(self.pop3.host, self.pop3.port, self.username)


def sign_in(account: Account, password: str) -> None:
    """Start a fresh session (a new id: nothing from before login survives)."""
    store = get_store()
    lang = session.get("lang")
    session.clear()
    sid = store.create_session(account.key)
    session.update(
        sid=sid,
        email=account.email,
        username=account.username,
        smtp=[account.smtp.host, account.smtp.port, account.smtp.security.value],
        pop3=[account.pop3.host, account.pop3.port, account.pop3.security.value],
        keep=account.keep_on_server,
        secret=seal(current_app.config["SECRET_KEY"], password),
    )
    if lang:
        session["lang"] = lang
    session.permanent = False
    _touch_times()[sid] = time.monotonic()


def sign_out() -> None:
    sid = session.get("sid")
    if sid:
        get_store().revoke_session(sid)
        _touch_times().pop(sid, None)
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang


def _touch_times() -> dict[str, float]:
    """When this process last refreshed each session's idle clock in the store (a write
    per request would make every page wait for the shared database's writer lock)."""
    return current_app.extensions.setdefault("pochta.session_touches", {})


def _from_session() -> Account | None:
    try:
        smtp_host, smtp_port, smtp_security = session["smtp"]
        pop3_host, pop3_port, pop3_security = session["pop3"]
        return Account(
            email=session["email"],
            username=session["username"],
            smtp=Server(smtp_host, int(smtp_port), Security(smtp_security)),
            pop3=Server(pop3_host, int(pop3_port), Security(pop3_security)),
            keep_on_server=bool(session["keep"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


def _session_alive(sid: str, account: Account) -> bool:
    """The server-side record exists, belongs to this account, and is not idle too long."""
    store = get_store()
    if store.session_account(sid) != account.key:
        return False
    now = time.monotonic()
    touches = _touch_times()
    idle = current_app.config["SETTINGS"].session_idle_seconds
    if now - touches.get(sid, 0.0) < min(TOUCH_EVERY, idle / 4):
        return True
    alive = store.touch_session(sid, idle)
    if alive:
        touches[sid] = now
    return alive


def current_account() -> Account | None:
    """The signed-in account for this request, or None (and the stale cookie dropped)."""
    if "current_account" in g:
        return g.current_account
    account = None
    sid = session.get("sid")
    if sid:
        account = _from_session()
        if account is None or not _session_alive(sid, account):
            account = None
            lang = session.get("lang")
            session.clear()
            if lang:
                session["lang"] = lang
    g.current_account = account
    return account


def password() -> str:
    """The signed-in user's mail password, unsealed for one use."""
    return unseal(current_app.config["SECRET_KEY"], session.get("secret", ""))


def login_required(view: F) -> F:
    """Send anyone without a live session to the login page (then back here)."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_account() is None:
            target = request.full_path.rstrip("?") if request.method == "GET" else None
            return redirect(url_for("auth.login", next=target))
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


__all__ = [
    "Account",
    "CredentialsUnreadable",
    "Server",
    "current_account",
    "login_required",
    "password",
    "sign_in",
    "sign_out",
]
