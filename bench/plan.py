"""How big and how often: the sizes of a default run, and of a `--quick` one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Plan:
    repeat: int
    quick: bool
    workdir: Path  # data dirs of the stores and live apps; removed at the end of the run

    @property
    def small_messages(self) -> int:  # cases 1 and 2
        return 500 if self.quick else 2000

    @property
    def big_messages(self) -> int:  # case 2, 1 MB each
        return 20 if self.quick else 50

    @property
    def kept_messages(self) -> int:  # case 3
        return 2000 if self.quick else 10_000

    @property
    def inbox_messages(self) -> int:  # case 4
        return 10_000 if self.quick else 100_000

    @property
    def page_rounds(self) -> int:  # case 4, test-client requests per path and repeat
        return 10 if self.quick else 20

    @property
    def wrk_seconds(self) -> int:  # case 4, per path and repeat
        return 1 if self.quick else 2

    @property
    def crowd_seconds(self) -> float:  # case 7
        return 4.0 if self.quick else 10.0

    @property
    def crowd_messages(self) -> int:  # case 7, per user
        return 100 if self.quick else 300
