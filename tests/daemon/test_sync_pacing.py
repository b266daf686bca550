"""Doc-sync pacing: one SYNC with changes in flight per peer, and nothing lost by it.

Real daemon, real kernel, real clients (Automerge peers over the Unix socket): during a
kernel's burst a peer that does not answer gets one SYNC carrying changes, then the
rest once it answers (or once the pacing interval ends); a burst, edits from two
clients, a compaction and a late joiner at once, and every doc ends equal; and
execution_done never overtakes the outputs pacing holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from notebook_doc import NotebookDoc, SyncMessageError, SyncState, summarize_sync_message
from runtimed.client import Client
from runtimed.config import Settings
from runtimed.daemon.sync_pacing import SyncPacing
from runtimed.wire import Broadcast, Sync
from tests.conftest import RunningDaemon
from tests.notebook_doc.nbdoc_helpers import sync


class HoldingClient(Client):
    """Applies the daemon's SYNC frames but answers them only while `answering`: a peer
    that is busy or far away. Counts the SYNC frames that carried changes, and notes the
    text its doc held for a cell when that cell's `execution_done` came."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.answering = True
        self.with_changes = 0
        self.printed_at_done: dict[str, str] = {}

    def _on_broadcast(self, event: Broadcast) -> None:
        if event.event == "execution_done":
            cell_id = event.fields["cell_id"]
            self.printed_at_done[cell_id] = printed(self, cell_id)
        super()._on_broadcast(event)

    async def _handle(self, event: Any) -> None:
        if isinstance(event, Sync):
            self.with_changes += summarize_sync_message(event.data).changes
            if not self.answering:
                self.doc.receive_sync_message(self.sync_state, event.data)
                return
        await super()._handle(event)


@contextlib.asynccontextmanager
async def paced(settings: Settings, interval: float) -> AsyncIterator[RunningDaemon]:
    """A daemon whose pacing interval is `interval` seconds. Its coalescing window is
    0.2 s, so a burst (lines 2 ms apart) stays one however loaded the machine: only a
    pause of 0.1 s would make a change the first after a pause, sent unpaced."""
    changed = dataclasses.replace(settings, sync_pacing=interval, coalesce_window=0.2)
    handle = RunningDaemon(changed)
    await handle.start()
    try:
        yield handle
    finally:
        await handle.stop()


@contextlib.asynccontextmanager
async def actor_and_holder(
    settings: Settings, interval: float, notebook: str
) -> AsyncIterator[tuple[Client, HoldingClient]]:
    """A paced daemon, a client that runs the cells, and a peer that may stop answering."""
    async with (
        paced(settings, interval) as daemon,
        daemon.client(notebook) as actor,
        HoldingClient(notebook, socket_path=settings.socket_path) as holder,
    ):
        yield actor, holder


async def edit(client: Client, count: int, tag: str) -> None:
    """`count` cells, each its own change, each held by the daemon before the next."""
    for i in range(count):
        client.doc.add_cell(source=f"{tag} {i}")
        await client.wait_synced()


# A counter printed to `lines` - 1, 2 ms apart, each line replacing the last: the room
# writes it in a burst, one doc change per window.
BURST = """import os, time
from IPython.display import clear_output
for i in range({lines}):
    clear_output(wait=True)
    print(i, flush=True)
    time.sleep(0.002)
"""


def burst_then_wait(lines: int, marker: Path) -> str:
    """The burst, then busy until `marker` exists: nothing but the burst's own paced
    SYNC frames can bring its outputs to a peer meanwhile."""
    wait = f"while not os.path.exists({str(marker)!r}):\n    time.sleep(0.01)\n"
    return BURST.format(lines=lines) + wait


def printed(client: Client, cell_id: str) -> str:
    return "".join(
        json.loads(entry).get("text", "")
        for entry in client.doc.get_outputs(cell_id)
        if entry.startswith("{")
    )


def all_printed(lines: int) -> Callable[[Client], bool]:
    return lambda c: any(printed(c, cell) == f"{lines - 1}\n" for cell in c.doc.cell_ids())


async def start_burst(actor: Client, holder: HoldingClient, code: str) -> tuple[int, str]:
    """Launch a kernel and run `code` in a new cell, the holder no longer answering once
    it has the cell: its count of SYNC frames with changes before, and the cell."""
    await actor.request("launch_kernel")
    await actor.run_cell(actor.doc.add_cell(source="1"))
    cell_id = actor.doc.add_cell(source=code)
    await actor.wait_synced()
    await holder.wait_for(lambda c: cell_id in c.doc.cell_ids(), 10, "the cell")
    holder.answering = False
    before = holder.with_changes
    await actor.request("execute_cell", cell_id=cell_id)
    return before, cell_id


async def end_burst(actor: Client, marker: Path, *, shutdown: bool = True) -> None:
    """Let the cell end, wait for the kernel to be idle, and shut it down."""
    marker.touch()
    await actor.wait_for(lambda c: c.kernel_status == "idle", 20, "the cell's end")
    if shutdown:
        await actor.request("shutdown_kernel")


@pytest.mark.kernel
async def test_a_peer_that_does_not_answer_gets_a_bursts_writes_in_one_sync(
    settings: Settings, tmp_path: Path
) -> None:
    """While a SYNC with changes is unanswered, the burst's doc changes wait (a 60 s
    interval: only the answer can release them), then come in one go."""
    marker = tmp_path / "go"
    async with actor_and_holder(settings, 60.0, "nb-pace") as (actor, holder):
        before, _ = await start_burst(actor, holder, burst_then_wait(1000, marker))
        await actor.wait_for(all_printed(1000), 60, "the burst in the actor's doc")
        # Unpaced, each of the burst's 10 or more windows (2 s at least) would have sent
        # the holder a SYNC of its own; paced, only the changes before it (queued,
        # running and its count) and the burst's first window's did.
        assert holder.with_changes - before <= 6
        assert not all_printed(1000)(holder)

        holder.answering = True
        await holder.push()  # the answer to the message in flight
        await holder.wait_for(all_printed(1000), 20, "the rest, before the cell ends")
        await end_burst(actor, marker)


@pytest.mark.kernel
async def test_a_peer_that_never_answers_still_gets_every_change(
    settings: Settings, tmp_path: Path
) -> None:
    marker = tmp_path / "go"
    async with actor_and_holder(settings, 0.2, "nb-silent") as (actor, silent):
        await start_burst(actor, silent, burst_then_wait(200, marker))
        # No answer and no broadcast but comm events while the cell is busy: only the
        # pacing interval's end lets the next SYNC go.
        await silent.wait_for(all_printed(200), 30, "every change, unanswered")
        await end_burst(actor, marker)


@pytest.mark.kernel
async def test_a_burst_edits_a_compaction_and_a_late_joiner_all_converge(
    settings: Settings, tmp_path: Path
) -> None:
    """A kernel's burst (paced) while two clients edit (not paced), one peer answering
    late; the room compacts in the middle and a client joins late: every doc ends the
    same."""
    marker = tmp_path / "go"
    async with (
        paced(settings, 1.0) as daemon,
        daemon.client("nb-burst") as first,
        daemon.client("nb-burst") as second,
        HoldingClient("nb-burst", socket_path=settings.socket_path) as slow,
    ):
        await first.request("launch_kernel")
        await first.run_cell(first.doc.add_cell(source="1"))
        for client in (first, second, slow):
            await client.wait_synced()
        cell_id = first.doc.add_cell(source=burst_then_wait(400, marker))
        await first.wait_synced()
        slow.answering = False
        await first.request("execute_cell", cell_id=cell_id)

        async def compact_midway() -> None:
            await first.wait_for(lambda c: printed(c, cell_id) not in ("", "0\n"), 30, "a burst")
            await second.request("compact")

        await asyncio.gather(edit(first, 15, "a"), edit(second, 15, "b"), compact_midway())
        await first.wait_for(all_printed(400), 60, "the whole burst")
        slow.answering = True
        await slow.push()
        await end_burst(first, marker, shutdown=False)
        async with daemon.client("nb-burst") as late:
            for client in (second, slow, late):
                await client.wait_for(
                    lambda c: c.doc.to_json() == first.doc.to_json(), 20, f"{client.name} converged"
                )
            assert len(first.doc.cell_ids()) == 32
            assert all_printed(400)(late)
        await first.request("shutdown_kernel")


@pytest.mark.kernel
async def test_no_frame_but_a_comm_broadcast_overtakes_the_doc_changes_pacing_holds(
    settings: Settings, tmp_path: Path
) -> None:
    """A response (like execution_done, or any frame that is not a comm broadcast) comes
    after the doc changes made before it, though pacing holds them for this peer."""
    marker = tmp_path / "go"
    async with actor_and_holder(settings, 60.0, "nb-order") as (actor, holder):
        _, cell_id = await start_burst(actor, holder, burst_then_wait(300, marker))
        await actor.wait_for(all_printed(300), 60, "the burst in the actor's doc")
        await holder.request("kernel_info")  # the kernel is still busy: no other frame
        assert all_printed(300)(holder)

        marker.touch()
        await holder.wait_for(lambda c: cell_id in c.printed_at_done, 30, "execution_done")
        assert holder.printed_at_done[cell_id] == "299\n"
        await actor.request("shutdown_kernel")


# --- the pacing rule alone, with real Automerge messages ------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def exchange() -> tuple[NotebookDoc, NotebookDoc, SyncState, SyncState]:
    """A daemon doc and a client doc in sync."""
    daemon = NotebookDoc.new("nb")
    client = NotebookDoc.load(daemon.save())
    ours, theirs = SyncState(), SyncState()
    sync(daemon, client, ours, theirs)
    return daemon, client, ours, theirs


def test_only_a_message_with_changes_is_in_flight_until_its_answer() -> None:
    daemon, client, ours, theirs = exchange()
    clock = Clock()
    pacing = SyncPacing(1.0, clock=clock)
    daemon.add_cell(source="one")
    carrying = daemon.generate_sync_message(ours)
    assert carrying is not None
    pacing.sent(carrying)
    assert pacing.wait() == 1.0

    client.receive_sync_message(theirs, carrying)
    answer = client.generate_sync_message(theirs)
    assert answer is not None
    pacing.received(answer)
    assert pacing.wait() == 0.0

    pacing.sent(NotebookDoc.new("other").generate_sync_message(SyncState()) or b"")
    assert pacing.wait() == 0.0  # a first message names heads and carries nothing


def test_an_answer_to_an_older_message_leaves_the_newer_one_in_flight() -> None:
    daemon, client, ours, theirs = exchange()
    clock = Clock()
    pacing = SyncPacing(1.0, clock=clock)
    daemon.add_cell(source="one")
    older = daemon.generate_sync_message(ours)
    assert older is not None
    pacing.sent(older)
    clock.now = 1.5  # unanswered past the interval: the next one may go
    assert pacing.wait() == 0.0
    daemon.add_cell(source="two")
    newer = daemon.generate_sync_message(ours)
    assert newer is not None
    pacing.sent(newer)

    client.receive_sync_message(theirs, older)
    answer = client.generate_sync_message(theirs)
    assert answer is not None
    pacing.received(answer)
    assert pacing.wait() == pytest.approx(1.0)
    clock.now = 2.6
    assert pacing.wait() == 0.0


def test_a_peer_edit_ends_what_is_in_flight() -> None:
    daemon, client, ours, theirs = exchange()
    pacing = SyncPacing(1.0, clock=Clock())
    daemon.add_cell(source="one")
    carrying = daemon.generate_sync_message(ours)
    assert carrying is not None
    pacing.sent(carrying)
    client.add_cell(source="mine")  # concurrent: its message names only its own head
    edit_message = client.generate_sync_message(theirs)
    assert edit_message is not None
    assert summarize_sync_message(edit_message).changes
    pacing.received(edit_message)
    assert pacing.wait() == 0.0


def test_a_sync_message_is_read_without_decoding_its_changes() -> None:
    daemon, _, ours, _ = exchange()
    daemon.add_cell(source="one")
    carrying = daemon.generate_sync_message(ours)
    assert carrying is not None
    summary = summarize_sync_message(carrying)
    assert summary.heads == frozenset(daemon.get_heads())
    assert summary.changes
    assert not summary.needs
    for bad in (b"", b"\x00", b"\x42\x05", carrying[:40]):
        with pytest.raises(SyncMessageError):
            summarize_sync_message(bad)
    # A reply Automerge accepted but this reader could not read ends what is in flight.
    pacing = SyncPacing(1.0, clock=Clock())
    pacing.sent(carrying)
    pacing.received(b"\x42\x05")
    assert pacing.wait() == 0.0
