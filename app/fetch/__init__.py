"""Fetching: the policy that decides what is new and when DELE is allowed, the places mail
is delivered to, and the background jobs the web app runs it in."""
