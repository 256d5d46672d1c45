"""Fixtures shared by the whole suite; the heavier ones live in tests/support/."""

from tests.support.realservers import real_servers  # noqa: F401
