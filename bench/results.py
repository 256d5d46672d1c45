"""What a case measured, how it is compared, and the table and JSON that come out of a run.

The machines are noisy, so a row's figure is a ratio: Pochta's median over the reference's,
both measured in the same run, interleaved (reference, Pochta, Pochta, reference, ...), so
that drift in the machine's speed hits both sides alike.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Row:
    """One line of the table.

    A ratio row compares Pochta's median with the reference's (`bar` is the highest ratio
    that passes); a limit row compares one value with a limit in its own unit (MB of memory,
    errors), with no reference.
    """

    case: str
    what: str
    reference: str = ""
    unit: str = "s"
    reference_samples: list[float] = field(default_factory=list)
    pochta_samples: list[float] = field(default_factory=list)
    bar: float | None = None
    aim: float | None = None
    value: float | None = None  # a limit row's figure
    limit: float | None = None  # a limit row passes below this
    extra: dict[str, object] = field(default_factory=dict)
    note: str = ""

    @property
    def reference_median(self) -> float | None:
        return statistics.median(self.reference_samples) if self.reference_samples else None

    @property
    def pochta_median(self) -> float | None:
        return statistics.median(self.pochta_samples) if self.pochta_samples else None

    @property
    def ratio(self) -> float | None:
        ref, ours = self.reference_median, self.pochta_median
        if ref is None or ours is None or ref <= 0:
            return None
        return ours / ref

    @property
    def passed(self) -> bool | None:
        if self.bar is not None and self.ratio is not None:
            return self.ratio <= self.bar
        if self.limit is not None and self.value is not None:
            return self.value < self.limit
        return None

    def as_json(self) -> dict[str, object]:
        data = asdict(self)
        data.update(
            reference_median=self.reference_median,
            pochta_median=self.pochta_median,
            ratio=self.ratio,
            passed=self.passed,
        )
        return data


def progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def interleaved(
    repeat: int,
    reference: Callable[[], float],
    pochta: Callable[[], float],
    *,
    label: str = "",
) -> tuple[list[float], list[float]]:
    """Run both sides `repeat` times, alternating which goes first; each callable returns
    its own measured seconds (so setup such as reseeding stays outside). One untimed run of
    each first."""
    reference()
    pochta()
    ours: list[float] = []
    theirs: list[float] = []
    for k in range(repeat):
        order = ((theirs, reference), (ours, pochta))
        for samples, run in order if k % 2 == 0 else order[::-1]:
            samples.append(run())
        progress(f"  {label} run {k + 1}/{repeat}: reference {theirs[-1]:.4g}, "
                 f"Pochta {ours[-1]:.4g}")
    return theirs, ours


# -- output ---------------------------------------------------------------------------------


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value:.3f} s" if value >= 0.1 else f"{value * 1000:.1f} ms"
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "errors":
        return f"{value:,.0f} errors"
    return f"{value:,.1f} {unit}".strip()


def _verdict(row: Row) -> str:
    passed = row.passed
    return "-" if passed is None else ("pass" if passed else "FAIL")


def _bar(row: Row) -> str:
    if row.bar is not None:
        aim = f" (aim {row.aim:g}x)" if row.aim is not None else ""
        return f"<= {row.bar:g}x{aim}"
    if row.limit is not None:
        return f"< {row.limit:g} {row.unit}".rstrip()
    return ""


def _extra(row: Row) -> str:
    parts = [f"{key} {value}" for key, value in row.extra.items()]
    if row.note:
        parts.append(row.note)
    return "; ".join(parts)


def table(rows: list[Row]) -> str:
    """A Markdown table (it reads as well in a terminal as in the README)."""
    header = ("case", "what", "reference", "reference median", "Pochta median", "ratio",
              "bar", "result", "more")
    lines = []
    for row in rows:
        if row.limit is not None:
            ours = _number(row.value, row.unit)
        else:
            ours = _number(row.pochta_median, row.unit)
        ratio = f"{row.ratio:.2f}x" if row.ratio is not None else "-"
        lines.append((row.case, row.what, row.reference or "-",
                      _number(row.reference_median, row.unit), ours, ratio, _bar(row),
                      _verdict(row), _extra(row)))
    widths = [max(len(str(line[i])) for line in [header, *lines]) for i in range(len(header))]

    def render(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([render(header), rule, *(render(line) for line in lines)])


def write_json(path: Path, rows: list[Row], meta: dict[str, object]) -> None:
    document = {"meta": meta, "rows": [row.as_json() for row in rows]}
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")
