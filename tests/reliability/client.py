"""A browser without a browser: one user's cookie jar speaking HTTP to the running app.

Reliability tests drive gunicorn over real sockets from many threads at once, so each
simulated user is a `WebUser` with its own `http.cookiejar` (urllib, since `requests` is not
a dependency); the benchmarks log in and upload through it too. Redirects are not
followed: a test checks the 303 itself. Every request has a timeout, so an app that hangs
makes the test fail instead of hanging with it.
"""

from __future__ import annotations

import http.cookiejar
import io
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from html import unescape

from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

CSRF_FIELD = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
ERROR_ALERT = re.compile(r'<div class="alert error"[^>]*>\s*<p>(.*?)</p>', re.DOTALL)
MESSAGE_LINK = re.compile(r'<a href="/message/([^/"?]+)[^"]*"[^>]*>([^<]*)</a>')
REQUEST_TIMEOUT = 30.0


@dataclass
class Reply:
    """What the app answered, and how long it took."""

    status: int
    headers: dict[str, str]
    body: bytes
    elapsed: float

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> dict:
        return json.loads(self.body)

    @property
    def location(self) -> str:
        return self.headers.get("location", "")

    @property
    def error(self) -> str:
        """The page's error sentence (login, compose), unescaped; "" when there is none."""
        match = ERROR_ALERT.search(self.text)
        return " ".join(unescape(match.group(1)).split()) if match else ""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class WebUser:
    """One person at one browser: a cookie jar, the CSRF token of the last form, a timeout."""

    def __init__(self, base_url: str, *, timeout: float = REQUEST_TIMEOUT):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.jar = http.cookiejar.CookieJar()
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirects()
        )

    def request(
        self,
        method: str,
        path: str,
        fields: Mapping[str, object] | None = None,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Reply:
        """`fields` go as a urlencoded form (a list value repeats its name, as a checkbox's
        hidden twin does); `body` is sent as it is, with the caller's Content-Type."""
        data = body
        all_headers = dict(headers or {})
        if fields is not None:
            data = urllib.parse.urlencode(fields, doseq=True).encode()
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        request = urllib.request.Request(
            self.base_url + path, data=data, headers=all_headers, method=method
        )
        started = time.monotonic()
        try:
            response = self._opener.open(request, timeout=timeout or self.timeout)
        except urllib.error.HTTPError as answer:  # 3xx (not followed), 4xx, 5xx
            with answer:
                content = answer.read()
            return Reply(answer.code, _lower(answer.headers), content, time.monotonic() - started)
        with response:
            content = response.read()
        return Reply(response.status, _lower(response.headers), content, time.monotonic() - started)

    def get(self, path: str, **kwargs: object) -> Reply:
        return self.request("GET", path, **kwargs)  # type: ignore[arg-type]

    def csrf_token(self, page: str) -> str:
        reply = self.get(page)
        match = CSRF_FIELD.search(reply.text)
        assert match, f"no csrf_token on {page} ({reply.status}): {reply.text[:500]}"
        return match.group(1)

    def post_form(self, path: str, fields: Mapping[str, object], *, page: str | None = None,
                  **kwargs: object) -> Reply:
        """POST like a browser: with the CSRF token of the page that shows the form."""
        token = self.csrf_token(page or path)
        return self.request("POST", path, {"csrf_token": token, **fields}, **kwargs)  # type: ignore[arg-type]

    def post_multipart(self, path: str, fields: Mapping[str, str],
                       files: Mapping[str, tuple[str, bytes]], *, page: str | None = None) -> Reply:
        """A multipart/form-data POST, as a browser sends a form with file inputs."""
        form: dict[str, object] = {"csrf_token": self.csrf_token(page or path), **fields}
        for name, (filename, data) in files.items():
            form[name] = FileStorage(io.BytesIO(data), filename, name, "application/octet-stream")
        boundary, body = encode_multipart(form)
        return self.request("POST", path, body=body, headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}"})

    def cookie_header(self) -> str:
        """The session as a `Cookie:` header, for load generators that bring no jar."""
        return "; ".join(f"{cookie.name}={cookie.value}" for cookie in self.jar)

    # -- what users do -------------------------------------------------------------------

    def log_in(self, fields: Mapping[str, object], **kwargs: object) -> Reply:
        return self.post_form("/login", fields, **kwargs)

    def start_fetch(self) -> str:
        token = self.csrf_token("/inbox")
        reply = self.request(
            "POST", "/fetch", {"csrf_token": token}, headers={"Accept": "application/json"}
        )
        assert reply.status == 202, f"POST /fetch answered {reply.status}: {reply.text[:500]}"
        return reply.json()["job"]

    def job(self, job_id: str) -> dict:
        reply = self.get(f"/fetch/{job_id}")
        assert reply.status == 200, f"GET /fetch/{job_id} answered {reply.status}"
        return reply.json()

    def wait_for_job(self, job_id: str, timeout: float, *, poll: float = 0.1) -> dict:
        """Poll until the job leaves "running"; its last state (still running on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.job(job_id)
            if state["state"] != "running" or time.monotonic() > deadline:
                return state
            time.sleep(poll)

    def inbox_subjects(self, page: int = 1) -> dict[str, str]:
        """Message id → subject, as the inbox page lists them."""
        reply = self.get(f"/inbox?page={page}")
        assert reply.status == 200, f"GET /inbox answered {reply.status}"
        return {mid: unescape(subject).strip() for mid, subject in MESSAGE_LINK.findall(reply.text)}


def _lower(headers: object) -> dict[str, str]:
    return {key.lower(): value for key, value in headers.items()}  # type: ignore[attr-defined]
