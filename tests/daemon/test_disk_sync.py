"""Merging a disk version into a doc: the smallest edit, as real docs and a real blob store."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from notebook_doc import IpynbError, NotebookDoc, from_ipynb
from runtimed import notebook_file
from runtimed.blob_store import BlobStore
from runtimed.disk_sync import (
    Merged,
    NoBase,
    _longest_increasing,
    apply_disk_version,
    apply_notebook,
    fork_at,
    merge_branch,
)
from runtimed.outputs import encode_output


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


def merge_disk_version(
    doc: NotebookDoc, base: list[bytes] | None, data: bytes, blobs: BlobStore
) -> Merged:
    """What the room does: the disk version applied on a fork at base, merged back."""
    branch = fork_at(doc, base)
    if not apply_disk_version(branch, data, blobs):
        return Merged(base or [], False)
    return merge_branch(doc, branch)


def notebook(cells: list[tuple[str, str, str]]) -> bytes:
    nb = nbformat.v4.new_notebook()
    for cell_id, cell_type, source in cells:
        cell = (
            nbformat.v4.new_code_cell(source)
            if cell_type == "code"
            else nbformat.v4.new_markdown_cell(source)
        )
        cell.id = cell_id
        nb.cells.append(cell)
    return nbformat.writes(nb).encode()


def test_moves_keep_the_longest_ordered_run_in_place(blobs: BlobStore) -> None:
    ids = list("abcdef")
    doc = from_ipynb(notebook([(i, "code", i) for i in ids]), notebook_id="n")
    before = {cell.id: cell.position for cell in doc.get_cells()}
    disk = from_ipynb(notebook([(i, "code", i) for i in "fabcde"]), notebook_id="n")
    assert apply_notebook(doc, disk, blobs)
    assert doc.cell_ids() == list("fabcde")
    after = {cell.id: cell.position for cell in doc.get_cells()}
    assert [i for i in ids if after[i] != before[i]] == ["f"]  # one move, not five


def test_an_unchanged_disk_version_changes_nothing(blobs: BlobStore) -> None:
    doc = NotebookDoc.new("n")
    cell = doc.add_cell(source="print('x' * 5000)")
    big = {"output_type": "stream", "name": "stdout", "text": "x" * 5000 + "\n"}
    doc.set_outputs(cell, [encode_output(big, blobs)])  # a manifest in the blob store
    rendered = notebook_file.encode(notebook_file.render(doc, blobs))
    heads = doc.get_heads()
    merged = merge_disk_version(doc, heads, rendered, blobs)
    assert not merged.changed
    assert doc.get_heads() == heads


def test_type_change_output_and_metadata_edits(blobs: BlobStore) -> None:
    doc = from_ipynb(notebook([("a", "code", "x = 1"), ("b", "code", "# title")]), notebook_id="n")
    heads = doc.get_heads()
    nb = json.loads(notebook([("a", "code", "x = 1"), ("b", "markdown", "# title")]))
    nb["cells"][0]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "1\n"}]
    nb["cells"][0]["execution_count"] = 3
    nb["metadata"]["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    merged = merge_disk_version(doc, heads, json.dumps(nb).encode(), blobs)
    assert merged.changed
    a, b = doc.get_cells()
    assert (a.execution_count, json.loads(a.outputs[0])["text"]) == (3, "1\n")
    assert (b.id, b.cell_type, b.source) == ("b", "markdown", "# title")
    assert doc.get_metadata()["kernelspec"]["name"] == "python3"


def test_no_base_and_not_a_notebook(blobs: BlobStore) -> None:
    doc = from_ipynb(notebook([("a", "code", "x")]), notebook_id="n")
    with pytest.raises(NoBase):
        merge_disk_version(doc, [b"\x01" * 32], notebook([("a", "code", "y")]), blobs)
    with pytest.raises(NoBase):
        merge_disk_version(doc, None, notebook([("a", "code", "y")]), blobs)
    with pytest.raises(IpynbError):
        merge_disk_version(doc, doc.get_heads(), b"{not json", blobs)
    assert doc.get_cells()[0].source == "x"


@pytest.mark.parametrize(
    "values", [[], [3], [1, 2, 3], [3, 2, 1], [5, 0, 1, 2, 3, 4], [2, 0, 3, 1, 4]]
)
def test_longest_increasing(values: list[int]) -> None:
    run = _longest_increasing(values)
    kept = [v for v in values if v in run]
    assert kept == sorted(kept)
    assert len(run) == max((_len_ending(values, i) for i in range(len(values))), default=0)


def _len_ending(values: list[int], end: int) -> int:
    """Reference: the longest increasing run ending at `end`, by brute force."""
    best = 1
    for j in range(end):
        if values[j] < values[end]:
            best = max(best, 1 + _len_ending(values, j))
    return best


def test_write_refuses_a_file_that_changed_and_keeps_mode(tmp_path: Path) -> None:
    path = tmp_path / "n.ipynb"
    path.write_bytes(b"theirs")
    path.chmod(0o604)
    with pytest.raises(notebook_file.FileChanged):
        notebook_file.write(path, b"ours", expected=notebook_file.content_hash(b"older"))
    assert path.read_bytes() == b"theirs"
    written = notebook_file.write(path, b"ours", expected=notebook_file.content_hash(b"theirs"))
    assert written == notebook_file.content_hash(b"ours")
    assert (path.read_bytes(), path.stat().st_mode & 0o777) == (b"ours", 0o604)
    with pytest.raises(notebook_file.FileChanged):  # None: the file must not exist yet
        notebook_file.write(path, b"again", expected=None)
