"""Sync messages that do not decode, or whose changes break the schema, end to end.

A buggy or hostile Automerge peer can write anything into its copy of the doc and
sync it in. The daemon applies it (Automerge cannot refuse a change), sees the schema
broken, repairs the doc in one change (comms from CommState, cells and metadata from
the doc as it was just before), tells that peer `schema_violation`, and every other
client converges back to a sound notebook.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio
from automerge.core import ROOT, Document, ObjType, ScalarType

from runtimed.client import Client
from tests.bridge.helpers import assert_doc_matches_comm_state, run
from tests.conftest import RunningDaemon, quick_settings, short_socket_dir
from tests.daemon.test_wire import Raw, typed

NOTEBOOK = "nb-hostile"

Mutation = Callable[[Document], None]


def raw_doc(client: Client) -> Document:
    """The client's Automerge document itself: what a buggy peer writes into."""
    return client.doc._doc


def _map(doc: Document, *path: str) -> bytes:
    obj = ROOT
    for key in path:
        obj = doc.get(obj, key)[1]
    return obj


def _first_comm(doc: Document) -> bytes:
    comms = _map(doc, "comms")
    return doc.get(comms, sorted(doc.keys(comms))[0])[1]


def _first_cell(doc: Document) -> bytes:
    cells = _map(doc, "cells")
    return doc.get(cells, sorted(doc.keys(cells))[0])[1]


def _delete_root(key: str) -> Mutation:
    def mutate(doc: Document) -> None:
        with doc.transaction() as tx:
            tx.delete(ROOT, key)

    return mutate


def _put(target: Callable[[Document], bytes], key: str, kind: ScalarType, value: object):
    def mutate(doc: Document) -> None:
        obj = target(doc)
        with doc.transaction() as tx:
            tx.put(obj, key, kind, value)

    return mutate


def _replace_root(key: str, kind: ObjType) -> Mutation:
    def mutate(doc: Document) -> None:
        with doc.transaction() as tx:
            tx.put_object(ROOT, key, kind)

    return mutate


HOSTILE: dict[str, Mutation] = {
    "a number where a comm's state string belongs": _put(_first_comm, "state", ScalarType.Int, 42),
    "a comm's state that is not JSON": _put(_first_comm, "state", ScalarType.Str, "{nope"),
    "a comm's seq as a string": _put(_first_comm, "seq", ScalarType.Str, "1"),
    "comms deleted": _delete_root("comms"),
    "comms replaced by a list": _replace_root("comms", ObjType.List),
    "cells deleted": _delete_root("cells"),
    "cells replaced by a text": _replace_root("cells", ObjType.Text),
    "metadata deleted": _delete_root("metadata"),
    "notebook_id changed": _put(lambda d: ROOT, "notebook_id", ScalarType.Str, "someone-else"),
    "schema_version deleted": _delete_root("schema_version"),
    "a cell's source made a plain string": _put(_first_cell, "source", ScalarType.Str, "x"),
    "a cell's outputs made a number": _put(_first_cell, "outputs", ScalarType.Int, 7),
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def room(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[Client, Client, Client]]:
    """An actor with a kernel and two widgets, a bystander and the peer that will
    misbehave: one room for every case of the module (a kernel and a daemon each would
    cost seconds); each case starts from the sound room the case before it left, and
    ends by checking that the room is sound and works again for all three."""
    sock_dir = short_socket_dir()
    running = RunningDaemon(quick_settings(tmp_path_factory.mktemp("hostile-sync"), sock_dir))
    await running.start()
    try:
        async with (
            running.client(NOTEBOOK) as actor,
            running.client(NOTEBOOK) as bystander,
            running.client(NOTEBOOK) as offender,
        ):
            await actor.request("launch_kernel")
            actor.doc.update_metadata("kernelspec", {"name": "python3", "display_name": "Python 3"})
            for source in ("a = 1", "print(a)", "# notes"):
                actor.doc.add_cell(source=source)
            await actor.wait_synced()
            await run(actor, "from ipywidgets import *\ns = IntSlider(value=4)\nt = Text('hi')")
            await assert_doc_matches_comm_state(bystander, actor)
            await offender.wait_for(
                lambda c: c.doc.get_heads() == bystander.doc.get_heads(), what="offender synced"
            )
            yield actor, bystander, offender
            await actor.request("shutdown_kernel")
    finally:
        await running.stop()
        shutil.rmtree(sock_dir, ignore_errors=True)


def cells_view(client: Client) -> list[tuple[str, str, str]]:
    return [(c.id, c.cell_type, c.source) for c in client.doc.get_cells()]


@pytest.mark.kernel
@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("case", list(HOSTILE))
async def test_a_change_that_breaks_the_schema_is_repaired_for_everyone(
    room: tuple[Client, Client, Client], case: str
) -> None:
    actor, bystander, offender = room
    cells_before = cells_view(bystander)
    metadata_before = bystander.doc.get_metadata()
    errors = offender.subscribe()

    HOSTILE[case](raw_doc(offender))
    await offender.push()

    error = await asyncio.wait_for(errors.get(), 15)
    while error.event != "error":
        error = await asyncio.wait_for(errors.get(), 15)
    assert error.fields["code"] == "schema_violation"
    assert "repaired" in error.fields["message"]
    # Everyone, the offender included, ends at one sound notebook with nothing lost:
    # the cells and metadata as they were, the comms equal to CommState.
    for client in (bystander, offender):
        await client.wait_for(lambda c: c.doc.validate() == [], what="a sound doc again")
    await offender.wait_for(
        lambda c: c.doc.get_heads() == bystander.doc.get_heads(), what="offender converged"
    )
    assert offender.doc.notebook_id == NOTEBOOK
    if case != "a cell's source made a plain string":
        assert cells_view(bystander) == cells_before
    else:
        assert [c[0] for c in cells_view(bystander)] == [c[0] for c in cells_before]
    assert bystander.doc.get_metadata() == metadata_before
    await assert_doc_matches_comm_state(bystander, actor)
    # The bystander was never told off, and the room still works for all three.
    assert not [e for e in bystander.broadcasts if e.event == "error"]
    value = 10 + list(HOSTILE).index(case)  # not the value an earlier case left
    await run(actor, f"s.value = {value}")
    legacy = await assert_doc_matches_comm_state(offender, actor)
    [slider] = [c for c in legacy.values() if c["model_name"] == "IntSliderModel"]
    assert slider["state"]["value"] == value


async def test_undecodable_sync_messages_close_only_that_connection(
    running: RunningDaemon,
) -> None:
    async with running.client("nb-garbage-sync") as bystander:
        bystander.doc.add_cell(source="kept")
        await bystander.wait_synced()
        for garbage in (b"", b"\x00", b"\x42" * 100, b"\x43\x00\x01\xff", bytes(range(256))):
            reader, writer = await asyncio.open_unix_connection(str(running.settings.socket_path))
            raw = Raw(reader, writer)
            await raw.join("nb-garbage-sync")
            await raw.send(typed(0x00, garbage))
            error = await raw.read_until_broadcast("error")
            assert error["code"] == "bad_sync", error
            assert error["fatal"] is True
            assert await raw.at_eof()
            writer.close()
        bystander.doc.add_cell(source="still syncing")
        await bystander.wait_synced()
        async with running.client("nb-garbage-sync") as late:
            assert [c.source for c in late.doc.get_cells()] == ["kept", "still syncing"]
