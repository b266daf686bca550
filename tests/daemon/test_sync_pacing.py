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
from runtimed.wire import Sync
from tests.conftest import RunningDaemon
from tests.daemon.compaction_helpers import sources


class HoldingClient(Client):
    """Applies the daemon's SYNC frames but answers them only while `answering`: a peer
    that is busy or far away. Counts the SYNC frames that carried changes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.answering = True
        self.with_changes = 0

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
        # Its own request's answer comes after anything the daemon's writer for it made
        # before: every SYNC the 20 changes caused has arrived by then.
        await holder.request("get_comms")
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
