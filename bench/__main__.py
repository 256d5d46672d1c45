"""`python -m bench [--quick] [--repeat N] [--only CASES] [--json FILE]`: run the benchmark.

Progress goes to stderr, the table to stdout, the figures also to a JSON file (default
/tmp/pochta-bench-results.json, outside the checkout). Needs root (the real mail servers do).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import crowd_case, inbox_case, memory_case, pop3_cases, send_case
from bench.corpus import Corpus
from bench.plan import Plan
from bench.results import Row, progress, table, write_json
from bench.servers import running_servers

CASES = ("1", "2", "3", "4", "5", "6", "7")
DEFAULT_JSON = Path("/tmp/pochta-bench-results.json")  # noqa: S108 (outside the checkout)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Pochta beside poplib, smtplib and /healthz, on the real Dovecot and "
        "Postfix: a table of medians and ratios. Run as root from the checkout.",
    )
    parser.add_argument("--quick", action="store_true",
                        help="smaller mailboxes, fewer runs (a few minutes)")
    parser.add_argument("--repeat", type=int, help="timed runs per side (default 5, quick 3)")
    parser.add_argument("--only", default=",".join(CASES),
                        help="comma-separated cases to run, e.g. 1,2,6 (default: all)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON,
                        help=f"where to write the figures (default: {DEFAULT_JSON})")
    return parser.parse_args(argv)


def _machine() -> dict[str, object]:
    return {
        "python": platform.python_version(),
        "system": platform.platform(),
        "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    only = {case.strip() for case in args.only.split(",") if case.strip()}
    unknown = only - set(CASES)
    if unknown:
        raise SystemExit(f"bench: no such case: {', '.join(sorted(unknown))}")
    repeat = args.repeat or (3 if args.quick else 5)
    wanted: Callable[[str], bool] = only.__contains__
    workdir = Path(tempfile.mkdtemp(prefix="pochta-bench-", dir="/tmp"))
    workdir.chmod(0o755)
    plan = Plan(repeat=repeat, quick=args.quick, workdir=workdir)
    corpus = Corpus(seed=1)
    rows: list[Row] = []
    began = time.monotonic()
    try:
        with running_servers() as servers:
            rows += pop3_cases.run(servers, plan, corpus, wanted)
            if wanted("4"):
                rows += inbox_case.run(servers, plan, corpus)
            if wanted("5"):
                rows += memory_case.run(servers, plan, corpus)
            if wanted("6"):
                rows += send_case.run(servers, plan, corpus)
            if wanted("7"):
                rows += crowd_case.run(servers, plan, corpus)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    minutes = (time.monotonic() - began) / 60
    progress(f"done in {minutes:.1f} min")
    meta = {
        **_machine(),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "repeat": repeat,
        "quick": args.quick,
        "cases": sorted(only),
        "minutes": round(minutes, 1),
    }
    print(f"Pochta benchmark, {meta['date']}, Python {meta['python']}, {meta['cpus']} CPUs: "
          f"{repeat} runs per side, {'quick' if args.quick else 'full'} sizes; medians; "
          "ratio = Pochta / reference")
    print(table(rows))
    write_json(args.json, rows, meta)
    print(f"(figures also in {args.json})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
