"""Driving a real kernel through the daemon, and reading the truth back from it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from runtimed.client import Client

# Prints every live widget's state as the kernel holds it (ipywidgets' own registry).
KERNEL_WIDGETS = """
import json as _json
from ipywidgets.widgets.widget import _instances as _i
def _plain(v):
    return v if not isinstance(v, (bytes, memoryview)) else "<bytes>"
print(_json.dumps({k: {n: _plain(x) for n, x in w.get_state().items()} for k, w in _i.items()}))
"""


async def run(client: Client, code: str, timeout: float = 60) -> dict:
    """Execute code (not stored in a cell) and wait until the kernel is idle after it."""
    msg_id = (await client.request("execute", code=code))["msg_id"]
    await client.wait_for(lambda c: done(c, msg_id), timeout, f"execution {msg_id} finished")
    return next(e.fields for e in client.broadcasts if is_done(e, msg_id))


def is_done(event: Any, msg_id: str) -> bool:
    return event.event == "execution_done" and event.fields.get("msg_id") == msg_id


def done(client: Client, msg_id: str) -> bool:
    return any(is_done(e, msg_id) for e in client.broadcasts)


async def run_cell(client: Client, code: str, timeout: float = 60) -> list[dict]:
    """Execute code in a new cell and return its outputs (hashes resolved)."""
    cell_id = client.doc.add_cell(source=code)
    await client.wait_synced()
    msg_id = (await client.request("execute_cell", cell_id=cell_id))["msg_id"]
    await client.wait_for(lambda c: done(c, msg_id), timeout, "cell finished")
    await client.wait_synced()
    return [await resolve_output(client, entry) for entry in client.doc.get_outputs(cell_id)]


async def resolve_output(client: Client, entry: str) -> dict:
    if entry.startswith("{"):
        return json.loads(entry)
    import base64

    blob = await client.request("get_blob", hash=entry)
    return json.loads(base64.b64decode(blob["data"]))


async def kernel_widgets(client: Client) -> dict[str, dict]:
    """The kernel's own view: model id -> state, from ipywidgets' registry."""
    outputs = await run_cell(client, KERNEL_WIDGETS)
    text = "".join(o.get("text", "") for o in outputs if o["output_type"] == "stream")
    return json.loads(text)


def doc_comms(client: Client) -> dict[str, dict]:
    """What a client that only syncs the doc sees."""
    return {
        c.comm_id: {
            "target_name": c.target_name,
            "model_module": c.model_module,
            "model_name": c.model_name,
            "state": c.state,
            "seq": c.seq,
            "outputs": list(c.outputs),
        }
        for c in client.doc.get_comms()
    }


def wire_comms(comms: list[dict]) -> dict[str, dict]:
    """CommState's view (get_comms / comm_sync), in the same shape as `doc_comms`."""
    return {
        c["comm_id"]: {
            "target_name": c["target_name"],
            "model_module": c["model_module"],
            "model_name": c["model_name"],
            "state": c["state"],
            "seq": c["seq"],
            "outputs": list(c["outputs"]),
        }
        for c in comms
    }


async def assert_doc_matches_comm_state(
    observer: Client, actor: Client, timeout: float = 15
) -> dict[str, dict]:
    """The doc seen by a sync-only client equals CommState (get_comms), seq order included.

    Both may still be moving (a coalescing window, a sync in flight): compare until
    they agree, and fail with both views when the deadline passes.
    """
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        legacy = wire_comms((await actor.request("get_comms"))["comms"])
        try:
            await observer.wait_for(lambda c, want=legacy: doc_comms(c) == want, 0.5)
            break
        except TimeoutError:
            if asyncio.get_running_loop().time() > deadline:
                assert doc_comms(observer) == legacy, "the doc never matched CommState"
    seqs = [c.seq for c in observer.doc.get_comms()]
    assert seqs == sorted(seqs)
    return legacy
