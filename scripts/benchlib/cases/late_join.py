"""Cases 3 and 5: a late joiner of a busy room, and what that room costs to keep.

1,000 sliders take 100,000 updates; then new clients join, by SNAPSHOT and by plain
Automerge sync from an empty doc. Afterwards the daemon's RSS (beside its RSS when
it had just started) and the saved doc's size (beside a fresh doc holding only the
final state) show what history and bookkeeping cost.
"""

from __future__ import annotations

import time
from pathlib import Path

from notebook_doc import NotebookDoc, SyncState
from runtimed.client import ClientError

from ..context import BenchContext
from ..kernel_code import MANY_SLIDERS, MANY_UPDATES
from ..observe import wait_true
from ..result import CaseResult, Check, Row
from ..rig import Rig, rig

KEY = "late_join"
TITLE = "3. Late join: 1,000 widgets after 100,000 updates"
FOOTPRINT_TITLE = "5. Footprint after case 3"
SLIDER = "IntSliderModel"
MB = 1024 * 1024


def holds_final_state(doc: NotebookDoc, count: int, rounds: int) -> bool:
    sliders = [c for c in doc.get_comms() if c.model_name == SLIDER]
    return len(sliders) == count and all(c.state.get("value") == rounds for c in sliders)


async def join_seconds(r: Rig, notebook: str, *, snapshot: bool, count: int, rounds: int) -> float:
    """From connecting to holding every slider's final value."""
    start = time.perf_counter()
    async with r.daemon.client(notebook, snapshot=snapshot, name="bench-late-joiner") as client:
        await client.wait_for(
            lambda c: holds_final_state(c.doc, count, rounds), 120, "the full state"
        )
        return time.perf_counter() - start


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


async def saved_doc(docs_dir: Path, count: int, rounds: int) -> bytes:
    """The room's file once the debounced save has caught up with the final state."""

    def final_on_disk() -> bool:
        files = list(docs_dir.glob("*.automerge"))
        return bool(files) and holds_final_state(
            NotebookDoc.load(files[0].read_bytes()), count, rounds
        )

    await wait_true(final_on_disk, 60, "the saved doc to hold the final state", interval=0.5)
    return next(docs_dir.glob("*.automerge")).read_bytes()


def fresh_doc_size(doc: NotebookDoc) -> int:
    """A doc written once with only the final comm states: the size without history."""
    fresh = NotebookDoc.new("fresh")
    for c in doc.get_comms():
        fresh.put_comm(
            c.comm_id,
            c.target_name,
            c.model_module,
            c.model_name,
            doc.get_comm_state_json(c.comm_id) or "{}",
            c.seq,
        )
    return len(fresh.save())


async def run(ctx: BenchContext) -> list[CaseResult]:
    count = 1000
    rounds = ctx.pick(100, 10)
    repeats = ctx.pick(5, 3)
    params = {"widgets": count, "updates": count * rounds, "repeats": repeats}
    join = CaseResult(KEY, TITLE, params=dict(params))
    footprint = CaseResult("footprint", FOOTPRINT_TITLE, params=dict(params))
    snapshot_s: list[float] = []
    plain_s: list[float] = []
    plain_failures: list[str] = []
    async with rig(ctx, KEY) as r:
        rss_idle = r.daemon.rss()
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
        ctx.progress(
            KEY, f"{count * rounds} updates applied in {time.perf_counter() - started:.1f} s"
        )
        for repeat in range(repeats):
            order = (True, False) if repeat % 2 == 0 else (False, True)
            for snapshot in order:
                try:
                    seconds = await join_seconds(
                        r, notebook, snapshot=snapshot, count=count, rounds=rounds
                    )
                except ClientError as exc:
                    if snapshot:
                        raise
                    plain_failures.append(str(exc))
                    seconds = float("nan")
                (snapshot_s if snapshot else plain_s).append(seconds)
            ctx.progress(
                KEY,
                f"repeat {repeat + 1}/{repeats}: snapshot "
                f"{snapshot_s[-1] * 1000:.0f} ms, plain sync {plain_s[-1] * 1000:.0f} ms",
            )
        rss = r.daemon.rss()
        fresh = fresh_doc_size(r.watcher.client.doc)
        # Read while the room is live: closing it would clear the comms (kernel detached).
        saved = await saved_doc(ctx.dir(KEY) / "data" / "docs", count, rounds)
    in_memory = [sync_in_memory(saved) for _ in range(repeats)]

    snapshot_ms = [s * 1000 for s in snapshot_s]
    join.rows = [
        Row(
            "join to full state via SNAPSHOT",
            "ms",
            snapshot_ms,
            "plain sync from empty, over the socket",
            [s * 1000 for s in plain_s],
        ),
        Row(
            "join to full state via SNAPSHOT",
            "ms",
            snapshot_ms,
            "plain sync from empty, in memory (no socket)",
            [s * 1000 for s, _ in in_memory],
        ),
        Row("plain sync from empty: bytes sent", "MB", [b / MB for _, b in in_memory]),
    ]
    median_snapshot = sorted(snapshot_ms)[len(snapshot_ms) // 2]
    speedups = [p / s for s, (p, _) in zip(snapshot_s, in_memory, strict=True)]
    join.checks = [
        Check(
            "SNAPSHOT join <= 150 ms (median)",
            median_snapshot <= 150,
            f"median {median_snapshot:.0f} ms, worst {max(snapshot_ms):.0f} ms",
        ),
        Check(
            ">= 20x faster than plain sync (every repeat, vs in-memory sync)",
            min(speedups) >= 20,
            f"speed-up min/max {min(speedups):.1f}x/{max(speedups):.1f}x",
        ),
    ]
    if plain_failures:
        join.checks.append(
            Check(
                "plain sync from empty completes over the socket",
                False,
                f"{len(plain_failures)}/{repeats} joins failed: {plain_failures[0]} — the daemon's "
                "first sync message exceeds the 16 MiB frame cap (daemon.log: frame_too_large), "
                "so a client that asks for no snapshot can never join this room",
            )
        )
    footprint.rows = [
        Row("daemon RSS", "MB", [rss / MB], "same daemon just started", [rss_idle / MB]),
        Row("saved doc file", "MB", [len(saved) / MB], "fresh doc, final state only", [fresh / MB]),
    ]
    footprint.checks = [
        Check("RSS <= 200 MB", rss <= 200 * MB, f"{rss / MB:.0f} MB"),
        Check("doc file <= 5 MB", len(saved) <= 5 * MB, f"{len(saved) / MB:.2f} MB"),
    ]
    footprint.notes.append(
        "RSS of the daemon process alone (the kernel is a separate process), one room holding "
        f"{count} sliders, after the joins of case 3."
    )
    return [join, footprint]
