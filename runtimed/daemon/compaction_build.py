"""The heavy part of a compaction: reading the old epoch's content and building the
fresh doc from it, a few cells or comms at a time with the event loop running between
steps (docs/compaction.md, "How").

Not in a worker thread: the binding holds the GIL for each call, and a thread busy
with short calls still makes the loop wait for the GIL after each of its own system
calls (a convoy that stalled it for hundreds of milliseconds). The fresh doc is
nobody else's until the switch, so building it in steps is safe.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Final

from notebook_doc import NotebookDoc
from notebook_doc.compaction import Content, carry, fresh_steps, read_content


@dataclass(frozen=True, slots=True)
class Built:
    """The fresh doc, and its bytes for SNAPSHOT and the file."""

    doc: NotebookDoc
    snapshot_heads: list[bytes]
    snapshot: bytes
    base_heads: list[bytes] | None  # where it holds the .ipynb's version (a saver's base)


async def build(content: Content, base: NotebookDoc | None) -> Built:
    """The fresh doc holding `content`. The bytes are its changes joined (any Automerge
    load takes them), not one long `save()`. With `base` (the doc as the .ipynb last
    had it), the fresh doc holds that version first, then what changed since."""
    if base is None:
        fresh = await _fresh(content)
        base_heads = None
    else:
        base_content, _ = await read_in_slices(base)
        fresh = await _fresh(base_content)
        base_heads = fresh.get_heads()
        carry(fresh, base_content, content, comms=True)
    return Built(fresh, fresh.get_heads(), fresh.save_changes(), base_heads)


async def _fresh(content: Content) -> NotebookDoc:
    doc, steps = fresh_steps(content)
    for _ in steps:
        await asyncio.sleep(0)
    return doc


# Comms read per slice of the old doc's content; the loop runs between slices.
READ_SLICE: Final = 100


async def read_in_slices(doc: NotebookDoc) -> tuple[Content, dict[str, Any]]:
    """The doc's content, comms a slice at a time. Comms may change between slices;
    each comm's fingerprint is taken before it is read, so `read_content_since` later
    re-reads every comm that moved after its fingerprint."""
    await asyncio.sleep(0)  # after the coalescer's flush
    versions = doc.comm_versions()
    await asyncio.sleep(0)
    content = read_content(doc, comms=False)  # cells: all read again before the switch
    ids = list(versions)
    for start in range(0, len(ids), READ_SLICE):
        await asyncio.sleep(0)
        for comm_id in ids[start : start + READ_SLICE]:
            comm = doc.get_raw_comm(comm_id)
            if comm is not None:
                content.comms[comm_id] = comm
    return content, versions
