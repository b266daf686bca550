"""The doc on disk: atomic saves, and loading that quarantines a file it cannot read."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

import structlog

from .doc import NotebookDoc
from .errors import CorruptDocumentError, SchemaError

__all__ = ["atomic_write", "doc_filename", "load_or_create"]

log = structlog.get_logger(__name__)

SUFFIX = ".automerge"
QUARANTINE_SUFFIX = ".corrupt"


def doc_filename(notebook_id: str) -> str:
    """`<hex sha256(notebook_id)>.automerge`: any id becomes a safe, fixed-length name."""
    return hashlib.sha256(notebook_id.encode("utf-8")).hexdigest() + SUFFIX


TEMP_SUFFIX = ".tmp"


def is_temp_name(name: str) -> bool:
    """Whether a file name is one of `atomic_write`'s temp files (left by a crash)."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def atomic_write(
    path: str | os.PathLike[str],
    data: bytes,
    *,
    mode: int | None = None,
    owner: tuple[int, int] | None = None,
) -> None:
    """Replace `path` with `data` so a crash leaves either the old file or the new one.

    Temp file in the same directory, fsync, rename over, fsync the directory. On any
    failure the temp file is removed and the previous file is untouched. The file is
    0600 unless `mode` is given; `owner` (uid, gid) is applied as far as we may.
    """
    target = Path(path)
    fd, tmp_name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=TEMP_SUFFIX
    )
    try:
        if owner is not None and owner != (os.geteuid(), os.getegid()):
            with contextlib.suppress(PermissionError):  # only root gives files away
                os.fchown(fd, *owner)
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(target.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_or_create(
    path: str | os.PathLike[str], notebook_id: str
) -> tuple[NotebookDoc, str | None]:
    """Load the doc at `path`, or start an empty one; the str is a warning, if any.

    A file that does not load (corrupt bytes, broken schema, another notebook's id)
    is renamed to `<name>.corrupt` and an empty doc is returned, so the room can
    start from the .ipynb. A file from a newer schema raises UnsupportedSchemaVersion
    instead: it is not damaged, and must not be set aside by an older daemon.
    """
    source = Path(path)
    try:
        data = source.read_bytes()
    except FileNotFoundError:
        return NotebookDoc.new(notebook_id), None
    try:
        doc = NotebookDoc.load(data, notebook_id=notebook_id)
        if doc.notebook_id != notebook_id:
            raise SchemaError(f"file holds notebook {doc.notebook_id!r}, not {notebook_id!r}")
    except (CorruptDocumentError, SchemaError) as exc:
        quarantine = source.with_name(source.name + QUARANTINE_SUFFIX)
        os.replace(source, quarantine)
        warning = f"{source} did not load ({exc}); moved it to {quarantine} and started empty"
        log.warning(
            "quarantined notebook doc", path=str(source), moved_to=str(quarantine), error=str(exc)
        )
        return NotebookDoc.new(notebook_id), warning
    return doc, None
