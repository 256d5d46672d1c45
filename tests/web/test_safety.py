"""Redirect targets stay on the site."""

from __future__ import annotations

import pytest

from app.web.safety import local_target


@pytest.mark.parametrize("target", ["/inbox", "/message/abc?x=1", "/log#top"])
def test_local_paths_are_kept(target):
    assert local_target(target, "/") == target


@pytest.mark.parametrize("target", [
    None, "", "inbox", "https://evil.example/", "//evil.example", "/\\evil.example",
    "/\tevil", "javascript:alert(1)", "\\\\evil.example", "/ok\r\nSet-Cookie: x",
])
def test_anything_else_falls_back(target):
    assert local_target(target, "/inbox") == "/inbox"
