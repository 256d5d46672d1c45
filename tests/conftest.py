"""Fixtures shared by the whole suite; the heavier ones live in tests/support/."""
