"""The doc form of a comm's state: large values and buffers as blobs, stored once."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import pytest

from notebook_doc import NotebookDoc
from runtimed.blob_store import BlobStore
from runtimed.comms import mirror as mirror_module
from runtimed.comms.comm_state import CommState
from runtimed.comms.mirror import (
    LARGE_VALUE_LIMIT,
    CommMirror,
    StoredValues,
    doc_state_json,
    state_from_doc,
)


class CountingStore(BlobStore):
    puts = 0

    def put(self, data: bytes, media_type: str = "application/octet-stream") -> str:
        self.puts += 1
        return super().put(data, media_type)


def test_large_values_and_buffers_leave_the_state_and_come_back(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    comms = CommState()
    big = "x" * (LARGE_VALUE_LIMIT + 1)
    entry = comms.on_comm_open(
        "w",
        "jupyter.widget",
        {"state": {"value": big, "small": 1}},
        buffer_paths=[["data"]],
        buffers=[b"\x00\x01"],
    )
    stored = json.loads(doc_state_json(entry, blobs))
    assert stored["small"] == 1
    assert set(stored["value"]) == {"$blob"}
    assert set(stored["data"]) == {"$blob"}
    state, buffers = state_from_doc(stored, blobs)
    assert state == {"value": big, "small": 1}
    assert buffers == {("data",): b"\x00\x01"}


def test_an_unchanged_large_value_is_not_stored_again_at_every_flush(tmp_path: Path) -> None:
    blobs = CountingStore(tmp_path)
    comms = CommState()
    stored: StoredValues = {}
    big = "y" * (LARGE_VALUE_LIMIT + 1)
    entry = comms.on_comm_open(
        "w",
        "jupyter.widget",
        {"state": {"value": big, "n": 0}},
        buffer_paths=[["b"]],
        buffers=[b"1"],
    )
    first = json.loads(doc_state_json(entry, blobs, stored))
    assert blobs.puts == 2
    for n in range(1, 20):  # the small key moves; the big value and the buffer stay
        comms.on_comm_update("w", {"n": n})
        again = json.loads(doc_state_json(entry, blobs, stored))
        assert again["value"] == first["value"]
        assert again["n"] == n
    assert blobs.puts == 2
    comms.on_comm_update("w", {"value": big + "!"})  # a new value is stored
    doc_state_json(entry, blobs, stored)
    assert blobs.puts == 3


class GatedStore(BlobStore):
    """A blob store whose writes wait until the test opens the gate (a slow disk)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.gate = threading.Event()

    def put(self, data: bytes, media_type: str = "application/octet-stream") -> str:
        assert self.gate.wait(30)
        return super().put(data, media_type)


async def test_a_slow_blob_write_never_blocks_the_loop_nor_leaks_into_the_doc(
    tmp_path: Path,
) -> None:
    blobs = GatedStore(tmp_path)
    comms = CommState()
    doc = NotebookDoc.new("nb")
    flushes = asyncio.Event()
    async with anyio.create_task_group() as tasks:  # where the writes run, as a room's
        mirror = CommMirror(doc, comms, blobs=blobs, schedule=flushes.set, spawn=tasks.start_soon)
        comms.on_comm_open("small", "jupyter.widget", {"state": {"value": 1}})
        big = {"state": {"value": "z" * (LARGE_VALUE_LIMIT * 2)}}
        comms.on_comm_open("big", "jupyter.widget", big)
        mirror.opened("small")
        mirror.opened("big")

        assert mirror.flush()  # returns at once although the disk is "slow"
        assert doc.get_comm("small") is not None
        assert doc.get_comm("big") is None  # its blob is not on disk yet: not in the doc
        flushes.clear()
        assert not mirror.flush()  # still being written: still not in the doc

        blobs.gate.set()
        await asyncio.wait_for(flushes.wait(), 30)  # the finished write asks for a flush
        assert mirror.flush()
        stored = json.loads(doc.get_comm_state_json("big") or "{}")
        assert blobs.has(stored["value"]["$blob"])
        assert not mirror.flush()  # nothing left to write
        await mirror.drain()


async def test_flushes_during_a_slow_blob_write_do_not_hash_the_value_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slider beside a big value flushes every few ms while the value's blob is
    written: the value is hashed (and encoded) once, not once per flush."""
    hashed: list[int] = []

    def counting_sha256(data: bytes) -> Any:
        hashed.append(len(data))
        return hashlib.sha256(data)

    monkeypatch.setattr(mirror_module, "hashlib", SimpleNamespace(sha256=counting_sha256))
    blobs = GatedStore(tmp_path)
    comms = CommState()
    doc = NotebookDoc.new("nb")
    flushes = asyncio.Event()
    async with anyio.create_task_group() as tasks:
        mirror = CommMirror(doc, comms, blobs=blobs, schedule=flushes.set, spawn=tasks.start_soon)
        big = "z" * (LARGE_VALUE_LIMIT * 2)
        comms.on_comm_open("w", "jupyter.widget", {"state": {"value": big, "n": 0}})
        mirror.opened("w")
        mirror.flush()
        assert len(hashed) == 1
        for n in range(1, 6):  # the small key moves while the disk is "slow"
            comms.on_comm_update("w", {"n": n})
            mirror.updated("w")
            assert not mirror.flush()
        assert len(hashed) == 1
        assert doc.get_comm("w") is None  # still not in the doc before its blob is

        flushes.clear()
        blobs.gate.set()
        await asyncio.wait_for(flushes.wait(), 30)
        assert mirror.flush()
        stored = json.loads(doc.get_comm_state_json("w") or "{}")
        assert stored["n"] == 5
        assert blobs.has(stored["value"]["$blob"])
        assert len(hashed) == 1
        await mirror.drain()
