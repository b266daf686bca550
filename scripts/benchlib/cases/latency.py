"""Case 2: single updates 10 ms apart, kernel send time to a second client's view.

The plain reader listens to the same kernel at the same time, so every update's
latency through the daemon is paired with the baseline's for the very same message.
"""

from __future__ import annotations

import statistics

from ..context import BenchContext
from ..kernel_code import PACED
from ..observe import ValueWatch
from ..result import CaseResult, Check, Row
from ..rig import listener_samples, rig, start_listener
from ..stats import percentile

KEY = "latency"
TITLE = "2. Latency: single updates 10 ms apart"
BASELINE = "plain reader, same messages"


def latency_rows(runs: list[dict[str, list[float]]], prefix: str = "") -> list[Row]:
    """p50/p99/max rows for the broadcast and doc series, each beside the baseline's."""
    rows = []
    for series, label in (("broadcast", "comm broadcast"), ("doc", "doc")):
        for name, q in (("p50", 50), ("p99", 99), ("max", 100)):
            rows.append(
                Row(
                    f"{prefix}{name} latency, {label}",
                    "ms",
                    [percentile(run[series], q) for run in runs],
                    BASELINE,
                    [percentile(run["baseline"], q) for run in runs],
                )
            )
    return rows


def latencies(watch: ValueWatch, samples: list[tuple[int, float, float]]) -> dict[str, list[float]]:
    sent = {value: sent_at for value, sent_at, _ in samples}
    return {
        "baseline": [(received - sent_at) * 1000 for _, sent_at, received in samples],
        "broadcast": watch.broadcast_latencies_ms(sent),
        "doc": watch.doc_latencies_ms(sent),
    }


def median_gap(runs: list[dict[str, list[float]]], series: str, q: float) -> list[float]:
    """Per repeat: the series' q-th percentile minus the baseline's."""
    return [percentile(run[series], q) - percentile(run["baseline"], q) for run in runs]


async def run(ctx: BenchContext) -> list[CaseResult]:
    updates = ctx.pick(1000, 300)
    repeats = ctx.pick(3, 1)
    gap = 0.01
    result = CaseResult(
        KEY, TITLE, params={"updates": updates, "gap_ms": gap * 1000, "repeats": repeats}
    )
    runs = []
    async with rig(ctx, KEY) as r:
        for repeat in range(repeats):
            name = f"_paced{repeat}"
            watch = await r.new_slider(name)
            listener = await start_listener(r.kernel, watch.comm_id, updates)
            code = PACED.format(n=updates, gap=gap, name=name)
            await r.actor.run_cell(code)
            await r.watcher.until(
                lambda w=watch: w.doc_value == updates and updates in w.broadcast_at,
                60,
                "the last update at the watcher",
            )
            run_latencies = latencies(watch, await listener_samples(listener))
            runs.append(run_latencies)
            ctx.progress(
                KEY,
                f"repeat {repeat + 1}/{repeats}: p50/p99 ms baseline "
                f"{percentile(run_latencies['baseline'], 50):.2f}/"
                f"{percentile(run_latencies['baseline'], 99):.2f}, broadcast "
                f"{percentile(run_latencies['broadcast'], 50):.2f}/"
                f"{percentile(run_latencies['broadcast'], 99):.2f}, doc "
                f"{percentile(run_latencies['doc'], 50):.2f}/"
                f"{percentile(run_latencies['doc'], 99):.2f}",
            )
    result.rows = latency_rows(runs)
    for series in ("baseline", "broadcast", "doc"):
        result.samples[series] = [x for run in runs for x in run[series]]
    for series in ("broadcast", "doc"):
        for name, q, limit in (("p50", 50, 2.0), ("p99", 99, 5.0)):
            gaps = median_gap(runs, series, q)
            gap = statistics.median(gaps)
            result.checks.append(
                Check(
                    f"{series}: {name} within +{limit:g} ms of the baseline (median over repeats)",
                    gap <= limit,
                    f"median +{gap:.2f} ms, worst repeat +{max(gaps):.2f} ms",
                )
            )
    received = [len(run["broadcast"]) for run in runs]
    result.checks.append(
        Check(
            "every update reached the second client",
            all(n == updates for n in received),
            f"broadcasts received per repeat: {received} of {updates}",
        )
    )
    return [result]
