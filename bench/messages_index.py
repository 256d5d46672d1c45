"""How long `index_fields` takes per message, for the message shapes a mailbox is made of.

Run from the checkout: `.venv/bin/python bench/messages_index.py`. Prints microseconds per
message (best of several rounds) for index_fields; for comparison, parse_message, and the same
fields read through `email.policy.default` (the alternative index_fields decided against).
"""

from __future__ import annotations

import email.policy
import os
import sys
import timeit
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.messages import html_to_text, index_fields, parse_message

PARAGRAPH = ("Привет! This is a fairly ordinary paragraph of mail text, with a few words "
             "in Russian — посмотри, пожалуйста, отчёт — and some in English.\n")


def _headers(message: EmailMessage, subject: str) -> None:
    message["From"] = "Иван Петров <ivan@example.ru>"
    message["To"] = "Мария <maria@example.ru>, bob@example.com"
    message["Cc"] = "team@example.com"
    message["Subject"] = subject
    message["Date"] = "Tue, 12 Mar 2024 10:15:00 +0300"
    message["Message-ID"] = "<bench.1@example.ru>"


def plain_4k() -> bytes:
    message = EmailMessage()
    _headers(message, "Отчёт за неделю")
    message.set_content(PARAGRAPH * 16)
    return message.as_bytes()


def html_50k() -> bytes:
    message = EmailMessage()
    _headers(message, "Рассылка: новости недели")
    cell = "<tr><td style='color:#333;padding:4px'><p>{}</p><a href='https://x.example/'>ссылка</a></td></tr>\n"
    body = "<html><body><table>" + "".join(cell.format(PARAGRAPH) for _ in range(220))
    message.set_content(body + "</table></body></html>", subtype="html")
    return message.as_bytes()


def multipart_attachment() -> bytes:
    message = EmailMessage()
    _headers(message, "Документы")
    message.set_content(PARAGRAPH * 10)
    message.add_alternative(f"<p>{PARAGRAPH * 10}</p>", subtype="html")
    message.add_attachment(os.urandom(100_000), maintype="application", subtype="pdf",
                           filename="отчёт.pdf")
    return message.as_bytes()


def default_policy_fields(raw: bytes) -> tuple:
    """What index_fields computes, the policy.default way (header objects, get_body)."""
    message = BytesParser(policy=email.policy.default).parsebytes(raw)
    body = message.get_body(("plain", "html"))
    text = body.get_content() if body is not None else ""
    if body is not None and body.get_content_subtype() == "html":
        text = html_to_text(text)
    return (str(message["subject"]), message["from"].addresses, message["to"].addresses,
            message["cc"].addresses, message["date"].datetime, message["message-id"],
            any(True for _ in message.iter_attachments()), text[:65536])


def per_message_us(function, raw: bytes) -> float:
    timer = timeit.Timer(lambda: function(raw))
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=5, number=number)) / number * 1e6


def main() -> None:
    print(f"{'message':<32}{'bytes':>9}{'index_fields µs':>18}{'parse_message µs':>19}"
          f"{'policy.default µs':>20}")
    for name, make in (("plain text (4 KB)", plain_4k), ("HTML (50 KB)", html_50k),
                       ("multipart + 100 KB attachment", multipart_attachment)):
        raw = make()
        print(f"{name:<32}{len(raw):>9}{per_message_us(index_fields, raw):>18.0f}"
              f"{per_message_us(parse_message, raw):>19.0f}"
              f"{per_message_us(default_policy_fields, raw):>20.0f}")


if __name__ == "__main__":
    main()
