"""Pochta's benchmark: every case of issue 6 beside what people use instead, in one run.

`python -m bench` starts the project's real Dovecot and Postfix (tests/support/realservers.py),
seeds the mailboxes with realistic mail (bench/corpus.py), runs each case several times
interleaved with its reference (`poplib`, `smtplib`, `/healthz`), and prints a table of
medians and ratios. Not a test: nothing fails on speed; the table says pass or FAIL.

    cases 1-3  bench/pop3_cases.py    downloading into the store vs poplib
    case 4     bench/inbox_case.py    the inbox at 100,000 messages vs /healthz
    case 5     bench/memory_case.py   a worker's peak memory: a 40 MB fetch, a 20 MB upload
    case 6     bench/send_case.py     sending vs smtplib
    case 7     bench/crowd_case.py    twenty users browsing at once
"""
