"""The embedded loopback mail server behind `pochta demo`."""
