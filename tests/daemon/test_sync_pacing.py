"""Doc-sync pacing: one SYNC with changes in flight per peer, and nothing lost by it.

Real daemon, real clients (Automerge peers over the Unix socket): a peer that does not
answer gets one SYNC carrying changes, then the rest once it answers (or once the
pacing interval ends); a burst of edits from several clients, a compaction and a late
joiner in the middle of it, and every doc ends equal.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest

from notebook_doc import NotebookDoc, SyncState, summarize_sync_message
from runtimed.client import Client
from runtimed.config import Settings
from runtimed.daemon.sync_pacing import SyncPacing
from runtimed.wire import Broadcast, Sync
from tests.conftest import RunningDaemon
from tests.daemon.compaction_helpers import sources


class HoldingClient(Client):
    """Applies the daemon's SYNC frames but answers them only while `answering`: a peer
    that is busy or far away. Counts the SYNC frames that carried changes, and notes the
    outputs its doc held for a cell when that cell's `execution_done` came."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.answering = True
        self.with_changes = 0
        self.outputs_at_done: dict[str, list[str]] = {}

    def _on_broadcast(self, event: Broadcast) -> None:
        if event.event == "execution_done":
            cell_id = event.fields["cell_id"]
            self.outputs_at_done[cell_id] = self.doc.get_outputs(cell_id)
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
    """A daemon whose pacing interval is `interval` seconds."""
    handle = RunningDaemon(dataclasses.replace(settings, sync_pacing=interval))
    await handle.start()
    try:
        yield handle
    finally:
        await handle.stop()


async def edit(client: Client, count: int, tag: str) -> None:
    """`count` cells, each its own change, each held by the daemon before the next."""
    for i in range(count):
        client.doc.add_cell(source=f"{tag} {i}")
        await client.wait_synced()


async def test_a_peer_gets_one_sync_with_changes_until_it_answers(settings: Settings) -> None:
    async with (
        paced(settings, 60.0) as daemon,
        daemon.client("nb-pace") as writer,
        HoldingClient("nb-pace", socket_path=settings.socket_path) as holder,
    ):
        await writer.wait_synced()
        await holder.wait_synced()
        holder.answering = False
        before = holder.with_changes

        await edit(writer, 20, "w")
        # Unpaced, each of the 20 changes (one round trip of the writer's apart) would
        # have sent the holder a SYNC of its own by now; paced, only the first went. (No
        # request as a barrier here: its response would take the held SYNC along.)
        await holder.wait_for(lambda c: c.with_changes > before, 10, "the first SYNC")
        assert holder.with_changes - before == 1

        holder.answering = True
        await holder.push()  # the answer to the message in flight
        await holder.wait_for(lambda c: sources(c) == sources(writer), 10, "the rest")
        assert len(sources(holder)) == 20


async def test_a_peer_that_never_answers_still_gets_every_change(settings: Settings) -> None:
    async with (
        paced(settings, 0.2) as daemon,
        daemon.client("nb-silent") as writer,
        HoldingClient("nb-silent", socket_path=settings.socket_path) as silent,
    ):
        await writer.wait_synced()
        await silent.wait_synced()
        silent.answering = False

        await edit(writer, 10, "w")
        await silent.wait_for(lambda c: sources(c) == sources(writer), 10, "every change")
        assert len(sources(silent)) == 10


async def test_edits_a_compaction_and_a_late_joiner_during_a_burst_all_converge(
    settings: Settings,
) -> None:
    """Two clients edit at once while others watch, one of them answering late; the
    room compacts in the middle and a client joins late: every doc ends the same."""
    async with (
        paced(settings, 1.0) as daemon,
        daemon.client("nb-burst") as first,
        daemon.client("nb-burst") as second,
        daemon.client("nb-burst") as watcher,
        HoldingClient("nb-burst", socket_path=settings.socket_path) as slow,
    ):
        for client in (first, second, watcher, slow):
            await client.wait_synced()
        slow.answering = False

        async def compact_midway() -> None:
            await first.wait_for(lambda c: len(sources(c)) >= 10, 20, "ten cells")
            await watcher.request("compact")

        await asyncio.gather(edit(first, 25, "a"), edit(second, 25, "b"), compact_midway())
        slow.answering = True
        await slow.push()
        async with daemon.client("nb-burst") as late:
            expected = sorted(sources(first))
            assert len(expected) == 50
            for client in (first, second, watcher, slow, late):
                await client.wait_for(
                    lambda c: sorted(sources(c)) == expected, 20, f"{client.name} converged"
                )
            assert sources(late) == sources(first) == sources(slow)


@pytest.mark.kernel
async def test_execution_done_never_overtakes_the_outputs_pacing_holds(
    settings: Settings,
) -> None:
    """execution_done promises the cell's outputs are in the doc: the SYNC carrying them
    goes before it even while an earlier one is in flight (a real kernel's outputs)."""
    async with (
        paced(settings, 60.0) as daemon,
        daemon.client("nb-order") as actor,
        HoldingClient("nb-order", socket_path=settings.socket_path) as holder,
    ):
        await actor.request("launch_kernel")
        await holder.wait_synced()
        holder.answering = False  # the first outputs stay in flight for the whole test
        cells = [actor.doc.add_cell(source=f"print('out {i}')") for i in range(3)]
        for cell_id in cells:
            assert (await actor.run_cell(cell_id))["status"] == "ok"
        await holder.wait_for(
            lambda c: set(c.outputs_at_done) == set(cells), 30, "every execution_done"
        )
        assert all(holder.outputs_at_done[cell_id] for cell_id in cells)
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
    for _ in range(5):
        message = daemon.generate_sync_message(ours)
        if message is not None:
            client.receive_sync_message(theirs, message)
        reply = client.generate_sync_message(theirs)
        if reply is not None:
            daemon.receive_sync_message(ours, reply)
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
