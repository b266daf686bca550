"""Issue 11: `resync` (reconcile with the kernel's own widget state) for 1,000 widgets.

The kernel's widgets are changed without telling anyone (ipywidgets' property lock
suppresses the update message), so CommState and the doc hold stale values until a
`resync` asks the kernel for every state. The same request on an unchanged room, in
the same run, is the baseline.
"""

from __future__ import annotations

import time

from ..context import BenchContext
from ..kernel_code import MANY_SLIDERS
from ..result import CaseResult, Check, Row
from ..rig import Rig, rig
from .late_join import holds_final_state

KEY = "reconcile"
TITLE = "11. Reconcile (resync) with the kernel: 1,000 widgets"
COUNT = 1000

# Change every slider in the kernel without sending the update (a lost burst, on purpose).
SILENT_CHANGE = """
for _w in _many:
    with _w._lock_property(value={value}):
        _w.value = {value}
"""


async def resync(r: Rig, value: int) -> tuple[float, int, dict]:
    """Seconds for `resync` until the watcher holds the kernel's state; doc growth in bytes."""
    # The growth counts from a watcher that has everything the actor has (whose cell
    # ended: its doc holds every change before execution_done), not from one still
    # taking the last SYNC.
    actor_heads = r.actor.client.doc.get_heads()
    await r.watcher.until(
        lambda: all(r.watcher.client.doc.has_change(head) for head in actor_heads),
        60,
        "the watcher holding all the actor holds",
    )
    before = len(r.watcher.client.doc.save())
    start = time.perf_counter()
    reply = await r.actor.client.request("resync")
    await r.watcher.until(
        lambda: holds_final_state(r.watcher.client.doc, COUNT, value),
        120,
        "the reconciled state at the watcher",
    )
    seconds = time.perf_counter() - start
    return seconds, len(r.watcher.client.doc.save()) - before, reply


async def run(ctx: BenchContext) -> list[CaseResult]:
    repeats = ctx.pick(3, 2)
    result = CaseResult(KEY, TITLE, params={"widgets": COUNT, "repeats": repeats})
    changed_s, unchanged_s, growth, unchanged_growth, updated = [], [], [], [], []
    async with rig(ctx, KEY) as r:
        await r.actor.run_cell(MANY_SLIDERS.format(count=COUNT))
        await r.watcher.until(
            lambda: holds_final_state(r.watcher.client.doc, COUNT, 0),
            120,
            "every slider at the watcher",
        )
        for repeat in range(1, repeats + 1):
            value = repeat * 7
            seconds, grew, _ = await resync(r, value - 7)  # nothing diverged
            unchanged_s.append(seconds)
            unchanged_growth.append(grew)
            await r.actor.run_cell(SILENT_CHANGE.format(value=value))
            seconds, grew, reply = await resync(r, value)
            changed_s.append(seconds)
            growth.append(grew)
            updated.append(reply.get("updated", 0))
            ctx.progress(
                KEY,
                f"repeat {repeat}/{repeats}: {reply} in {seconds * 1000:.0f} ms, "
                f"doc +{grew / 1024:.0f} KB",
            )
    result.rows = [
        Row(
            "resync with 1,000 widgets changed, until a 2nd client's doc has them",
            "ms",
            [s * 1000 for s in changed_s],
            "resync with nothing changed",
            [s * 1000 for s in unchanged_s],
        ),
        Row(
            "saved doc growth per resync",
            "KB",
            [g / 1024 for g in growth],
            "resync with nothing changed",
            [g / 1024 for g in unchanged_growth],
        ),
    ]
    result.checks = [
        Check(
            "resync brings every changed widget back",
            all(u == COUNT for u in updated),
            f"updated per repeat: {updated}",
        ),
        Check(
            "an unchanged room gets no doc change",
            all(g == 0 for g in unchanged_growth),
            f"doc growth without changes: {unchanged_growth} bytes",
        ),
    ]
    return [result]
