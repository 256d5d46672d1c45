"""The delivery path of a message, for the "headers" view: hops, delays, TLS, and what the
receiving servers concluded about SPF, DKIM and DMARC.

Each server prepends a Received header, so they are read bottom-up to get delivery order.
Servers write these headers in many dialects (Postfix, Exim, Exchange, Gmail); what cannot be
understood is kept as raw text and never raises.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser

from app.messages.headers import decode_text, parse_date
from app.messages.structure import POLICY
from app.messages.tracetokens import COMMENT, WORD, Token, groups, tokenize

MAX_HEADERS = 100
_CLAUSES = ("from", "by", "via", "with", "id", "for")
_TLS_PROTOCOLS = frozenset({"ESMTPS", "ESMTPSA", "UTF8SMTPS", "UTF8SMTPSA", "LMTPS",
                            "LMTPSA", "UTF8LMTPS", "UTF8LMTPSA", "SMTPS", "SMTPSA"})
_TLS_CLUES = ("using tls", "version=tls", "tls1", "tlsv1", "tls ", "ssl", "cipher=")
_HEADER_PARSER = BytesParser(policy=POLICY)


@dataclass(frozen=True)
class Hop:
    """One Received header: who handed the message to whom, how, and when."""

    raw: str
    from_host: str | None = None
    from_ip: str | None = None
    by_host: str | None = None
    protocol: str | None = None
    tls: bool | None = None
    tls_detail: str | None = None
    time: dt.datetime | None = None
    delay_seconds: float | None = None


@dataclass(frozen=True)
class AuthResult:
    """One verdict from Authentication-Results (or Received-SPF)."""

    method: str
    result: str
    authserv_id: str = ""
    reason: str | None = None
    properties: dict[str, str] = field(default_factory=dict)
    comment: str | None = None
    source: str = "Authentication-Results"


@dataclass(frozen=True)
class DkimSignature:
    """Who signed (d=) with which key (s=); verification is the receiving server's job."""

    domain: str | None
    selector: str | None
    algorithm: str | None


@dataclass(frozen=True)
class TraceReport:
    hops: list[Hop]
    total_delay_seconds: float | None
    auth_results: list[AuthResult]
    dkim_signatures: list[DkimSignature]

    @property
    def has_received_spf(self) -> bool:
        return any(result.source == "Received-SPF" for result in self.auth_results)


def analyse_trace(raw: bytes) -> TraceReport:
    """Read the trace headers of a stored message. Never raises."""
    try:
        headers = _HEADER_PARSER.parsebytes(raw, headersonly=True)
    except Exception:  # nothing readable: an empty report
        return TraceReport([], None, [], [])
    hops = _with_delays([parse_received(v) for v in reversed(_values(headers, "Received"))])
    results = [r for v in _values(headers, "Authentication-Results")
               for r in parse_authentication_results(v)]
    results += [r for v in _values(headers, "Received-SPF") if (r := parse_received_spf(v))]
    signatures = [parse_dkim_signature(v) for v in _values(headers, "DKIM-Signature")]
    return TraceReport(hops, _total_delay(hops), results, signatures)


def parse_received(value: str) -> Hop:
    """One Received header value (already decoded) as a Hop; raw text only when unreadable."""
    try:
        return _parse_received(value)
    except Exception:  # an unreadable hop keeps its text
        return Hop(raw=value)


def _parse_received(value: str) -> Hop:
    tokens = tokenize(value)
    last_semicolon = max((i for i, t in enumerate(tokens) if t.kind == ";"), default=None)
    when = None
    if last_semicolon is not None:
        when = parse_date(" ".join(t.text for t in tokens[last_semicolon + 1:] if t.kind == WORD))
        tokens = tokens[:last_semicolon]
    clauses = _clauses(tokens)
    protocol = _first_word(clauses.get("with"))
    tls, detail = _tls(protocol, [t.text for t in tokens if t.kind == COMMENT])
    return Hop(
        raw=value,
        from_host=_first_word(clauses.get("from")),
        from_ip=_ip(clauses.get("from", [])),
        by_host=_first_word(clauses.get("by")),
        protocol=protocol,
        tls=tls,
        tls_detail=detail,
        time=when,
    )


def _clauses(tokens: list[Token]) -> dict[str, list[Token]]:
    clauses: dict[str, list[Token]] = {}
    current: list[Token] | None = None
    for token in tokens:
        name = token.text.lower()
        if token.kind == WORD and name in _CLAUSES and name not in clauses:
            current = clauses[name] = []
        elif current is not None:
            current.append(token)
    return clauses


def _first_word(tokens: list[Token] | None) -> str | None:
    return next((t.text for t in tokens or [] if t.kind == WORD), None)


def _ip(tokens: list[Token]) -> str | None:
    """The connecting IP: a [bracketed] literal in the clause or its comment."""
    for token in tokens:
        for piece in token.text.replace("[", " [").replace("]", "] ").split():
            candidate = piece.strip("[]()=,").removeprefix("IPv6:").removeprefix("ipv6:")
            if piece.startswith("[") or token.kind == COMMENT:
                try:
                    return str(ipaddress.ip_address(candidate))
                except ValueError:
                    continue
    return None


def _tls(protocol: str | None, comments: list[str]) -> tuple[bool | None, str | None]:
    detail = next((c for c in comments if any(clue in c.lower() + " " for clue in _TLS_CLUES)),
                  None)
    if protocol is not None and protocol.upper() in _TLS_PROTOCOLS:
        return True, detail
    if detail is not None:
        return True, detail
    return (None if protocol is None else False), None


def _with_delays(hops: list[Hop]) -> list[Hop]:
    result: list[Hop] = []
    previous: dt.datetime | None = None
    for hop in hops:
        delay = None
        if hop.time is not None and previous is not None:
            delay = (hop.time - previous).total_seconds()
        result.append(Hop(**{**hop.__dict__, "delay_seconds": delay}))
        previous = hop.time if hop.time is not None else previous
    return result


def _total_delay(hops: list[Hop]) -> float | None:
    times = [hop.time for hop in hops if hop.time is not None]
    return (times[-1] - times[0]).total_seconds() if len(times) >= 2 else None


def parse_authentication_results(value: str) -> list[AuthResult]:
    """The verdicts in one Authentication-Results header (RFC 8601)."""
    try:
        parts = groups(tokenize(value))
    except Exception:  # unreadable: no verdicts rather than a crash
        return []
    head = [t.text for t in parts[0] if t.kind == WORD]
    authserv_id = head[0] if head else ""
    return [r for part in parts[1:] if (r := _resinfo(part, authserv_id))]


def _resinfo(tokens: list[Token], authserv_id: str) -> AuthResult | None:
    words = _joined_assignments([t.text for t in tokens if t.kind == WORD])
    comments = [t.text for t in tokens if t.kind == COMMENT]
    if not words or "=" not in words[0]:
        return None
    method, result = words[0].split("=", 1)
    properties = dict(word.split("=", 1) for word in words[1:] if "=" in word)
    reason = properties.pop("reason", None)
    return AuthResult(
        method=method.split("/")[0].lower(),
        result=result.lower(),
        authserv_id=authserv_id,
        reason=reason,
        properties=properties,
        comment="; ".join(comments) or None,
    )


def _joined_assignments(words: list[str]) -> list[str]:
    """["spf", "=", "pass"] and ["spf=", "pass"] become ["spf=pass"]."""
    joined: list[str] = []
    for word in words:
        if joined and (word.startswith("=") or joined[-1].endswith("=")):
            joined[-1] += word
        else:
            joined.append(word)
    return joined


def parse_received_spf(value: str) -> AuthResult | None:
    """A Received-SPF header (RFC 7208 9.1): the result word, then key=value pairs."""
    try:
        tokens = tokenize(value)
    except Exception:  # unreadable: no verdict
        return None
    words = [t.text for t in tokens if t.kind == WORD]
    if not words:
        return None
    properties = dict(w.split("=", 1) for w in _joined_assignments(words[1:]) if "=" in w)
    comment = next((t.text for t in tokens if t.kind == COMMENT), None)
    return AuthResult(method="spf", result=words[0].lower(),
                      authserv_id=properties.get("receiver", ""), properties=properties,
                      comment=comment, source="Received-SPF")


def parse_dkim_signature(value: str) -> DkimSignature:
    """The d=, s= and a= tags of a DKIM-Signature header."""
    tags: dict[str, str] = {}
    for item in value.split(";"):
        name, _, tag_value = item.partition("=")
        tags.setdefault(name.strip().lower(), "".join(tag_value.split()))
    return DkimSignature(tags.get("d") or None, tags.get("s") or None, tags.get("a") or None)


def _values(headers: Message, name: str) -> list[str]:
    values = headers.get_all(name) or []
    return [decode_text(value) for value in values[:MAX_HEADERS]]
