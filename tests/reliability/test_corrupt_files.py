"""Damaged files on disk are quarantined or reported, never silently used.

- a `.automerge` that does not load is renamed `*.corrupt` (kept for the user) and the
  room starts from its `.ipynb`;
- an `.ipynb` that does not parse refuses the join with `bad_notebook`, and the file is
  left exactly as it was;
- a blob whose bytes no longer match its hash is never served: `get_blob` answers
  `blob_corrupt`, the file is set aside as `*.corrupt`, and exports show a placeholder.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from notebook_doc import NotebookDoc, doc_filename
from runtimed.blob_store import BlobStore
from runtimed.client import ClientError
from runtimed.outputs import MANIFEST_MEDIA_TYPE
from tests.conftest import RunningDaemon


def write_notebook(path: Path, source: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source)]
    nbformat.write(nb, str(path))


def other_notebooks_doc() -> bytes:
    doc = NotebookDoc.new("someone-else")
    doc.add_cell(source="not yours")
    return doc.save()


def truncated_doc() -> bytes:
    doc = NotebookDoc.new("x")
    doc.add_cell(source="a" * 1000)
    data = doc.save()
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda: b"\x85\x6f\x4a\x83 garbage", id="garbage after the magic"),
        pytest.param(truncated_doc, id="truncated"),
        pytest.param(lambda: b"", id="empty"),
        pytest.param(other_notebooks_doc, id="another notebook's doc"),
    ],
)
async def test_a_corrupt_doc_is_quarantined_and_the_room_opens_from_its_ipynb(
    running: RunningDaemon, tmp_path: Path, damage
) -> None:
    notebook = tmp_path / "nb.ipynb"
    write_notebook(notebook, "from the ipynb")
    notebook_id = str(notebook)
    await running.stop()
    doc_file = running.settings.docs_dir / doc_filename(notebook_id)
    doc_file.parent.mkdir(parents=True, exist_ok=True)
    bad = damage()
    doc_file.write_bytes(bad)
    await running.start()
    async with running.client(notebook_id, path=str(notebook)) as client:
        assert [c.source for c in client.doc.get_cells()] == ["from the ipynb"]
    assert doc_file.with_name(doc_file.name + ".corrupt").read_bytes() == bad
    await running.stop()  # the room's own file is sound again
    assert NotebookDoc.load(doc_file.read_bytes()).notebook_id == notebook_id
    await running.start()


@pytest.mark.parametrize(
    "content",
    [
        b"{ not json",
        b"\xff\xfe\x00garbage",
        json.dumps({"nbformat": 4, "cells": "not a list"}).encode(),
        json.dumps({"nbformat": 99, "nbformat_minor": 0, "cells": []}).encode(),
        json.dumps([1, 2, 3]).encode(),
    ],
)
async def test_a_corrupt_ipynb_is_refused_and_left_untouched(
    running: RunningDaemon, tmp_path: Path, content: bytes
) -> None:
    notebook = tmp_path / "broken.ipynb"
    notebook.write_bytes(content)
    with pytest.raises(ClientError) as refused:
        async with running.client(str(notebook), path=str(notebook)):
            pass
    assert refused.value.code == "bad_notebook"
    assert str(notebook) in refused.value.message
    assert notebook.read_bytes() == content
    assert not list(running.settings.docs_dir.glob("*.automerge"))
    async with running.client("nb-after") as client:  # the daemon goes on
        client.doc.add_cell(source="fine")
        await client.wait_synced()


async def test_a_blob_with_the_wrong_content_is_never_served(
    running: RunningDaemon, tmp_path: Path
) -> None:
    blobs = BlobStore(running.settings.blobs_dir)
    output = {"output_type": "stream", "name": "stdout", "text": "the real output " * 200}
    manifest = blobs.put_json(output, MANIFEST_MEDIA_TYPE)
    notebook = tmp_path / "with-blob.ipynb"
    async with running.client(str(notebook)) as client:
        cell = client.doc.add_cell(source="print(...)")
        client.doc.set_outputs(cell, [manifest])
        await client.wait_synced()
        assert (await client.request("get_blob", hash=manifest))["hash"] == manifest

        blob_file = blobs.path_for(manifest)
        tampered = blob_file.read_bytes().replace(b"real", b"fake")
        blob_file.write_bytes(tampered)  # same size, different content

        with pytest.raises(ClientError) as refused:
            await client.request("get_blob", hash=manifest)
        assert refused.value.code == "blob_corrupt"
        assert not blob_file.exists()
        assert blob_file.with_name(blob_file.name + ".corrupt").read_bytes() == tampered
        with pytest.raises(ClientError) as gone:
            await client.request("get_blob", hash=manifest)
        assert gone.value.code == "blob_not_found"

        await client.request("save", path=str(notebook))
    saved = nbformat.read(str(notebook), as_version=4)
    [placeholder] = saved.cells[0].outputs
    assert "fake" not in json.dumps(placeholder)
    assert manifest in json.dumps(placeholder)
