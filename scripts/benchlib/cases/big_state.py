"""Case 7: a 5 MB widget state updating while a small slider moves (issues 6 and 7).

The daemon runs a LoopProbe; the same code with a 1 KB state, in the same run, is the
stall baseline, and the plain reader on the same kernel is the latency baseline.
"""

from __future__ import annotations

from ..context import BenchContext
from ..kernel_code import NEW_BIG, big_with_slider
from ..result import CaseResult, Check, Row
from ..rig import Rig, listener_samples, rig, start_listener
from ..stats import percentile
from .latency import latencies

KEY = "big_state"
TITLE = "7. Big state: a 5 MB widget state updating beside a slider"
BIG = 5_000_000
SMALL = 1_000
PER_ROUND = 20
GAP = 0.01


async def one_run(r: Rig, kind: str, size: int, rounds: int, tag: str) -> dict:
    """Slider latencies (baseline, broadcast, doc) and the loop's stalls for one run."""
    name = f"_small_{tag}"
    watch = await r.new_slider(name)
    await r.actor.run_cell(NEW_BIG[kind])
    total = rounds * PER_ROUND
    listener = await start_listener(r.kernel, watch.comm_id, total)
    await r.daemon.loop_stats()  # start the window here
    code = big_with_slider(kind, size=size, rounds=rounds, per_round=PER_ROUND, gap=GAP, name=name)
    await r.actor.run_cell(code)
    await r.watcher.until(
        lambda: watch.doc_value == total and total in watch.broadcast_at, 120, "the last step"
    )
    stalls = await r.daemon.loop_stats()
    return {"stalls": stalls, **latencies(watch, await listener_samples(listener))}


async def run(ctx: BenchContext) -> list[CaseResult]:
    rounds = ctx.pick(10, 4)
    kinds = ("json", "binary")
    result = CaseResult(
        KEY,
        TITLE,
        params={
            "state_bytes": BIG,
            "kinds": "json string (Textarea), binary (Image)",
            "big_updates": rounds,
            "slider_steps": rounds * PER_ROUND,
            "slider_gap_ms": GAP * 1000,
        },
    )
    runs: dict[str, dict[str, dict]] = {}
    async with rig(ctx, KEY, probe=True) as r:
        for kind in kinds:
            runs[kind] = {
                "small": await one_run(r, kind, SMALL, rounds, f"{kind}_small"),
                "big": await one_run(r, kind, BIG, rounds, f"{kind}_big"),
            }
            big = runs[kind]["big"]
            ctx.progress(
                KEY,
                f"{kind}: max stall {big['stalls']['max_ms']:.0f} ms, slider p99 "
                f"broadcast {percentile(big['broadcast'], 99):.1f} ms, doc "
                f"{percentile(big['doc'], 99):.1f} ms",
            )
    for kind in kinds:
        big, small = runs[kind]["big"], runs[kind]["small"]
        result.rows.append(
            Row(
                f"{kind}: longest loop stall",
                "ms",
                [big["stalls"]["max_ms"]],
                "same code, 1 KB state",
                [small["stalls"]["max_ms"]],
            )
        )
        for series in ("broadcast", "doc"):
            for label, q in (("p50", 50), ("p99", 99), ("max", 100)):
                result.rows.append(
                    Row(
                        f"{kind}: slider {label} latency, {series}",
                        "ms",
                        [percentile(big[series], q)],
                        "plain reader, same messages",
                        [percentile(big["baseline"], q)],
                    )
                )
            result.samples[f"{kind} 5 MB: slider via {series}"] = big[series]
        result.samples[f"{kind} 5 MB: plain reader"] = big["baseline"]
        stall = big["stalls"]["max_ms"]
        result.checks.append(Check(f"{kind}: stall <= 50 ms", stall <= 50, f"{stall:.0f} ms"))
        for series in ("broadcast", "doc"):
            p99 = percentile(big[series], 99)
            result.checks.append(
                Check(
                    f"{kind}: slider p99 via {series} <= 20 ms (issue 6)",
                    p99 <= 20,
                    f"{p99:.1f} ms",
                )
            )
    return [result]
