"""The daemon's stored copies of notebooks (`docs/*.automerge`) and their file records.

A room opened from an .ipynb keeps a record beside its stored copy: the file's path,
the hash of the version the room last read or wrote, and the doc's heads for that
version. It is what lets the room tell an edit made on disk from its own, even after
a restart. This module lists, reads and forgets them; it never touches the .ipynb.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from notebook_doc import NotebookDoc, NotebookDocError, atomic_write, doc_filename

log = structlog.get_logger(__name__)

RECORD_SUFFIX = ".file.json"


@dataclass(frozen=True, slots=True)
class FileRecord:
    """The file version a room last read or wrote, and the doc's heads for it."""

    path: str
    sha256: str | None
    heads: list[bytes] | None

    def to_json(self, notebook_id: str) -> dict[str, Any]:
        heads = None if self.heads is None else [head.hex() for head in self.heads]
        return {
            "notebook_id": notebook_id,
            "path": self.path,
            "sha256": self.sha256,
            "heads": heads,
        }


def doc_path(docs_dir: Path, notebook_id: str) -> Path:
    return docs_dir / doc_filename(notebook_id)


def record_path(docs_dir: Path, notebook_id: str) -> Path:
    return _record_beside(doc_path(docs_dir, notebook_id))


def _record_beside(stored: Path) -> Path:
    return stored.with_name(stored.name.removesuffix(".automerge") + RECORD_SUFFIX)


def read_record(docs_dir: Path, notebook_id: str) -> FileRecord | None:
    """The record, or None when there is none or it does not read (then the room
    treats the file as one it cannot tell apart from its own version)."""
    raw = _read_json(record_path(docs_dir, notebook_id))
    if raw is None or raw.get("notebook_id") != notebook_id:
        return None
    try:
        heads = raw["heads"]
        return FileRecord(
            path=str(raw["path"]),
            sha256=raw["sha256"] if isinstance(raw["sha256"], str) else None,
            heads=None if heads is None else [bytes.fromhex(head) for head in heads],
        )
    except (KeyError, TypeError, ValueError):
        return None


def write_record(docs_dir: Path, notebook_id: str, record: FileRecord) -> None:
    """Atomically; runs in a worker thread."""
    data = json.dumps(record.to_json(notebook_id)).encode()
    atomic_write(record_path(docs_dir, notebook_id), data)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        raw = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return raw if isinstance(raw, dict) else None


@dataclass(frozen=True, slots=True)
class StoredCopy:
    """One stored doc: whose it is, its .ipynb (if any), its size on disk."""

    notebook_id: str | None
    path: str | None
    file: Path
    bytes: int

    def to_json(self) -> dict[str, Any]:
        file_exists = None if self.path is None else Path(self.path).exists()
        return {
            "notebook_id": self.notebook_id,
            "path": self.path,
            "stored_file": str(self.file),
            "bytes": self.bytes,
            "file_exists": file_exists,
        }


def list_stored(docs_dir: Path) -> list[StoredCopy]:
    """Every stored copy, with the notebook it belongs to (None when it does not load)."""
    copies = []
    for stored in sorted(docs_dir.glob("*.automerge")):
        record = _read_json(_record_beside(stored))
        notebook_id = record.get("notebook_id") if record else None
        if not isinstance(notebook_id, str):
            notebook_id = _stored_notebook_id(stored)
        path = record.get("path") if record else None
        if path is None and notebook_id is not None and notebook_id.endswith(".ipynb"):
            path = notebook_id  # a file room's id is its absolute path
        size = _size(stored) + _size(_record_beside(stored))
        path = path if isinstance(path, str) else None
        copies.append(StoredCopy(notebook_id, path, stored, size))
    return copies


def _stored_notebook_id(stored: Path) -> str | None:
    try:
        return NotebookDoc.load(stored.read_bytes()).notebook_id
    except (OSError, NotebookDocError):
        return None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def forget(docs_dir: Path, notebook_id: str) -> int:
    """Delete a notebook's stored copy and record; the bytes freed (0: there was none)."""
    stored = doc_path(docs_dir, notebook_id)
    freed = 0
    for path in (stored, _record_beside(stored)):
        size = _size(path)
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        freed += size
        log.info("stored_copy_forgotten", notebook_id=notebook_id, file=str(path))
    return freed
