"""`Client.wait_synced` returns once the daemon has our changes, also in rooms that are
never quiet and when the daemon's last word needs no answer.

Found by the soak: the old rule ("an answer came after our push and we had nothing
more to say") waited for a quiet moment. With another client's change arriving in the
daemon's answer, our reply is an acknowledgement, the daemon has nothing to add, and
no further answer ever comes: wait_synced hung until its timeout.
"""

from __future__ import annotations

import asyncio

from notebook_doc import NotebookDoc, SyncState, sync_message_heads
from tests.conftest import RunningDaemon


async def test_concurrent_editors_never_wait_for_a_quiet_room(running: RunningDaemon) -> None:
    async with running.client("nb-acks") as a, running.client("nb-acks") as b:
        for i in range(40):
            a.doc.add_cell(source=f"a{i}")
            b.doc.add_cell(source=f"b{i}")
            await asyncio.gather(a.wait_synced(timeout=5), b.wait_synced(timeout=5))
        await a.wait_for(lambda c: len(c.doc.cell_ids()) == 80, what="a has every cell")
        await b.wait_for(lambda c: c.doc.get_heads() == a.doc.get_heads(), what="converged")


async def test_wait_synced_without_local_changes_returns_at_once(
    running: RunningDaemon,
) -> None:
    async with running.client("nb-idle") as a, running.client("nb-idle") as b:
        b.doc.add_cell(source="from b")
        await b.wait_synced()
        await a.wait_for(lambda c: len(c.doc.cell_ids()) == 1, what="a got b's cell")
        await a.wait_synced(timeout=1)  # nothing of a's own to wait for


def test_sync_message_heads_reads_the_heads_a_message_names() -> None:
    doc = NotebookDoc.new("nb")
    doc.add_cell(source="x")
    message = doc.generate_sync_message(SyncState())
    assert message is not None
    assert sync_message_heads(message) == set(doc.get_heads())
