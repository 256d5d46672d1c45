"""Pochta's own SMTP and POP3 clients, on `socket` and `ssl`.

This package knows sockets and RFCs and nothing of Flask or the store, so the command line,
the web app and the tests can all drive it the same way.
"""
