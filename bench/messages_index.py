"""How long `index_fields` takes per message, for the message shapes a mailbox is made of.

Run from the checkout: `.venv/bin/python bench/messages_index.py`. Prints microseconds per
message (best of several rounds) for index_fields and, for comparison, parse_message.
"""

from __future__ import annotations

import os
import sys
import timeit
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.messages import index_fields, parse_message

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


def per_message_us(function, raw: bytes) -> float:
    timer = timeit.Timer(lambda: function(raw))
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=5, number=number)) / number * 1e6


def main() -> None:
    print(f"{'message':<32}{'bytes':>9}{'index_fields µs':>18}{'parse_message µs':>19}")
    for name, make in (("plain text (4 KB)", plain_4k), ("HTML (50 KB)", html_50k),
                       ("multipart + 100 KB attachment", multipart_attachment)):
        raw = make()
        print(f"{name:<32}{len(raw):>9}{per_message_us(index_fields, raw):>18.0f}"
              f"{per_message_us(parse_message, raw):>19.0f}")


if __name__ == "__main__":
    main()
