"""Logging in and out.

A session exists only after the POP3 server accepted the login and the SMTP server accepted
AUTH; until then the user sees the form again with exactly what failed (and the redacted
dialogue, for those who want to see the protocol at work). Failed logins are counted per
client address and per account across all workers, so guessing passwords through Pochta is
slow.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
from datetime import UTC, datetime

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from app.config import Settings
from app.mail.security import Security
from app.store import AccountKey
from app.web.accounts import Account, Server, current_account, sign_in, sign_out
from app.web.extensions import get_store
from app.web.forms import LoginForm
from app.web.mailops import MailOperationFailed, check_login
from app.web.safety import local_target

bp = Blueprint("auth", __name__)

FAILURE_WINDOW = 15 * 60
MAX_FAILURES_PER_ADDRESS = 20
MAX_FAILURES_PER_ACCOUNT = 8


def _prefill(form: LoginForm, settings: Settings) -> None:
    form.smtp_host.data = settings.smtp.host
    form.smtp_port.data = settings.smtp.port
    form.smtp_security.data = settings.smtp.security.value
    form.pop3_host.data = settings.pop3.host
    form.pop3_port.data = settings.pop3.port
    form.pop3_security.data = settings.pop3.security.value


def _account(form: LoginForm) -> Account:
    # A browser always sends the field (a hidden "0" backs the checkbox); a client that
    # leaves it out entirely gets the safe default, keeping mail on the server.
    keep = form.keep_on_server.data if "keep_on_server" in request.form else True
    return Account(
        email=form.email.data,
        username=(form.username.data or "").strip() or form.email.data,
        smtp=Server(form.smtp_host.data, form.smtp_port.data, Security(form.smtp_security.data)),
        pop3=Server(form.pop3_host.data, form.pop3_port.data, Security(form.pop3_security.data)),
        keep_on_server=bool(keep),
    )


def _client_network(address: str | None) -> str:
    """Who is guessing: an IPv4 address, or an IPv6 client's /64 (one subscriber holds a
    whole /64 and could otherwise take a fresh address for every few guesses)."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return address or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _mailbox_identity(key: AccountKey) -> str:
    """Whose password is being guessed, however it is spelled: servers commonly take the
    address or the bare name in any case, with or without a +detail, and a host by any of
    its names, so the count is kept per server address and lower-cased local part without
    its detail (the port does not matter either)."""
    try:
        infos = socket.getaddrinfo(key.pop3_host, key.pop3_port, proto=socket.IPPROTO_TCP)
        host = min(str(info[4][0]) for info in infos)
    except (OSError, UnicodeError):
        host = key.pop3_host
    local = key.username.rsplit("@", 1)[0] if "@" in key.username else key.username
    local = local.split("+", 1)[0]  # alice+x@ is alice on servers with a detail delimiter
    return hashlib.sha256(f"{host}\0{local.casefold()}".encode()).hexdigest()


def _limit_keys(key: AccountKey) -> tuple[str, str]:
    return f"address:{_client_network(request.remote_addr)}", f"account:{_mailbox_identity(key)}"


def _too_many_failures(key: AccountKey) -> bool:
    store = get_store()
    by_address, by_account = _limit_keys(key)
    return (
        store.login_failures(by_address, FAILURE_WINDOW) >= MAX_FAILURES_PER_ADDRESS
        or store.login_failures(by_account, FAILURE_WINDOW) >= MAX_FAILURES_PER_ACCOUNT
    )


def _record_failure(key: AccountKey) -> None:
    store = get_store()
    for scope in _limit_keys(key):
        store.record_login_failure(scope, FAILURE_WINDOW)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int]:
    settings: Settings = current_app.config["SETTINGS"]
    target = local_target(request.values.get("next"), url_for("inbox.inbox"))
    if request.method == "GET" and current_account() is not None:
        return redirect(target)
    form = LoginForm()
    if request.method == "GET":
        _prefill(form, settings)
    error = None
    log: list[str] = []
    if form.validate_on_submit():
        account = _account(form)
        servers = (account.pop3, account.smtp)
        refused = [s.host for s in servers if not settings.host_allowed(s.host)]
        if refused:
            error = _(
                "This Pochta may only connect to: %(hosts)s. %(host)s is not one of them.",
                hosts=", ".join(sorted(settings.allowed_hosts)),
                host=refused[0],
            )
        elif _too_many_failures(account.key):
            abort(429)
        else:
            started = datetime.now(UTC)
            try:
                log = check_login(account, form.password.data, settings)
            except MailOperationFailed as failure:
                if failure.credentials_refused:  # a guess; an unreachable server is not
                    _record_failure(account.key)
                error, log = failure.message, failure.log
            else:
                sign_in(account, form.password.data)
                get_store().clear_login_failures(_limit_keys(account.key)[1])
                get_store().save_log(account.key, "login", log, ok=True, started_at=started)
                return redirect(target, 303)
    page = render_template("login.html", form=form, error=error, log=log, next=target)
    if form.errors:
        return page, 400
    return (page, 403) if error else page


@bp.post("/logout")
def logout() -> Response:
    sign_out()
    return redirect(url_for("auth.login"), 303)
