from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.messages import analyse_trace
from app.messages.trace import parse_authentication_results, parse_received
from tests.messages.samples import raw

POSTFIX = (
    "Received: from mail.example.org (mail.example.org [192.0.2.10])\r\n"
    "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)\r\n"
    "\t key-exchange X25519 server-signature RSA-PSS (2048 bits))\r\n"
    "\t(No client certificate requested)\r\n"
    "\tby mx.example.com (Postfix) with ESMTPS id 4ABCD\r\n"
    "\tfor <user@example.com>; Tue, 12 Mar 2024 10:15:07 +0300"
)
EXIM = (
    "Received: from [10.0.0.5] (helo=laptop)\r\n"
    "\tby mail.example.org with esmtpsa (TLS1.3) tls TLS_AES_128_GCM_SHA256\r\n"
    "\t(Exim 4.96) (envelope-from <a@example.org>) id 1rk; Tue, 12 Mar 2024 07:15:02 +0000"
)
LOCAL = "Received: from localhost (localhost [IPv6:::1]) by laptop with SMTP; garbage date"
LMTP = ("Received: from mx.example.com by imap.example.com with LMTP id Zx;"
        " Tue, 12 Mar 2024 10:15:04 +0300")


def message(*headers: str) -> bytes:
    return raw(*headers, "Subject: trace", body=b"body")


def test_hops_are_in_delivery_order():
    report = analyse_trace(message(POSTFIX, EXIM, LOCAL))
    assert [hop.by_host for hop in report.hops] == ["laptop", "mail.example.org",
                                                    "mx.example.com"]


def test_postfix_hop_fields():
    hop = analyse_trace(message(POSTFIX)).hops[0]
    assert (hop.from_host, hop.from_ip, hop.by_host, hop.protocol) == (
        "mail.example.org", "192.0.2.10", "mx.example.com", "ESMTPS")
    assert hop.tls is True
    assert hop.tls_detail.startswith("using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384")
    assert hop.time == dt.datetime(2024, 3, 12, 7, 15, 7, tzinfo=dt.UTC)


def test_exim_hop_fields():
    hop = analyse_trace(message(EXIM)).hops[0]
    assert (hop.from_host, hop.from_ip, hop.protocol, hop.tls) == (
        "[10.0.0.5]", "10.0.0.5", "esmtpsa", True)


def test_plain_smtp_hop_is_not_tls_and_ipv6_literal_is_read():
    hop = analyse_trace(message(LOCAL)).hops[0]
    assert (hop.protocol, hop.tls, hop.from_ip) == ("SMTP", False, "::1")
    assert hop.time is None


def test_hop_without_protocol_has_unknown_tls():
    hop = parse_received("from a by b; Tue, 12 Mar 2024 10:15:04 +0300")
    assert hop.protocol is None and hop.tls is None


def test_postfix_tls_comment_alone_means_tls():
    hop = parse_received("from a (a [192.0.2.1]) (using TLSv1.2 with cipher X) by b with ESMTP;"
                         " Tue, 12 Mar 2024 10:15:04 +0300")
    assert hop.protocol == "ESMTP" and hop.tls is True


def test_delays_between_hops_and_total():
    report = analyse_trace(message(LMTP, POSTFIX, EXIM))
    assert [hop.delay_seconds for hop in report.hops] == [None, 5.0, -3.0]
    assert report.total_delay_seconds == 2.0


def test_unknown_times_leave_delays_unknown():
    report = analyse_trace(message(LOCAL, EXIM))
    assert [hop.delay_seconds for hop in report.hops] == [None, None]
    assert report.total_delay_seconds is None


@pytest.mark.parametrize("value", ["", "(((", "from", ";;;;", "from [1.2.3.999] by",
                                   "from x (unterminated by y with ESMTPS; Tue"])
def test_malformed_received_keeps_raw_text(value):
    hop = parse_received(value)
    assert hop.raw == value


def test_authentication_results_are_read():
    header = ("Authentication-Results: mx.example.com; dkim=pass (2048-bit key)"
              " header.d=example.org header.s=s1; spf=softfail (domain of a@example.org does"
              " not designate 192.0.2.10) smtp.mailfrom=a@example.org;"
              ' dmarc=fail reason="policy says no" header.from=example.org;'
              " arc = none")
    results = analyse_trace(message(header)).auth_results
    assert [(r.method, r.result) for r in results] == [
        ("dkim", "pass"), ("spf", "softfail"), ("dmarc", "fail"), ("arc", "none")]
    dkim, spf, dmarc, _ = results
    assert dkim.properties == {"header.d": "example.org", "header.s": "s1"}
    assert dkim.comment == "2048-bit key"
    assert spf.properties == {"smtp.mailfrom": "a@example.org"}
    assert dmarc.reason == "policy says no"
    assert {r.authserv_id for r in results} == {"mx.example.com"}


def test_authentication_results_none_gives_no_verdicts():
    assert parse_authentication_results("mx.example.com; none") == []


@pytest.mark.parametrize("value", ["", ";", "x; =", "x; dkim", "(((", 'x; a=b reason="open'])
def test_malformed_authentication_results_do_not_raise(value):
    assert isinstance(parse_authentication_results(value), list)


def test_received_spf_and_dkim_signature_are_reported():
    report = analyse_trace(message(
        "Received-SPF: Pass (mailfrom) identity=mailfrom; client-ip=192.0.2.10;"
        " envelope-from=a@example.org; receiver=mx.example.com",
        "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org;\r\n"
        "\ts=s1; h=from:to; bh=abc; b=def"))
    [spf] = report.auth_results
    assert (spf.method, spf.result, spf.source) == ("spf", "pass", "Received-SPF")
    assert spf.properties["client-ip"] == "192.0.2.10"
    assert report.has_received_spf
    [signature] = report.dkim_signatures
    assert (signature.domain, signature.selector, signature.algorithm) == (
        "example.org", "s1", "rsa-sha256")


def test_message_without_trace_headers_gives_an_empty_report():
    report = analyse_trace(b"Subject: nothing\r\n\r\nbody")
    assert report.hops == [] and report.auth_results == [] and report.dkim_signatures == []
    assert report.total_delay_seconds is None and not report.has_received_spf


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=200), max_size=5))
def test_arbitrary_trace_headers_never_raise(values):
    headers = []
    for value in values:
        clean = " ".join(value.split())
        headers += [f"Received: {clean}", f"Authentication-Results: {clean}",
                    f"Received-SPF: {clean}", f"DKIM-Signature: {clean}"]
    report = analyse_trace(raw(*headers, body=b"x"))
    assert len(report.hops) == len(values)
