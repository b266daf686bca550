"""The user's .ipynb on disk: what we write into it, and how, without losing theirs.

`render` is the one place a room's doc becomes an .ipynb, `encode` its bytes and
`write` the one place they reach the file: whoever needs to change what a saved
notebook holds hooks there (the room signs each notebook it wrote: `SaverHooks.saved`).
`write` goes through a symlink to its target, keeps the file's mode and owner (a new
file gets the umask's mode), replaces it atomically, and refuses when the file is not
the version the caller last saw: an edit made on disk is never overwritten.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from notebook_doc import NotebookDoc, atomic_write, to_ipynb
from notebook_doc.ipynb import WIDGET_STATE_MIME

from .blob_store import BlobStore
from .comm_mirror import resolve_blob
from .outputs import decode_output


class FileChanged(Exception):
    """The file is no longer the version the save was based on."""

    def __init__(self, current: str | None) -> None:
        super().__init__("the file changed on disk")
        self.current = current


@dataclass(frozen=True, slots=True)
class FileVersion:
    """One version of the file: its bytes and their sha256 (hex)."""

    data: bytes
    sha256: str


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read(path: Path) -> FileVersion | None:
    """The file's current bytes, or None when there is no file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return FileVersion(data, content_hash(data))


def render(doc: NotebookDoc, blobs: BlobStore, previous: bytes | None = None) -> dict[str, Any]:
    """The .ipynb of `doc`, outputs and widget state (`metadata.widgets`) resolved from
    the blob store; an unreadable blob becomes a placeholder, not a failed save.

    A doc with no live widgets (its kernel stopped, and took them along) keeps the
    widget state the `previous` file version saved: the outputs still show them.
    """
    nb = to_ipynb(
        doc,
        resolve_output=lambda h: decode_output(h, blobs, on_missing="placeholder"),
        resolve_blob=lambda h: resolve_blob(blobs, h),
    )
    saved = _widget_state(previous) if previous is not None else None
    if saved is not None and WIDGET_STATE_MIME not in nb["metadata"].get("widgets", {}):
        nb["metadata"].setdefault("widgets", {})[WIDGET_STATE_MIME] = saved
    return nb


def encode(nb: dict[str, Any]) -> bytes:
    """The bytes of a notebook as Jupyter writes them (indent 1, UTF-8, final newline)."""
    return (json.dumps(nb, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def write(path: Path, data: bytes, *, expected: str | None) -> str:
    """Replace the file (its symlink's target) with `data`; returns the new hash.

    `expected` is the hash the caller last read or wrote (None: the file must not
    exist). Raises FileChanged, leaving the file alone, when that no longer holds, and
    OSError when the disk refuses. Runs in a worker thread (it fsyncs).
    """
    target = Path(os.path.realpath(path))
    current = read(target)
    if (current.sha256 if current else None) != expected:
        raise FileChanged(current.sha256 if current else None)
    if current is not None:
        info = target.stat()
        mode, owner = info.st_mode & 0o7777, (info.st_uid, info.st_gid)
    else:
        mode, owner = 0o666 & ~_umask(), None
    atomic_write(target, data, mode=mode, owner=owner)
    return content_hash(data)


def _widget_state(data: bytes) -> dict | None:
    try:
        widgets = json.loads(data).get("metadata", {}).get("widgets", {})
        state = widgets.get(WIDGET_STATE_MIME)
    except (ValueError, AttributeError):
        return None
    return state if isinstance(state, dict) else None


def _umask() -> int:
    """The process umask, read without changing it (os.umask would, for every thread)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022
