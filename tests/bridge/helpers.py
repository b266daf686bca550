"""Driving a real kernel through the daemon, and reading the truth back from it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
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
    _, data = await fetch_blob(client, entry)
    output = json.loads(data)
    if output.get("output_type") == "stream" and isinstance(output["text"], list):
        # A long stream's manifest keeps full chunks as their own blobs.
        parts = [
            json.loads((await fetch_blob(client, part["$blob"]))[1])
            if isinstance(part, dict)
            else part
            for part in output["text"]
        ]
        output["text"] = "".join(parts)
    return output


async def kernel_widgets(client: Client) -> dict[str, dict]:
    """The kernel's own view: model id -> state, from ipywidgets' registry."""
    outputs = await run_cell(client, KERNEL_WIDGETS)
    text = "".join(o.get("text", "") for o in outputs if o["output_type"] == "stream")
    return json.loads(text)


def doc_comms(client: Client) -> dict[str, dict]:
    """What a client that only syncs the doc sees (large values still as {"$blob"})."""
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


def only(comms: dict[str, dict], model_name: str) -> str:
    """The id of the one comm of `model_name` (fails if there are none or several)."""
    [comm_id] = [cid for cid, c in comms.items() if c["model_name"] == model_name]
    return comm_id


def bytes_marker(data: bytes) -> dict[str, str]:
    """How a binary value is compared: by content."""
    return {"$bytes": hashlib.sha256(data).hexdigest()}


async def fetch_blob(client: Client, hash_: str) -> tuple[str, bytes]:
    blob = await client.request("get_blob", hash=hash_)
    return blob["media_type"], base64.b64decode(blob["data"])


async def resolved_doc_comms(client: Client) -> dict[str, dict]:
    """The doc's comms with every {"$blob"} fetched: JSON back in place, bytes as markers."""

    async def resolve(value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"$blob"}:
            media_type, data = await fetch_blob(client, value["$blob"])
            return json.loads(data) if media_type == "application/json" else bytes_marker(data)
        if isinstance(value, dict):
            return {k: await resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [await resolve(v) for v in value]
        return value

    comms = doc_comms(client)
    for comm in comms.values():
        comm["state"] = await resolve(comm["state"])
    return comms


def wire_comms(comms: list[dict]) -> dict[str, dict]:
    """CommState's view (get_comms / comm_sync) in the shape of `resolved_doc_comms`."""
    view = {}
    for c in comms:
        state = dict(c["state"])
        for path, data in zip(c["buffer_paths"], c["buffers"], strict=True):
            target = state
            for part in path[:-1]:
                target = target[part]
            target[path[-1]] = bytes_marker(base64.b64decode(data))
        view[c["comm_id"]] = {
            "target_name": c["target_name"],
            "model_module": c["model_module"],
            "model_name": c["model_name"],
            "state": state,
            "seq": c["seq"],
            "outputs": list(c["outputs"]),
        }
    return view


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
        heads = observer.doc.get_heads()
        seen = await resolved_doc_comms(observer)
        if seen == legacy:
            break
        if asyncio.get_running_loop().time() > deadline:
            assert seen == legacy, "the doc never matched CommState"
        with contextlib.suppress(TimeoutError):
            await observer.wait_for(lambda c, h=heads: c.doc.get_heads() != h, 0.5)
    seqs = [c.seq for c in observer.doc.get_comms()]
    assert seqs == sorted(seqs)
    return legacy
