"""Compaction with a real kernel: a widget stream and an execution's outputs run
through several compactions and end where the kernel is."""

from __future__ import annotations

import json

import pytest

from tests.bridge.conftest import NOTEBOOK
from tests.bridge.helpers import (
    assert_doc_matches_comm_state,
    done,
    kernel_widgets,
    resolve_output,
)

pytestmark = pytest.mark.kernel

STREAM = """
import time
from ipywidgets import FloatProgress, HTML
bar = FloatProgress(min=0, max=600)
label = HTML()
display(bar, label)
for i in range(1, 601):
    bar.value = i
    label.value = f"<b>{i}</b> of 600"
    time.sleep(0.004)
"""


def progress(client) -> float:
    values = [c.state.get("value") for c in client.doc.get_comms()]
    return max((v for v in values if isinstance(v, int | float)), default=0)


async def test_a_widget_stream_through_compactions_ends_at_the_kernels_state(pair, running) -> None:
    actor, observer = pair
    msg_id = (await actor.request("execute", code=STREAM))["msg_id"]
    seen = 0.0
    for _ in range(4):  # compact whenever the stream has moved on
        await observer.wait_for(lambda c, s=seen: progress(c) > s, 60, "the stream moves")
        seen = progress(observer)
        await observer.request("compact")
    await actor.wait_for(lambda c: done(c, msg_id), 120, "stream finished")
    room = running.daemon.rooms[NOTEBOOK]
    assert room.compactor.epoch >= 4
    legacy = await assert_doc_matches_comm_state(observer, actor)
    truth = await kernel_widgets(actor)
    assert set(legacy) == set(truth)
    for comm_id, state in truth.items():
        for key, value in state.items():
            assert legacy[comm_id]["state"][key] == value, (comm_id, key)
    values = [state.get("value") for state in truth.values()]
    assert 600 in values
    assert "<b>600</b> of 600" in values
    assert observer.epoch == actor.epoch == room.compactor.epoch


PRINTS = """
import time
for i in range(300):
    print(f"line {i}", flush=True)
    time.sleep(0.003)
"""


async def test_a_compaction_during_an_execution_keeps_every_output(pair, running) -> None:
    actor, observer = pair
    cell = actor.doc.add_cell(source=PRINTS)
    await actor.wait_synced()
    msg_id = (await actor.request("execute_cell", cell_id=cell))["msg_id"]
    for _ in range(3):
        count = len(observer.doc.get_outputs(cell)) if observer.doc.get_cell(cell) else 0
        await observer.wait_for(
            lambda c, n=count: done(c, msg_id) or _text_length(c, cell) > n, 60, "outputs grow"
        )
        await observer.request("compact")
    await actor.wait_for(lambda c: done(c, msg_id), 120, "cell finished")
    room = running.daemon.rooms[NOTEBOOK]
    assert room.compactor.epoch >= 3

    async def text(client) -> str:
        outputs = [await resolve_output(client, e) for e in client.doc.get_outputs(cell)]
        return "".join(o.get("text", "") for o in outputs if o["output_type"] == "stream")

    want = "".join(f"line {i}\n" for i in range(300))
    await observer.wait_for(lambda c: c.doc.to_json() == room.doc.to_json(), 30, "synced")
    assert await text(observer) == want
    assert await text(actor) == want


def _text_length(client, cell: str) -> int:
    if client.doc.get_cell(cell) is None:
        return 0
    entries = client.doc.get_outputs(cell)
    return sum(len(json.loads(e).get("text", "")) if e.startswith("{") else 1 for e in entries)
