"""Case 12: an endless stream, a tqdm-like progress bar and label updating for a long time.

The kernel moves a FloatProgress and rewrites an HTML label at a paced rate, slow
enough that each step is its own doc change (the coalescing window is 16 ms), for
60,000 steps (about 11 minutes). Along the way the daemon's RSS and the time a late
joiner takes to hold the current step are sampled: with compaction both stay flat,
whatever the history. After the stream, a few more late joins give the end figure.
"""

from __future__ import annotations

import json
import statistics
import time

from notebook_doc import NotebookDoc

from ..context import BenchContext
from ..history import (
    MB,
    CompactionLog,
    compactions_note,
    fresh_size,
    join_seconds,
    saved_doc,
    settled,
)
from ..kernel_code import NEW_PROGRESS, PROGRESS_STREAM
from ..result import CaseResult, Check, Curve, Row
from ..rig import rig

KEY = "stream"
TITLE = "12. Endless stream: a progress bar and its label, one doc change per step"
GAP = 0.01  # 100 steps a second: slower than half the 16 ms coalescing window
SAMPLES = 20
END_JOINS = 5


def bar_value(doc: NotebookDoc, comm_id: str) -> float:
    raw = doc.get_comm_state_json(comm_id)
    return -1 if raw is None else json.loads(raw).get("value", -1)


async def run(ctx: BenchContext) -> list[CaseResult]:
    steps = ctx.pick(60_000, 3_000)
    result = CaseResult(
        KEY, TITLE, params={"steps": steps, "steps_per_s": round(1 / GAP), "samples": SAMPLES}
    )
    points: list[tuple[int, float, float]] = []  # (step, RSS MB, late join ms)
    async with rig(ctx, KEY) as r:
        notebook = r.actor.client.notebook_id
        assert notebook is not None
        bar_id, _label_id = (await r.actor.run_cell(NEW_PROGRESS.format(n=steps))).split()
        bar = r.watcher.watch(bar_id)
        await r.watcher.until(lambda: bar.doc_value == 0, 30, "the bar in the doc")
        rss_start = r.daemon.rss()
        log = CompactionLog(r.daemon, notebook).start()
        cell, msg = await r.actor.start_cell(PROGRESS_STREAM.format(n=steps, gap=GAP))
        for k in range(1, SAMPLES + 1):
            mark = steps * k // SAMPLES
            await r.watcher.until(
                lambda mark=mark: (bar.doc_value or 0) >= mark, steps * GAP + 120, f"step {mark}"
            )
            rss = r.daemon.rss()
            join = await join_seconds(
                r.daemon,
                notebook,
                lambda doc, mark=mark: bar_value(doc, bar_id) >= mark,
                snapshot=True,
            )
            points.append((mark, rss / MB, join * 1000))
            ctx.progress(KEY, f"step {mark}: RSS {rss / MB:.1f} MB, late join {join * 1000:.0f} ms")
        await r.actor.finish_cell(cell, msg, timeout=120)

        def done(doc: NotebookDoc) -> bool:
            return bar_value(doc, bar_id) == steps

        end_ms = [
            await join_seconds(r.daemon, notebook, done, snapshot=True) * 1000
            for _ in range(END_JOINS)
        ]
        await log.stop()
        # The file at rest: during the stream it is a compacted doc plus the changes
        # since, appended; once the room rests it is compacted if over the ratio.
        rested = await settled(r.daemon, notebook, time.time())
        fresh = fresh_size(r.watcher.client.doc)
        saved = await saved_doc(ctx.dir(KEY) / "data" / "docs", done)

    tenth = points[SAMPLES // 10 - 1]
    end = points[-1]
    changes = log.total_changes
    result.rows = [
        Row("daemon RSS at the end", "MB", [end[1]], "after the first 10%", [tenth[1]]),
        Row("daemon RSS at the end", "MB", [end[1]], "before the stream", [rss_start / MB]),
        Row("late join after the stream", "ms", end_ms),
        Row("late join during the stream, after the first 10%", "ms", [tenth[2]]),
        Row("late join during the stream, at its last step", "ms", [end[2]]),
        Row(
            "saved doc file, at rest",
            "MB",
            [len(saved) / MB],
            "fresh doc, same content",
            [fresh / MB],
        ),
        Row("doc changes per step", "", [changes / steps]),
        Row("compactions", "", [rested["epoch"]]),
    ]
    result.checks = [
        Check(
            "RSS at the end <= RSS after the first 10% + 10 MB (issue 14)",
            end[1] <= tenth[1] + 10,
            f"{end[1]:.1f} MB at the end, {tenth[1]:.1f} MB after {tenth[0]} steps",
        ),
        Check(
            "late join <= 50 ms at the end of the stream (issue 14, median)",
            statistics.median(end_ms) <= 50,
            f"median {statistics.median(end_ms):.0f} ms, worst {max(end_ms):.0f} ms "
            f"({END_JOINS} joins after the last step)",
        ),
        Check(
            "doc file at rest <= 2x a fresh doc of the same content (issue 14)",
            len(saved) <= 2 * fresh,
            f"{len(saved) / fresh:.1f}x ({len(saved) / MB:.3f} vs {fresh / MB:.3f} MB)",
        ),
        Check(
            "each step is its own doc change (>= 0.9 changes per step)",
            changes >= 0.9 * steps,
            f"{changes} doc changes for {steps} steps"
            + (f" ({log.missed} compactions between polls not counted)" if log.missed else ""),
        ),
    ]
    result.notes.append(compactions_note(rested))
    result.curves = {
        "daemon RSS": Curve("steps (each moves the bar and rewrites the label)", "RSS, MB"),
        "late join": Curve("steps (each moves the bar and rewrites the label)", "late join, ms"),
    }
    result.curves["daemon RSS"].series["daemon RSS"] = [(s, rss) for s, rss, _ in points]
    result.curves["late join"].series["join via SNAPSHOT to the current step"] = [
        (s, ms) for s, _, ms in points
    ]
    return [result]
