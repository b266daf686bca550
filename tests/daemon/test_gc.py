"""runtimed gc: blobs that no notebook (open or saved) refers to are deleted, no others."""

from __future__ import annotations

import json

import pytest

from notebook_doc import doc_filename
from runtimed.client import ClientError
from tests.conftest import RunningDaemon, eventually


def stored(running: RunningDaemon) -> set[str]:
    assert running.daemon is not None
    return set(running.daemon.blobs.iter_hashes())


async def test_gc_keeps_what_open_and_saved_notebooks_need(running: RunningDaemon) -> None:
    blobs = running.daemon.blobs
    chunk = blobs.put_json("a long stream's first chunk")
    manifest = blobs.put_json(
        {"output_type": "stream", "name": "stdout", "text": [{"$blob": chunk}, "rest"]},
        "application/x-nbformat-output+json",
    )
    image = blobs.put(b"\x89PNG image bytes")
    orphan = blobs.put(b"nobody needs me")

    # An open room whose cell output is the manifest.
    async with running.client("nb-open") as client:
        cell = client.doc.add_cell(source="print(...)")
        client.doc.set_outputs(cell, [manifest])
        await client.wait_synced()
        # A saved room (closed when its last peer leaves) whose widget holds the image.
        async with running.client("nb-saved") as other:
            other.doc.put_comm(
                "w1",
                "jupyter.widget",
                "m",
                "ImageModel",
                json.dumps({"value": {"$blob": image}}),
                0,
            )
            await other.wait_synced()
        saved = running.settings.docs_dir / doc_filename("nb-saved")
        # Its last peer left: after the grace period the room is saved and closed.
        await eventually(lambda: "nb-saved" not in running.daemon.rooms, what="room closed")
        assert saved.exists()

        async with running.client() as control:
            young = await control.request("gc")  # default: blobs under an hour old stay
            assert young["blobs_deleted"] == 0
            report = await control.request("gc", min_age=0)
    assert report["notebooks"] == 2
    assert report["blobs_deleted"] == 1
    assert stored(running) == {chunk, manifest, image}
    assert orphan not in stored(running)


async def test_gc_refuses_when_a_saved_notebook_does_not_load(running: RunningDaemon) -> None:
    orphan = running.daemon.blobs.put(b"would be deleted")
    broken = running.settings.docs_dir / doc_filename("nb-broken")
    broken.write_bytes(b"not an automerge file")
    async with running.client() as control:
        with pytest.raises(ClientError) as refused:
            await control.request("gc", min_age=0)
    assert refused.value.code == "gc_refused"
    assert "no blob was deleted" in refused.value.message
    assert orphan in stored(running)
