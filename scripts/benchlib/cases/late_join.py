"""Cases 3 and 5: a late joiner of a busy room, and what that room costs to keep.

1,000 sliders take 100,000 updates; then new clients join, by SNAPSHOT and by plain
Automerge sync from an empty doc. Afterwards the daemon's RSS (beside its RSS when
it had just started) and the saved doc's size (beside a fresh doc holding the same
content) show what history and bookkeeping cost. The room runs twice: with the
daemon's default compaction, the figures, and with compaction off, their baseline.
With compaction the joins start once the room is at rest: the daemon compacts a room
over budget once it has been quiet for a moment, which is what a later joiner meets.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from notebook_doc import NotebookDoc, SyncState
from runtimed.client import ClientError

from ..context import BenchContext
from ..history import MB, compactions_note, fresh_size, join_seconds, saved_doc, settled
from ..kernel_code import MANY_SLIDERS, MANY_UPDATES
from ..result import CaseResult, Check, Row
from ..rig import rig

KEY = "late_join"
TITLE = "3. Late join: 1,000 widgets after 100,000 updates"
FOOTPRINT_TITLE = "5. Footprint after case 3"
SLIDER = "IntSliderModel"
OFF = "compaction off"


def holds_final_state(doc: NotebookDoc, count: int, rounds: int) -> bool:
    sliders = [c for c in doc.get_comms() if c.model_name == SLIDER]
    return len(sliders) == count and all(c.state.get("value") == rounds for c in sliders)


def sync_in_memory(saved: bytes) -> tuple[float, int]:
    """Plain sync of an empty doc from the saved one, no socket: (seconds, bytes sent).

    The lower bound of what a plain-sync join can cost, measurable even when the
    socket path cannot carry the sync message at all.
    """
    start = time.perf_counter()
    server, client = NotebookDoc.load(saved), NotebookDoc.empty()
    server_state, client_state = SyncState(), SyncState()
    sent = 0
    while True:
        quiet = True
        for source, source_state, sink, sink_state in (
            (server, server_state, client, client_state),
            (client, client_state, server, server_state),
        ):
            message = source.generate_sync_message(source_state)
            if message is not None:
                quiet = False
                sent += len(message)
                sink.receive_sync_message(sink_state, message)
        if quiet:
            return time.perf_counter() - start, sent


@dataclass(slots=True)
class RoomFigures:
    """One run of the busy room: joins after the updates, then its footprint."""

    snapshot_ms: list[float] = field(default_factory=list)
    plain_ms: list[float] = field(default_factory=list)
    plain_failures: list[str] = field(default_factory=list)
    rss_idle: int = 0
    rss: int = 0
    saved: bytes = b""
    fresh: int = 0
    room: dict[str, Any] = field(default_factory=dict)


async def busy_room(
    ctx: BenchContext, *, compaction: bool, count: int, rounds: int, repeats: int
) -> RoomFigures:
    """Sliders, updates, `repeats` late joins (plain sync too, with compaction on)."""
    key = KEY if compaction else f"{KEY}_no_compaction"
    label = "compaction on" if compaction else OFF
    figures = RoomFigures()
    async with rig(ctx, key, compaction=compaction) as r:
        figures.rss_idle = r.daemon.rss()
        notebook = r.actor.client.notebook_id
        assert notebook is not None
        await r.actor.run_cell(MANY_SLIDERS.format(count=count))
        started = time.perf_counter()
        await r.actor.run_cell(MANY_UPDATES.format(rounds=rounds))
        await r.watcher.until(
            lambda: holds_final_state(r.watcher.client.doc, count, rounds),
            300,
            "every slider's final value at the watcher",
        )
        ended = time.time()
        ctx.progress(
            KEY,
            f"{label}: {count * rounds} updates applied in {time.perf_counter() - started:.1f} s",
        )
        if compaction:  # the joiners come once the room is at rest (compacted if due)
            room = await settled(r.daemon, notebook, ended)
            ctx.progress(KEY, f"{label}: at rest in epoch {room['epoch']}")

        def ready(doc: NotebookDoc) -> bool:
            return holds_final_state(doc, count, rounds)

        for repeat in range(repeats):
            order = (True, False) if repeat % 2 == 0 else (False, True)
            for snapshot in order if compaction else (True,):
                try:
                    seconds = await join_seconds(r.daemon, notebook, ready, snapshot=snapshot)
                except ClientError as exc:
                    if snapshot:
                        raise
                    figures.plain_failures.append(str(exc))
                    seconds = float("nan")
                (figures.snapshot_ms if snapshot else figures.plain_ms).append(seconds * 1000)
            plain = f", plain sync {figures.plain_ms[-1]:.0f} ms" if compaction else ""
            ctx.progress(
                KEY,
                f"{label}: repeat {repeat + 1}/{repeats}: snapshot "
                f"{figures.snapshot_ms[-1]:.0f} ms{plain}",
            )
        figures.rss = r.daemon.rss()
        figures.fresh = fresh_size(r.watcher.client.doc)
        figures.room = await r.daemon.room_info(notebook)
        # Read while the room is live: closing it would clear the comms (kernel detached).
        figures.saved = await saved_doc(ctx.dir(key) / "data" / "docs", ready)
    return figures


async def run(ctx: BenchContext) -> list[CaseResult]:
    count = 1000
    rounds = ctx.pick(100, 10)
    repeats = ctx.pick(5, 3)
    params = {"widgets": count, "updates": count * rounds, "repeats": repeats}
    join = CaseResult(KEY, TITLE, params=dict(params))
    footprint = CaseResult("footprint", FOOTPRINT_TITLE, params=dict(params))
    on = await busy_room(ctx, compaction=True, count=count, rounds=rounds, repeats=repeats)
    off = await busy_room(ctx, compaction=False, count=count, rounds=rounds, repeats=repeats)
    in_memory = [sync_in_memory(on.saved) for _ in range(repeats)]
    # What a joiner paid before SNAPSHOT and compaction: plain sync of the whole history.
    history_sync = [sync_in_memory(off.saved) for _ in range(repeats)]

    join.rows = [
        Row("join to full state via SNAPSHOT", "ms", on.snapshot_ms, OFF, off.snapshot_ms),
        Row(
            "join to full state via SNAPSHOT",
            "ms",
            on.snapshot_ms,
            "plain sync from empty, over the socket",
            on.plain_ms,
        ),
        Row(
            "join to full state via SNAPSHOT",
            "ms",
            on.snapshot_ms,
            "plain sync from empty, in memory (no socket)",
            [s * 1000 for s, _ in in_memory],
        ),
        Row(
            "join to full state via SNAPSHOT",
            "ms",
            on.snapshot_ms,
            f"plain sync from empty, in memory, {OFF}",
            [s * 1000 for s, _ in history_sync],
        ),
        Row("plain sync from empty: bytes sent", "MB", [b / MB for _, b in in_memory]),
    ]
    median_snapshot = sorted(on.snapshot_ms)[len(on.snapshot_ms) // 2]
    speedups = [p * 1000 / s for s, (p, _) in zip(on.snapshot_ms, history_sync, strict=True)]
    join.checks = [
        Check(
            "SNAPSHOT join <= 150 ms (median)",
            median_snapshot <= 150,
            f"median {median_snapshot:.0f} ms, worst {max(on.snapshot_ms):.0f} ms",
        ),
        Check(
            "late join <= 50 ms at the end, with compaction (issue 14, median)",
            median_snapshot <= 50,
            f"median {median_snapshot:.0f} ms; {OFF}: median "
            f"{sorted(off.snapshot_ms)[len(off.snapshot_ms) // 2]:.0f} ms",
        ),
        Check(
            f">= 20x faster than plain sync of the whole history (every repeat, in memory, {OFF})",
            min(speedups) >= 20,
            f"speed-up min/max {min(speedups):.1f}x/{max(speedups):.1f}x",
        ),
    ]
    if on.plain_failures:
        join.checks.append(
            Check(
                "plain sync from empty completes over the socket",
                False,
                f"{len(on.plain_failures)}/{repeats} joins failed: {on.plain_failures[0]} — the "
                "daemon's first sync message exceeds the 16 MiB frame cap (daemon.log: "
                "frame_too_large), so a client that asks for no snapshot can never join this room",
            )
        )
    join.notes.append(compactions_note(on.room))
    footprint.rows = [
        Row("daemon RSS", "MB", [on.rss / MB], "same daemon just started", [on.rss_idle / MB]),
        Row("daemon RSS", "MB", [on.rss / MB], OFF, [off.rss / MB]),
        Row(
            "saved doc file",
            "MB",
            [len(on.saved) / MB],
            "fresh doc, same content",
            [on.fresh / MB],
        ),
        Row("saved doc file", "MB", [len(on.saved) / MB], OFF, [len(off.saved) / MB]),
    ]
    footprint.checks = [
        Check("RSS <= 200 MB", on.rss <= 200 * MB, f"{on.rss / MB:.0f} MB"),
        Check(
            "RSS <= 100 MB, with compaction (issue 14)",
            on.rss <= 100 * MB,
            f"{on.rss / MB:.0f} MB; {OFF}: {off.rss / MB:.0f} MB",
        ),
        Check("doc file <= 5 MB", len(on.saved) <= 5 * MB, f"{len(on.saved) / MB:.2f} MB"),
        Check(
            "doc file <= 2x a fresh doc of the same content (issue 14)",
            len(on.saved) <= 2 * on.fresh,
            f"{len(on.saved) / on.fresh:.1f}x ({len(on.saved) / MB:.3f} vs {on.fresh / MB:.3f} MB);"
            f" {OFF}: {len(off.saved) / off.fresh:.1f}x",
        ),
    ]
    footprint.notes += [
        "RSS of the daemon process alone (the kernel is a separate process), one room holding "
        f"{count} sliders, after the joins of case 3.",
        compactions_note(on.room),
    ]
    return [join, footprint]
