from __future__ import annotations

import pytest

from app.messages import Address, AddressError, parse_address_list


def test_plain_address():
    [address] = parse_address_list("ivan@example.ru")
    assert address == Address("", "ivan@example.ru", "ivan@example.ru", needs_smtputf8=False)


def test_display_name_and_idn_domain_keep_unicode_for_display_and_punycode_for_the_wire():
    [address] = parse_address_list("Иван Петров <ivan@пример.рф>")
    assert address.display_name == "Иван Петров"
    assert address.addr_spec == "ivan@пример.рф"
    assert address.ascii_addr_spec == "ivan@xn--e1afmkfd.xn--p1ai"
    assert address.wire == "ivan@xn--e1afmkfd.xn--p1ai"
    assert not address.needs_smtputf8
    assert address.formatted() == "Иван Петров <ivan@пример.рф>"


def test_punycode_input_is_shown_in_unicode():
    [address] = parse_address_list("a@xn--e1afmkfd.xn--p1ai")
    assert address.addr_spec == "a@пример.рф"


def test_non_ascii_local_part_needs_smtputf8():
    [address] = parse_address_list("иван@пример.рф")
    assert address.needs_smtputf8
    assert address.ascii_addr_spec is None
    assert address.wire == "иван@пример.рф"


def test_commas_inside_quoted_names_do_not_split():
    addresses = parse_address_list('"Петров, Иван" <ivan@x.ru>, b@c.org; c@d.org,')
    assert [a.addr_spec for a in addresses] == ["ivan@x.ru", "b@c.org", "c@d.org"]
    assert addresses[0].display_name == "Петров, Иван"
    assert addresses[0].formatted() == '"Петров, Иван" <ivan@x.ru>'


def test_empty_input_gives_no_addresses():
    assert parse_address_list("  , ,") == []


def test_quoted_local_part_round_trips():
    [address] = parse_address_list('"john smith"@example.com')
    assert address.addr_spec == '"john smith"@example.com'
    assert address.local_part == "john smith"
    assert address.formatted() == '"john smith"@example.com'


@pytest.mark.parametrize("literal", ["a@[192.0.2.1]", "a@[IPv6:2001:db8::1]"])
def test_domain_literals_are_accepted(literal):
    assert parse_address_list(literal)[0].wire == literal


@pytest.mark.parametrize(("text", "bad_entry", "reason"), [
    ("ok@x.org, ivan.example.ru", "ivan.example.ru", "no @"),
    ("a@x.org, Ivan <i@x.org", "Ivan <i@x.org", "angle brackets"),
    ("i@x.org>", "i@x.org>", "angle brackets"),
    ("Ivan <i@x.org> trailing", "Ivan <i@x.org> trailing", "after the closing"),
    ('"unterminated <i@x.org>', '"unterminated <i@x.org>', "quotation mark"),
    ("@x.org", "@x.org", "not a valid"),
    ("i@", "i@", "not a valid"),
    ("i@-x.org", "i@-x.org", "not a valid domain"),
    ("i@x_y.org", "i@x_y.org", "not a valid domain"),
    ("i@x..org", "i@x..org", "not a valid"),
    ("a..b@x.org", "a..b@x.org", "not a valid"),
    ("i@" + "x" * 64 + ".org", "i@" + "x" * 64 + ".org", "not a valid domain"),
    ("i" * 65 + "@x.org", "i" * 65 + "@x.org", "too long"),
    ("i@" + ".".join(["abcdefghi"] * 26) + ".org", "i@", "too long"),
    ("i@[300.1.1.1]", "i@[300.1.1.1]", "not an IP address"),
    ("i@[IPv6:1.2.3.4]", "i@[IPv6:1.2.3.4]", "not an IP address"),
])
def test_bad_entries_are_refused_naming_the_entry(text, bad_entry, reason):
    with pytest.raises(AddressError) as caught:
        parse_address_list(text)
    assert bad_entry in str(caught.value)
    assert reason in str(caught.value)


@pytest.mark.parametrize("text", [
    "a@x.org\r\nBcc: evil@x.org", "Ivan\n <a@x.org>", "a@x.org\x00", "a\rb@x.org",
    "Name\x1b <a@x.org>",
])
def test_line_breaks_and_control_characters_are_refused(text):
    with pytest.raises(AddressError, match=r"line break|NUL|control character"):
        parse_address_list(text)


def test_absurdly_long_input_is_refused():
    with pytest.raises(AddressError):
        parse_address_list("a@x.org, " * 20_000)


def test_address_error_is_a_value_error():
    assert issubclass(AddressError, ValueError)
