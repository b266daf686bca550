"""The doc on disk: atomic writes, quarantine of unreadable files, file names."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from automerge.core import ROOT, Document, ScalarType

from notebook_doc import (
    NotebookDoc,
    UnsupportedSchemaVersion,
    atomic_write,
    doc_filename,
    load_or_create,
)


def test_doc_filename_is_sha256_of_the_id() -> None:
    notebook_id = "/home/ana/notebooks/análise 😀.ipynb"
    expected = hashlib.sha256(notebook_id.encode()).hexdigest() + ".automerge"
    assert doc_filename(notebook_id) == expected
    assert doc_filename("a") != doc_filename("b")


def test_atomic_write_replaces_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "doc.automerge"
    atomic_write(target, b"first")
    atomic_write(target, b"second")
    assert target.read_bytes() == b"second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["doc.automerge"]


def test_failed_write_keeps_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "doc.automerge"
    atomic_write(target, b"precious")

    def failing_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space left"):
        atomic_write(target, b"half-written")
    monkeypatch.undo()
    assert target.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["doc.automerge"]


def test_load_or_create_round_trip(tmp_path: Path) -> None:
    path = tmp_path / doc_filename("nb")
    doc, warning = load_or_create(path, "nb")
    assert warning is None
    assert doc.get_cells() == []
    assert not path.exists()  # creating does not write
    doc.add_cell(source="x = 1")
    atomic_write(path, doc.save())
    again, warning = load_or_create(path, "nb")
    assert warning is None
    assert again.to_json() == doc.to_json()


@pytest.mark.parametrize(
    "content",
    [b"not automerge at all", b"", "wrong-id"],
    ids=["garbage", "empty", "other-notebook"],
)
def test_unloadable_file_is_quarantined(tmp_path: Path, content: bytes | str) -> None:
    path = tmp_path / doc_filename("nb")
    data = NotebookDoc.new("another").save() if content == "wrong-id" else content
    path.write_bytes(data)  # type: ignore[arg-type]
    doc, warning = load_or_create(path, "nb")
    assert warning is not None
    assert "did not load" in warning
    assert doc.notebook_id == "nb"
    assert doc.get_cells() == []
    quarantined = path.with_name(path.name + ".corrupt")
    assert quarantined.read_bytes() == data
    assert not path.exists()


def test_truncated_file_is_quarantined(tmp_path: Path) -> None:
    doc = NotebookDoc.new("nb")
    doc.add_cell(source="x" * 1000)
    path = tmp_path / doc_filename("nb")
    path.write_bytes(doc.save()[:-20])
    _, warning = load_or_create(path, "nb")
    assert warning is not None
    assert path.with_name(path.name + ".corrupt").exists()


def test_newer_schema_file_is_left_alone(tmp_path: Path) -> None:
    raw = Document()
    with raw.transaction() as tx:
        tx.put(ROOT, "schema_version", ScalarType.Uint, 9)
        tx.put(ROOT, "notebook_id", ScalarType.Str, "nb")
    path = tmp_path / doc_filename("nb")
    path.write_bytes(raw.save())
    with pytest.raises(UnsupportedSchemaVersion, match="schema_version 9"):
        load_or_create(path, "nb")
    assert path.exists()
