"""Case 1: a 20,000-update slider burst, daemon to a second client vs a plain reader."""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable
from typing import TypeVar

from ..context import BenchContext
from ..kernel_code import BURST
from ..observe import Observer
from ..procs import DaemonProcess, Helper, Kernel
from ..result import CaseResult, Check, Row
from ..rig import Rig, rig

KEY = "burst"
TITLE = "1. Burst: 20,000 updates to one IntSlider"
BASELINE = "plain jupyter_client reader"
T = TypeVar("T")


async def baseline_burst(kernel: Kernel, updates: int) -> dict:
    """One plain-reader burst on its own kernel: seconds to the final value, messages."""
    helper = await Helper.start(
        "-m",
        "benchlib.plain_reader",
        "burst",
        "--connection-file",
        kernel.connection_file,
        "--updates",
        str(updates),
    )
    try:
        await helper.line(120)
        return await helper.line(600)
    finally:
        await helper.stop()


async def daemon_burst(r: Rig, name: str, updates: int, watcher: Observer | None = None) -> dict:
    """One burst through the daemon: the actor runs it, `watcher` (by default the second
    client) times it."""
    watcher = watcher or r.watcher
    watch = await r.new_slider(name, watcher)
    cell_id = r.actor.client.doc.add_cell(source=BURST.format(n=updates, name=name))
    await r.actor.client.wait_synced()
    start = time.time()
    msg_id = (await r.actor.client.request("execute_cell", cell_id=cell_id))["msg_id"]
    await watcher.until(lambda: watch.doc_value == updates, 600, "final value in the doc")
    doc_seconds = watch.doc_at[updates] - start
    await r.actor.finish_cell(cell_id, msg_id)
    # Broadcasts come in kernel order: after execution_done, every update came or is lost.
    await watcher.until(lambda: msg_id in watcher.finished, 60, "execution_done")
    final = watch.broadcast_at.get(updates)
    return {
        "doc_seconds": doc_seconds,
        "broadcast_seconds": math.nan if final is None else final - start,
        "messages": watch.broadcasts,
    }


async def with_cpu(daemon: DaemonProcess, work: Awaitable[T]) -> tuple[T, float]:
    """The result of `work` and the daemon's CPU seconds while it ran."""
    before = daemon.cpu_seconds()
    value = await work
    return value, daemon.cpu_seconds() - before


async def run(ctx: BenchContext) -> list[CaseResult]:
    updates = ctx.pick(20_000, 10_000)
    repeats = ctx.pick(5, 2)
    result = CaseResult(KEY, TITLE, params={"updates": updates, "repeats": repeats})
    runs: list[tuple[dict, dict, float]] = []
    base_kernel = await Kernel().start(ctx.dir(KEY))
    try:
        async with rig(ctx, KEY) as r:
            for repeat in range(repeats):
                ours_run = with_cpu(r.daemon, daemon_burst(r, f"_burst{repeat}", updates))
                # Alternate who goes first so a drifting machine load hits both sides alike.
                if repeat % 2 == 0:
                    base = await baseline_burst(base_kernel, updates)
                    ours, cpu = await ours_run
                else:
                    ours, cpu = await ours_run
                    base = await baseline_burst(base_kernel, updates)
                runs.append((ours, base, cpu))
                ctx.progress(
                    KEY,
                    f"repeat {repeat + 1}/{repeats}: daemon {ours['doc_seconds']:.2f} s "
                    f"({ours['messages']} msgs), plain reader "
                    f"{base['seconds'] or math.nan:.2f} s ({base['messages']} msgs)",
                )
    finally:
        await base_kernel.stop()

    base_seconds = [b["seconds"] if b["seconds"] is not None else math.nan for _, b, _ in runs]
    result.rows = [
        Row(
            "time to final value, 2nd client's doc",
            "s",
            [o["doc_seconds"] for o, _, _ in runs],
            BASELINE,
            base_seconds,
        ),
        Row(
            "time to final value, 2nd client's broadcasts",
            "s",
            [o["broadcast_seconds"] for o, _, _ in runs],
            BASELINE,
            base_seconds,
        ),
        Row(
            "updates received (broadcasts)",
            "msgs",
            [o["messages"] for o, _, _ in runs],
            BASELINE,
            [b["messages"] for _, b, _ in runs],
        ),
        Row("daemon CPU per update", "µs", [c / updates * 1e6 for _, _, c in runs]),
    ]
    lost = [updates - o["messages"] for o, _, _ in runs]
    ratio = result.rows[0].ratio_spread
    result.checks = [
        Check("zero loss", all(x == 0 for x in lost), f"lost per repeat: {lost}"),
        Check.ratio_at_most("ratio <= 1.2 (median over repeats)", ratio, 1.2, "doc ratio"),
    ]
    result.notes.append(
        "The kernel is real ipykernel 7.4 + ipywidgets 8.1 with its IOPub send high-water mark "
        "lifted (tests/unbounded_iopub_kernel.py), so a lost update is the bridge's, not the "
        "kernel's; both sides use the same kernelspec."
    )
    return [result]
