"""Oversized uploads (issue 5, item 11): refused with a clear message, nothing typed lost.

The page checks before uploading where JavaScript runs (the browser tests drive that); here:
the form carries the limit and the note the script shows, the server answers a body beyond
its upload limit with a clear 413 page before reading it, and a message that would exceed
POCHTA_MAX_MESSAGE_BYTES comes back as the form with everything typed and uploaded kept.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.demo.server import DemoMailServer
from tests.security.pages import parse
from tests.web.conftest import app_config, csrf_token, log_in

LIMIT = 200_000
UPLOAD_LIMIT = LIMIT + 1024 * 1024  # the message plus room for the typed fields


@pytest.fixture
def small(tmp_path: Path, mail_server: DemoMailServer) -> Iterator[Flask]:
    application = create_app(app_config(tmp_path, mail_server,
                                        POCHTA_MAX_MESSAGE_BYTES=str(LIMIT)))
    yield application
    application.extensions["pochta.store"].close()


@pytest.fixture
def browser(small: Flask, mail_server: DemoMailServer) -> FlaskClient:
    client = small.test_client()
    log_in(client, mail_server)
    return client


def typed(server: DemoMailServer) -> dict[str, str]:
    return {"to": server.address("bob"), "subject": "the quarterly figures",
            "body": "Dear Bob,\nplease find them attached.\n— Alice"}


def send(browser: FlaskClient, server: DemoMailServer, size: int, **headers: str):
    upload = (io.BytesIO(os.urandom(size)), "figures.bin")
    data = {"csrf_token": csrf_token(browser, "/compose"), **typed(server),
            "attachments": [upload]}
    return browser.post("/compose", data=data, headers=headers)


def test_the_form_carries_the_limit_for_the_page_check(browser: FlaskClient) -> None:
    document = parse(browser.get("/compose").get_data(as_text=True))
    (form,) = [f for f in document.find("form") if f.get("action") == "/compose"]
    assert form.get("data-max-bytes") == str(LIMIT)
    assert form.get("enctype") == "multipart/form-data"
    (note,) = [e for e in document.elements if e.get("id") == "upload-note"]
    assert note.get("hidden") is not None and note.get("role") == "alert"
    page = browser.get("/compose").get_data(as_text=True)
    note_text = page.split('id="upload-note"', 1)[1].split("</p>", 1)[0]
    assert "195" in note_text  # 200,000 bytes as the page says it: 195.3 KB
    assert any((s.get("src") or "").startswith("/static/") for s in document.find("script"))


def test_an_upload_beyond_the_server_limit_is_a_clear_413(browser: FlaskClient,
                                                          mail_server: DemoMailServer) -> None:
    response = send(browser, mail_server, UPLOAD_LIMIT + 1)
    assert response.status_code == 413
    page = response.get_data(as_text=True)
    assert "Too large" in page and "Nothing was sent" in page
    assert "MB" in page  # the limit, as people read it
    assert mail_server.mailboxes.count("bob") == 0

    as_json = send(browser, mail_server, UPLOAD_LIMIT + 1, Accept="application/json")
    assert as_json.status_code == 413 and "error" in as_json.get_json()


# Werkzeug leaves the half-spooled temporary file of a stream cut off mid-way to the garbage
# collector (an fd until then, reported as unraisable): not what this test is about.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_chunked_upload_without_a_length_is_cut_off_too(browser: FlaskClient,
                                                          mail_server: DemoMailServer) -> None:
    token = csrf_token(browser, "/compose")
    boundary = "BB"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
            f"{token}\r\n--{boundary}\r\nContent-Disposition: form-data; "
            'name="attachments"; filename="big.bin"\r\n\r\n').encode()
    body += b"x" * (UPLOAD_LIMIT + 1) + f"\r\n--{boundary}--\r\n".encode()
    response = browser.post(
        "/compose", input_stream=io.BytesIO(body),
        content_type=f"multipart/form-data; boundary={boundary}",
        environ_overrides={"wsgi.input_terminated": True},
        headers={"Transfer-Encoding": "chunked"})
    assert response.status_code == 413
    assert mail_server.mailboxes.count("bob") == 0


@pytest.mark.parametrize("size", [LIMIT + 100_000, 160_000])  # too big; too big once encoded
def test_a_message_beyond_the_limit_comes_back_with_everything_kept(
        browser: FlaskClient, mail_server: DemoMailServer, size: int) -> None:
    response = send(browser, mail_server, size)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    document = parse(page)
    assert "the limit is" in page and "195" in page
    values = {e.get("name"): e.get("value") for e in document.find("input")}
    assert values["to"] == mail_server.address("bob")
    assert values["subject"] == "the quarterly figures"
    assert "— Alice" in document.text  # the body, in its textarea
    kept = [e for e in document.find("input") if e.get("name") == "keep_attachment"]
    assert len(kept) == 1 and kept[0].get("checked") is not None
    assert "figures.bin" in document.text
    assert mail_server.mailboxes.count("bob") == 0


def test_a_message_within_the_limit_is_sent(browser: FlaskClient,
                                            mail_server: DemoMailServer) -> None:
    """The control: the limit is the limit, not a refusal of every attachment."""
    assert send(browser, mail_server, 50_000).status_code == 303
    assert mail_server.mailboxes.count("bob") == 1
