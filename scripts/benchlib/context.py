"""What every case gets: the run's scale (full or --quick), a work dir and a progress line."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


@dataclass(slots=True)
class BenchContext:
    quick: bool
    workdir: Path
    profile_dir: Path | None = None  # run each case's daemon under cProfile, stats here
    started: float = field(default_factory=time.monotonic)

    def pick(self, full: T, quick: T) -> T:
        """The full-run value, or the --quick one."""
        return quick if self.quick else full

    def dir(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def progress(self, case: str, message: str) -> None:
        elapsed = time.monotonic() - self.started
        print(f"[{elapsed:6.1f}s] {case}: {message}", flush=True)
