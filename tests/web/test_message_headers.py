"""The headers view: every field, the Received hops in delivery order, and the verdicts."""

from __future__ import annotations

import re

from tests.messages.samples import encoded_word, raw
from tests.web.test_message import deliver, page


def traced_message() -> bytes:
    """Three hops, newest first as servers prepend them: 10:00:00 -> :05 -> 10:01:35."""
    return raw(
        "Return-Path: <news@shop.example>",
        "Received: from mx.pochta.test (mx.pochta.test [192.0.2.30])",
        "\tby pop.pochta.test (Postfix) with LMTP id 4Vx1; Tue, 12 Mar 2024 10:01:35 +0000",
        "Authentication-Results: mx.pochta.test; spf=pass smtp.mailfrom=shop.example;",
        "\tdkim=fail (bad signature) header.d=shop.example header.s=sel1;",
        "\tdmarc=pass header.from=shop.example",
        "Received: from out.shop.example (out.shop.example [198.51.100.7])",
        "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))",
        "\tby mx.pochta.test (Postfix) with ESMTPS id 7Ab2",
        "\tfor <alice@pochta.test>; Tue, 12 Mar 2024 12:00:05 +0200",
        "Received: from laptop.shop.example ([203.0.113.9])",
        "\tby out.shop.example with ESMTP id 11; Tue, 12 Mar 2024 10:00:00 +0000",
        "DKIM-Signature: v=1; a=rsa-sha256; d=shop.example; s=sel1; h=from:to; b=abc; bh=def",
        "From: Shop <news@shop.example>",
        "To: alice@pochta.test",
        f"Subject: {encoded_word('Скидки <b>недели</b>', 'koi8-r')}",
        "X-Evil: <script>alert(1)</script>",
        "Date: Tue, 12 Mar 2024 09:59:58 +0000",
        "Message-ID: <traced.1@shop.example>",
        body=b"Sale!\r\n",
    )


def test_hops_are_listed_in_delivery_order_with_delays(app, logged_in, mail_server):
    (message_id,) = deliver(app, logged_in, mail_server, traced_message())
    html = page(logged_in, f"/message/{message_id}/headers")
    rows = re.findall(r"<tr>\s*<th scope=\"row\".*?</tr>", html, re.DOTALL)
    assert len(rows) == 3
    first, second, third = rows
    assert "laptop.shop.example" in first and "203.0.113.9" in first
    assert "out.shop.example" in first and "ESMTP<" in first
    assert "start" in first
    assert "out.shop.example" in second and "198.51.100.7" in second
    assert "mx.pochta.test" in second and "ESMTPS" in second
    assert '<span class="tls-yes">yes</span>' in second and "TLSv1.3" in second
    assert "2024-03-12 12:00:05 +0200" in second
    assert ">5 s<" in second
    assert "pop.pochta.test" in third and "LMTP" in third
    assert ">1 min 30 s<" in third
    assert '<span class="tls-no">no</span>' in first
    assert "Total delay from the first to the last hop: 1 min 35 s" in html
    assert '<th scope="col">' in html


def test_spf_dkim_dmarc_results_are_shown_with_their_styling(app, logged_in, mail_server):
    (message_id,) = deliver(app, logged_in, mail_server, traced_message())
    html = page(logged_in, f"/message/{message_id}/headers")
    sections = dict(re.findall(r"<h3>(SPF|DKIM|DMARC)</h3>(.*?)</div>", html, re.DOTALL))
    assert '<span class="verdict verdict-pass">pass</span>' in sections["SPF"]
    assert "smtp.mailfrom=shop.example" in sections["SPF"]
    assert '<span class="verdict verdict-fail">fail</span>' in sections["DKIM"]
    assert "bad signature" in sections["DKIM"]
    assert "<code>d=shop.example</code> <code>s=sel1</code>" in sections["DKIM"]
    assert '<span class="verdict verdict-pass">pass</span>' in sections["DMARC"]
    assert "checked by mx.pochta.test" in sections["DMARC"]


def test_all_header_fields_are_decoded_and_escaped(app, logged_in, mail_server):
    (message_id,) = deliver(app, logged_in, mail_server, traced_message())
    html = page(logged_in, f"/message/{message_id}/headers")
    assert "<dt>X-Evil</dt>\n    <dd>&lt;script&gt;alert(1)&lt;/script&gt;</dd>" in html
    assert "<script>alert(1)" not in html
    assert "<dd>Скидки &lt;b&gt;недели&lt;/b&gt;</dd>" in html
    assert "<dt>DKIM-Signature</dt>" in html
    assert "<dt>Return-Path</dt>" in html


def test_message_without_trace_says_so(app, logged_in, mail_server):
    message = raw("From: a@example.com", "Subject: plain", "Message-ID: <plain.9@example.com>")
    (message_id,) = deliver(app, logged_in, mail_server, message)
    html = page(logged_in, f"/message/{message_id}/headers")
    assert "This message has no Received fields." in html
    assert html.count("No result recorded.") == 3


def test_headers_of_a_big_message_are_read_without_its_body(app, logged_in, mail_server):
    body = b"Received: from fake.example by fake.example; Tue, 12 Mar 2024 10:00:00 +0000\r\n"
    message = raw("From: a@example.com", "Subject: big", "Message-ID: <bighead.1@example.com>",
                  body=body * 20000)
    (message_id,) = deliver(app, logged_in, mail_server, message)
    html = page(logged_in, f"/message/{message_id}/headers")
    assert "fake.example" not in html
    assert "This message has no Received fields." in html
