"""What a case hands the report: figures per repeat beside their baseline, and verdicts."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .stats import Spread, ratios

SAMPLES_KEPT = 500


def thin(values: list[float], keep: int = SAMPLES_KEPT) -> list[float]:
    """`keep` evenly spaced order statistics (min and max included) of `values`."""
    ordered = sorted(values)
    if len(ordered) <= keep:
        return ordered
    step = (len(ordered) - 1) / (keep - 1)
    return [ordered[round(i * step)] for i in range(keep)]


@dataclass(slots=True)
class Row:
    """One figure measured per repeat, with the baseline measured in the same repeats.

    With a baseline, the ratio is taken per repeat (value_i / baseline_i), so a
    machine that was slow during one repeat is slow for both sides of that ratio.
    """

    label: str
    unit: str
    values: list[float]
    baseline_label: str = ""
    baseline: list[float] | None = None
    extra: list[float] | None = None  # the case's `extra_column`, measured in the same repeats

    @property
    def spread(self) -> Spread:
        return Spread.of(self.values)

    @property
    def baseline_spread(self) -> Spread | None:
        return None if self.baseline is None else Spread.of(self.baseline)

    @property
    def ratio_spread(self) -> Spread | None:
        if self.baseline is None:
            return None
        return Spread.of([r for r in ratios(self.values, self.baseline) if not math.isnan(r)])

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "label": self.label,
            "unit": self.unit,
            "values": self.values,
            "summary": self.spread.as_dict(),
        }
        if self.baseline is not None:
            out["baseline_label"] = self.baseline_label
            out["baseline"] = self.baseline
            out["baseline_summary"] = Spread.of(self.baseline).as_dict()
            ratio = self.ratio_spread
            out["ratio"] = ratio.as_dict() if ratio else None
        if self.extra is not None:
            out["extra"] = self.extra
            out["extra_summary"] = Spread.of(self.extra).as_dict()
        return out


@dataclass(frozen=True, slots=True)
class Check:
    """One target of the issue and whether this run met it (None: not measurable here)."""

    target: str
    met: bool | None
    measured: str

    @classmethod
    def ratio_at_most(cls, target: str, ratio: Spread | None, bound: float, what: str) -> Check:
        """`target` met when the median `ratio` over repeats is at most `bound`."""
        return cls(
            target,
            ratio is not None and ratio.median <= bound,
            f"{what} min/median/max {ratio.min:.2f}/{ratio.median:.2f}/{ratio.max:.2f}"
            if ratio
            else "n/a",
        )


@dataclass(slots=True)
class Curve:
    """A figure sampled along one run (y against x), drawn in the case's own PNG."""

    x_label: str
    y_label: str
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "x_label": self.x_label,
            "y_label": self.y_label,
            "series": {name: [list(p) for p in points] for name, points in self.series.items()},
        }


@dataclass(slots=True)
class CaseResult:
    key: str
    title: str
    params: dict[str, Any] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    extra_column: str = ""  # a third way measured beside runtimed and the baseline
    checks: list[Check] = field(default_factory=list)
    # Latency samples in ms, by series name, pooled over repeats: drawn in latency.png.
    samples: dict[str, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # Figures along the run, by panel title: drawn in <key>.png beside latency.png.
    curves: dict[str, Curve] = field(default_factory=dict)
    seconds: float = 0.0
    measured: str = ""  # when the case ran (UTC, ISO 8601): cases of one file may differ

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "params": self.params,
            **({"extra_column": self.extra_column} if self.extra_column else {}),
            "seconds": round(self.seconds, 1),
            "measured": self.measured,
            "rows": [row.as_dict() for row in self.rows],
            "checks": [
                {"target": c.target, "met": c.met, "measured": c.measured} for c in self.checks
            ],
            # Thinned to quantiles: the shape survives, the file stays small enough to commit.
            "samples": {
                name: [round(v, 3) for v in thin(values)] for name, values in self.samples.items()
            },
            "notes": self.notes,
            "curves": {title: curve.as_dict() for title, curve in self.curves.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CaseResult:
        """A case as results.json has it (samples thinned): kept by `bench.py --update`."""
        rows = [
            Row(
                r["label"],
                r["unit"],
                r["values"],
                r.get("baseline_label", ""),
                r.get("baseline"),
                r.get("extra"),
            )
            for r in data["rows"]
        ]
        curves = {
            title: Curve(
                c["x_label"],
                c["y_label"],
                {n: [tuple(p) for p in pts] for n, pts in c["series"].items()},
            )
            for title, c in data.get("curves", {}).items()
        }
        return cls(
            data["key"],
            data["title"],
            params=data["params"],
            rows=rows,
            extra_column=data.get("extra_column", ""),
            checks=[Check(c["target"], c["met"], c["measured"]) for c in data["checks"]],
            samples=data.get("samples", {}),
            notes=data.get("notes", []),
            curves=curves,
            seconds=data["seconds"],
            measured=data.get("measured", ""),
        )
