"""The run's results for people: a terminal table, results.md, results.json, latency.png."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
from pathlib import Path
from typing import Any

from .result import CaseResult, Row
from .stats import Spread


def _num(x: float) -> str:
    if math.isnan(x):
        return "n/a"
    if x == 0 or abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def _spread(s: Spread | None, unit: str = "") -> str:
    if s is None or s.n == 0:
        return ""
    unit = f" {unit}" if unit else ""
    if s.n == 1 or s.min == s.max:
        return f"{_num(s.median)}{unit}"
    return f"{_num(s.median)}{unit} ({_num(s.min)}-{_num(s.max)})"


def _row_cells(row: Row, extra: bool = False) -> list[str]:
    ratio = row.ratio_spread
    cells = [
        row.label,
        _spread(row.spread, row.unit),
        f"{_spread(row.baseline_spread, row.unit)}"
        + (f" [{row.baseline_label}]" if row.baseline_label else ""),
        f"{_spread(ratio)}x" if ratio and ratio.n else "",
    ]
    if extra:
        cells.append(_spread(None if row.extra is None else Spread.of(row.extra), row.unit))
    return cells


def _header(result: CaseResult) -> list[str]:
    extra = [result.extra_column] if result.extra_column else []
    return ["figure", "runtimed", "baseline", "ratio", *extra]


def _verdict(met: bool | None) -> str:
    return {True: "MET", False: "MISSED", None: "n/a"}[met]


def table(results: list[CaseResult]) -> str:
    """A plain-text table: median (min-max) over repeats, the baseline, the ratio."""
    lines = []
    for result in results:
        lines.append("")
        lines.append(f"== {result.title}  ({result.seconds:.0f} s)")
        header = _header(result)
        extra = bool(result.extra_column)
        cells = [header, *(_row_cells(row, extra) for row in result.rows)]
        widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
        for c in cells:
            lines.append("  " + "  ".join(x.ljust(w) for x, w in zip(c, widths, strict=True)))
        for check in result.checks:
            lines.append(f"  [{_verdict(check.met)}] {check.target}: {check.measured}")
        for note in result.notes:
            lines.append(f"  note: {note}")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_end": [round(x, 2) for x in load],
    }


def markdown(results: list[CaseResult], *, quick: bool, meta: dict[str, Any]) -> str:
    out = [
        "# runtimed benchmarks",
        "",
        f"Generated {meta['generated']} by `make bench{'-quick' if quick else ''}` "
        f"({'quick pass' if quick else 'full run'}) on {meta['machine']['cpus']} CPUs, "
        f"Python {meta['machine']['python']}, load average at the end "
        f"{meta['machine']['load_average_at_end']}.",
        "",
        "Every figure is the median over repeats with (min-max); the baseline was measured "
        "in the same run, and the ratio is taken per repeat (runtimed / baseline). "
        "The machine is shared and noisy: read ratios, not absolute numbers.",
        "",
        "![latency distributions](latency.png)",
        "",
    ]
    for result in results:
        out += [f"## {result.title}", ""]
        if result.params:
            params = ", ".join(f"{k}={v}" for k, v in result.params.items())
            when = f", measured {result.measured}" if result.measured else ""
            out += [f"Parameters: {params}. Took {result.seconds:.0f} s{when}.", ""]
        if result.rows:
            header = _header(result)
            extra = bool(result.extra_column)
            out += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            out += ["| " + " | ".join(_row_cells(row, extra)) + " |" for row in result.rows]
            out.append("")
        for check in result.checks:
            out.append(f"- **{_verdict(check.met)}** {check.target}: {check.measured}")
        for note in result.notes:
            out.append(f"- {note}")
        if result.curves:
            out += ["", f"![{result.key} along the run]({result.key}.png)"]
        out.append("")
    return "\n".join(out)


def plot(results: list[CaseResult], path: Path) -> None:
    """One panel per case with latency samples: the empirical CDF of each series."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = [r for r in results if r.samples]
    if not cases:
        return
    fig, axes = plt.subplots(len(cases), 1, figsize=(9, 3.2 * len(cases)), squeeze=False)
    for ax, result in zip(axes[:, 0], cases, strict=True):
        for name, values in result.samples.items():
            ordered = sorted(max(v, 0.01) for v in values)
            if not ordered:
                continue
            fraction = [(i + 1) / len(ordered) for i in range(len(ordered))]
            ax.step(ordered, fraction, where="post", label=f"{name} (n={len(ordered)})")
        ax.set_xscale("log")
        ax.set_xlabel("latency, ms (log scale)")
        ax.set_ylabel("fraction ≤ x")
        ax.set_title(result.title, fontsize=10)
        ax.axhline(0.5, color="grey", lw=0.5, ls=":")
        ax.axhline(0.99, color="grey", lw=0.5, ls=":")
        ax.grid(True, which="both", lw=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_curves(result: CaseResult, path: Path) -> None:
    """One panel per curve of a case (RSS, late join... against updates)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = list(result.curves.items())
    fig, axes = plt.subplots(len(curves), 1, figsize=(9, 3.2 * len(curves)), squeeze=False)
    for ax, (title, curve) in zip(axes[:, 0], curves, strict=True):
        for name, points in curve.series.items():
            ax.plot([x for x, _ in points], [y for _, y in points], marker=".", label=name)
        ax.set_xlabel(curve.x_label)
        ax.set_ylabel(curve.y_label)
        ax.set_title(f"{result.title}: {title}", fontsize=10)
        ax.set_ylim(bottom=0)
        ax.grid(True, lw=0.3)
        ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_all(results: list[CaseResult], out_dir: Path, *, quick: bool) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {
        "generated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "machine": machine(),
    }
    payload = {**meta, "cases": [r.as_dict() for r in results]}
    (out_dir / "results.json").write_text(json.dumps(payload, indent=1, allow_nan=True) + "\n")
    (out_dir / "results.md").write_text(markdown(results, quick=quick, meta=meta))
    plot(results, out_dir / "latency.png")
    for result in results:
        if result.curves:
            plot_curves(result, out_dir / f"{result.key}.png")
