"""What users type into To, Cc and Bcc, checked and turned into addresses for the wire.

An entry is "addr@domain" or "Display Name <addr@domain>", entries separated by commas
(commas inside a quoted name do not count). Each entry is parsed by the `email` package's
address parser; on top of that Pochta refuses what a mail server would reject anyway or what
could smuggle a header or command: line breaks and other control characters, unbalanced
angle brackets, empty local parts or domains, invalid domain labels, over-long addresses.
Internationalised domains stay Unicode for display and are converted to their ASCII form
(IDNA 2003, the standard library's `idna` codec) for the wire; a non-ASCII local part can
only travel with SMTPUTF8, which the address records.
"""

from __future__ import annotations

import email.errors
import email.policy
import email.utils
import ipaddress
from dataclasses import dataclass
from email.headerregistry import Address as HeaderAddress

from app.sentences import N_, Sentence

MAX_LOCAL_OCTETS = 64
MAX_DOMAIN_OCTETS = 253
MAX_ADDRESS_OCTETS = 254
MAX_LABEL_OCTETS = 63
MAX_INPUT_CHARS = 100_000

# Characters that may never reach a header: C0 and C1 controls (tab aside) and everything
# Python's str.splitlines() treats as a line break, which header folding would act on.
FORBIDDEN_IN_HEADERS = frozenset(
    [chr(c) for c in range(32) if c != 9] + [chr(c) for c in range(127, 160)]
    + ["\u2028", "\u2029"]
)

_LDH = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")


class AddressError(ValueError):
    """An entry in an address field is not a usable e-mail address; the message names it.

    `sentence` is the message with its template, for the web layer to translate.
    """

    def __init__(self, template: str, **params: object) -> None:
        self.sentence = Sentence(template, **params)
        super().__init__(self.sentence)


@dataclass(frozen=True)
class Address:
    """One checked recipient or sender."""

    display_name: str
    addr_spec: str  # Unicode, for display
    ascii_addr_spec: str | None  # punycode domain; None when the local part is not ASCII
    needs_smtputf8: bool

    @property
    def local_part(self) -> str:
        """The part before the @, unquoted."""
        return email.utils.unquote(self.addr_spec.rsplit("@", 1)[0])

    @property
    def domain(self) -> str:
        return self.addr_spec.rsplit("@", 1)[1]

    @property
    def wire(self) -> str:
        """The form for SMTP envelopes: ASCII when there is one."""
        return self.ascii_addr_spec or self.addr_spec

    def formatted(self) -> str:
        """`Name <addr>` with the name quoted as RFC 5322 needs, for display or a header."""
        return str(HeaderAddress(self.display_name, self.local_part, self.domain))


def parse_address_list(text: str) -> list[Address]:
    """Every address in a comma-separated field; AddressError naming the first bad entry."""
    if len(text) > MAX_INPUT_CHARS:
        raise AddressError(N_("The address list is too long."))
    return [parse_address(entry) for entry in split_entries(text) if entry.strip()]


def parse_address(entry: str) -> Address:
    """One entry, `addr@domain` or `Name <addr@domain>`."""
    entry = entry.strip()
    _check_characters(entry)
    _check_brackets(entry)
    display_name, local, domain = _parse_mailbox(entry)
    return make_address(display_name, local, domain, shown_as=entry)


def make_address(display_name: str, local: str, domain: str, *, shown_as: str = "") -> Address:
    """An Address from its parts, with every check `parse_address` makes on them."""
    shown_as = shown_as or f"{local}@{domain}"
    _check_characters(display_name + local + domain, shown_as)
    if not local:
        raise AddressError(N_("“%(entry)s” has nothing before the @."), entry=shown_as)
    if not domain:
        raise AddressError(N_("“%(entry)s” has nothing after the @."), entry=shown_as)
    ascii_domain, unicode_domain = _domain_forms(domain, shown_as)
    if len(local.encode("utf-8")) > MAX_LOCAL_OCTETS:
        raise AddressError(N_("“%(entry)s”: the part before the @ is too long."), entry=shown_as)
    addr_spec = HeaderAddress(username=local, domain=unicode_domain).addr_spec
    ascii_spec = (HeaderAddress(username=local, domain=ascii_domain).addr_spec
                  if local.isascii() else None)
    if len((ascii_spec or addr_spec).encode("utf-8")) > MAX_ADDRESS_OCTETS:
        raise AddressError(N_("“%(entry)s” is too long to be an e-mail address."), entry=shown_as)
    return Address(display_name, addr_spec, ascii_spec, needs_smtputf8=not local.isascii())


def split_entries(text: str) -> list[str]:
    """Split at commas that are outside quotes, angle brackets and comments."""
    entries: list[str] = []
    current: list[str] = []
    quoted = escaped = in_angle = False
    comment_depth = 0
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"' and not comment_depth:
            quoted = not quoted
        elif quoted:
            pass
        elif char in "<>" and not comment_depth:
            in_angle = char == "<"
        elif char in "()" and not in_angle:
            comment_depth = max(0, comment_depth + (1 if char == "(" else -1))
        elif char in ",;" and not in_angle and not comment_depth:
            entries.append("".join(current))
            current = []
            continue
        current.append(char)
    entries.append("".join(current))
    return entries


def _check_characters(text: str, shown_as: str | None = None) -> None:
    bad = next((c for c in text if c in FORBIDDEN_IN_HEADERS), None)
    if bad is None:
        return
    if bad == "\x00":
        problem = N_("“%(entry)s” contains a NUL character.")
    elif len(f"a{bad}b".splitlines()) > 1:
        problem = N_("“%(entry)s” contains a line break.")
    else:
        problem = N_("“%(entry)s” contains a control character.")
    shown = "".join(" " if c in FORBIDDEN_IN_HEADERS else c for c in shown_as or text).strip()
    raise AddressError(problem, entry=shown)


def _check_brackets(entry: str) -> None:
    outside, quoted = _outside_quotes(entry)
    if quoted:
        raise AddressError(N_("“%(entry)s” has an unclosed quotation mark."), entry=entry)
    opens, closes = outside.count("<"), outside.count(">")
    if opens != closes or opens > 1 or (opens and outside.index("<") > outside.index(">")):
        raise AddressError(N_("“%(entry)s” has unbalanced angle brackets."), entry=entry)
    if opens and outside[outside.index(">") + 1:].strip():
        raise AddressError(N_("“%(entry)s” has text after the closing angle bracket."),
                           entry=entry)


def _outside_quotes(entry: str) -> tuple[str, bool]:
    """The entry without its quoted strings, and whether a quote was left open."""
    kept, quoted, escaped = [], False, False
    for char in entry:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif not quoted:
            kept.append(char)
    return "".join(kept), quoted


def _parse_mailbox(entry: str) -> tuple[str, str, str]:
    if "@" not in _outside_quotes(entry)[0].split("<")[-1]:
        raise AddressError(N_("“%(entry)s” is not an e-mail address (there is no @)."),
                           entry=entry)
    try:
        header = email.policy.default.header_factory("to", entry)
        mailboxes = header.addresses
        defects = [d for d in header.defects
                   if not isinstance(d, email.errors.NonASCIILocalPartDefect)]
    except Exception:  # the parser raises assorted errors on malformed input
        mailboxes, defects = (), ["unparseable"]
    if defects or len(mailboxes) != 1:
        raise AddressError(N_("“%(entry)s” is not a valid e-mail address."), entry=entry)
    mailbox = mailboxes[0]
    return mailbox.display_name, mailbox.username, mailbox.domain


def _domain_forms(domain: str, shown_as: str) -> tuple[str, str]:
    """(ASCII form, Unicode form) of a domain, or AddressError."""
    if domain.startswith("[") and domain.endswith("]"):
        return _literal(domain, shown_as)
    labels = domain.split(".")
    if any(not label for label in labels):
        raise AddressError(N_("“%(entry)s”: the domain “%(domain)s” has an empty part."),
                           entry=shown_as, domain=domain)
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
        unicode_domain = ascii_domain.encode("ascii").decode("idna")
    except UnicodeError:
        raise AddressError(N_("“%(entry)s”: “%(domain)s” is not a valid domain name."),
                           entry=shown_as, domain=domain) from None
    if len(ascii_domain) > MAX_DOMAIN_OCTETS:
        raise AddressError(N_("“%(entry)s”: the domain is too long."), entry=shown_as)
    for label in ascii_domain.split("."):
        if (len(label) > MAX_LABEL_OCTETS or not set(label) <= _LDH
                or label.startswith("-") or label.endswith("-")):
            raise AddressError(N_("“%(entry)s”: “%(domain)s” is not a valid domain name."),
                               entry=shown_as, domain=domain)
    return ascii_domain, unicode_domain


def _literal(domain: str, shown_as: str) -> tuple[str, str]:
    inside = domain[1:-1]
    tagged_v6 = inside.lower().startswith("ipv6:")
    try:
        address = ipaddress.ip_address(inside[5:] if tagged_v6 else inside)
    except ValueError:
        address = None
    if address is None or (address.version == 6) != tagged_v6:
        raise AddressError(N_("“%(entry)s”: “%(domain)s” is not an IP address."),
                           entry=shown_as, domain=domain)
    return domain, domain
