"""Notebook trust, the way Jupyter does it: outputs from a file run no code in a page.

A notebook's outputs and widget state can carry HTML and JavaScript. Jupyter renders
them fully only when the user has vouched for them: the notebook's HMAC signature
(nbformat's `NotebookNotary`, a per-user secret) is in a local signature store, or the
outputs were produced by the user's own kernel in this session. runtimed keeps its own
secret and store in its data dir (`trust/notebook_secret`, `trust/nbsignatures.db`, both
0600; signed and stored as nbformat does, without importing it: signatures.py) and
applies the same rules per cell:

- a cell is trusted when it has no output that could run code (only streams, errors
  and rich outputs without data: nbformat's `_check_cell` rule), or its outputs are
  the ones this daemon's kernel wrote, or the ones a signature in the store vouches for;
- the room's widget state is trusted once a kernel started in the room (the saved
  widgets are dropped then), or when the store vouches for it;
- the room is trusted when every cell and the widget state are.

Signatures are stored for each trusted cell's outputs and for the widget state before
the room's doc is persisted, so a daemon restart trusts exactly what it trusted before;
a save writes an .ipynb that is signed as a whole when the room is trusted.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import tempfile
from base64 import encodebytes
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeAlias

import structlog

from notebook_doc import NotebookDoc

from . import signatures
from .blob_store import HASH_RE, BlobError, BlobStore

log = structlog.get_logger(__name__)

SECRET_NAME = "notebook_secret"
DB_NAME = "nbsignatures.db"
# nbformat's rule: only these output types can carry markup or script.
_RICH_OUTPUTS = frozenset({"execute_result", "display_data"})
_INERT_KEYS = frozenset({"output_type", "execution_count", "metadata"})


class TrustStoreError(Exception):
    """The signature store could not be read or written (disk full, read-only, corrupt)."""


class Notary:
    """nbformat's notary (see `signatures`) with runtimed's own secret and store.

    The store is opened for each batch and closed after it, so the daemon holds no file
    open in its data dir between saves.
    """

    def __init__(self, directory: Path) -> None:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._secret = _load_or_create_secret(directory / SECRET_NAME)
        self._db_file = directory / DB_NAME
        with self._open():  # made now (0600), and any unreadable one set aside
            pass

    @contextlib.contextmanager
    def _open(self) -> Iterator[sqlite3.Connection]:
        try:
            with signatures.opened(self._db_file) as db:
                yield db
        except (sqlite3.Error, OSError) as exc:
            log.warning("trust_store_failed", error=str(exc))
            raise TrustStoreError(f"the trust store {self._db_file} failed: {exc}") from exc

    def notebook_signed(self, nb: dict[str, Any]) -> bool:
        """True when the whole notebook's signature is in the store (`jupyter trust`)."""
        try:
            if not _nbformat_at_least_3(nb):
                return False
            digest = signatures.compute_signature(self._secret, nb)
            with self._open() as db:
                found = signatures.known(db, [digest])
                signatures.commit(db, seen=found)
        except (KeyError, TypeError, AttributeError, ValueError, TrustStoreError):
            return False  # not shaped like a notebook, or no store: nothing to trust
        return bool(found)

    def sign_notebook(self, nb: dict[str, Any]) -> None:
        if not _nbformat_at_least_3(nb):
            return
        digest = signatures.compute_signature(self._secret, nb)
        with self._open() as db:
            found = signatures.known(db, [digest])
            signatures.commit(db, seen=found, new={digest} - found)

    def signed(self, contents: list[dict[str, Any]]) -> list[bool]:
        """Which contents (dicts with a `metadata` key) were signed before; none when the
        store cannot be read. Looked up together and marked seen in one commit."""
        digests = [signatures.compute_signature(self._secret, content) for content in contents]
        try:
            with self._open() as db:
                found = signatures.known(db, digests)
                signatures.commit(db, seen=found)
        except TrustStoreError:
            return [False] * len(contents)
        return [digest in found for digest in digests]

    def sign(self, contents: list[dict[str, Any]]) -> None:
        """Store signatures for `contents`, in one commit; TrustStoreError if it failed."""
        digests = [signatures.compute_signature(self._secret, content) for content in contents]
        with self._open() as db:
            found = signatures.known(db, digests)
            signatures.commit(db, seen=found, new=set(digests) - found)


def _nbformat_at_least_3(nb: dict[str, Any]) -> bool:
    """nbformat signs and checks only notebooks of format 3 or later."""
    version = nb.get("nbformat")
    return isinstance(version, int) and version >= 3


def notebook_bytes_signed(notary: Notary, data: bytes) -> bool:
    """Whether an .ipynb file's bytes, as read, carry a stored signature."""
    try:
        nb = json.loads(data)
    except ValueError:
        return False
    return isinstance(nb, dict) and notary.notebook_signed(nb)


def output_is_inert(entry: str, blobs: BlobStore) -> bool:
    """True when a doc output entry cannot run code whoever made it (nbformat's rule);
    an entry that cannot be read counts as able to."""
    try:
        raw = blobs.get(entry) if HASH_RE.fullmatch(entry) else entry
        output = json.loads(raw)
    except (BlobError, ValueError):
        return False
    if not isinstance(output, dict):
        return False
    return output.get("output_type") not in _RICH_OUTPUTS or set(output) <= _INERT_KEYS


# Comms read per step of `RoomTrust.warm`.
WARM_SLICE = 100


class RoomTrust:
    """Which of one room's outputs and widgets are trusted; the room reports changes."""

    def __init__(
        self, notary: Notary, doc: NotebookDoc, blobs: BlobStore, *, signed: bool = False
    ) -> None:
        self.notary = notary
        self.doc = doc
        self.blobs = blobs
        self._cells: dict[str, tuple[str, ...]] = {}  # cell id -> outputs known trusted
        self._stored: set[tuple[str, ...]] = set()  # cell outputs known signed in the store
        self._comm_entries: dict[str, _CommEntry] = {}  # the comms as last signed
        self._warm: tuple[NotebookDoc, dict[str, _CommEntry]] | None = None  # see `warm`
        cells = [(cell_id, outputs) for cell_id, outputs in self._cell_outputs() if outputs]
        comms = self._comms_content()
        contents = [_cell_content(outputs) for _, outputs in cells]
        known = notary.signed([*contents, comms] if comms else contents) if not signed else []
        for index, (cell_id, outputs) in enumerate(cells):
            if signed or known[index]:
                self._cells[cell_id] = outputs
                if not signed:
                    self._stored.add(outputs)
        self.comms_trusted = signed or comms is None or known[-1]
        # Widget state known signed in the store, as JSON.
        self._comms_stored = _json(comms) if comms and self.comms_trusted and not signed else None
        self._inert: dict[str, bool] = {}
        self.state = self.report()

    def produced(self, cell_id: str, outputs: Iterable[str]) -> None:
        """Outputs this daemon's kernel wrote into a cell: trusted."""
        self._cells[cell_id] = tuple(outputs)

    def kernel_started(self) -> None:
        """A kernel starts with the saved widgets dropped: every comm now is its own."""
        self.comms_trusted = True

    def trust_all(self) -> bool:
        """The user vouches for the room as it is (`runtimed trust`); False when the
        signatures could not be stored (trusted until the daemon stops)."""
        for cell_id, outputs in self._cell_outputs():
            self._cells[cell_id] = outputs
        self.comms_trusted = True
        return self.sign()

    def untrusted_cells(self) -> list[str]:
        return [
            cell_id
            for cell_id, outputs in self._cell_outputs()
            if outputs and self._cells.get(cell_id) != outputs and not self._all_inert(outputs)
        ]

    def report(self) -> dict[str, Any]:
        """The `trust` broadcast's and `trust_info` result's fields."""
        untrusted = self.untrusted_cells()
        return {
            "trusted": not untrusted and self.comms_trusted,
            "untrusted_cells": untrusted,
            "comms_trusted": self.comms_trusted,
        }

    def refresh(self) -> dict[str, Any] | None:
        """The new report when it differs from the last one, else None."""
        state = self.report()
        if state == self.state:
            return None
        self.state = state
        return state

    def sign(self) -> bool:
        """Store signatures for what is trusted now, so a restart trusts it again.

        False when the store failed: what was not stored is untrusted after a restart
        (the safe side), and is tried again at the next save."""
        return self.signing()()

    def signing(self) -> Callable[[], bool]:
        """`sign` in two parts: this reads the doc (on the loop); the call it returns
        stores the signatures, a database commit that may wait on the disk, so a save
        runs it in its worker thread."""
        # Only what the doc holds now is kept: records of replaced outputs are dropped.
        self._cells = {
            cell_id: outputs
            for cell_id, outputs in self._cell_outputs()
            if outputs and self._cells.get(cell_id) == outputs
        }
        stored = set(self._cells.values())
        contents = [_cell_content(outputs) for outputs in stored - self._stored]
        comms = self._comms_content() if self.comms_trusted else None
        comms_json = None if comms is None else _json(comms)  # large: made once
        if comms is not None and comms_json != self._comms_stored:
            contents.append(comms)

        def store() -> bool:
            if contents:
                try:
                    self.notary.sign(contents)
                except TrustStoreError:
                    return False
            self._stored = stored
            if comms_json is not None:
                self._comms_stored = comms_json
            return True

        return store

    def sign_saved(self, nb: dict[str, Any]) -> bool:
        """A save signs the written notebook when everything in it is trusted."""
        if not self.report()["trusted"]:
            return False
        try:
            self.notary.sign_notebook(nb)
        except TrustStoreError:
            return False
        return True

    def _comms_content(self) -> dict[str, Any] | None:
        """What the comms' signature covers. Every save signs it: each comm is read and
        its state put in canonical JSON again only when its fingerprint moved (a
        thousand widgets cost tens of ms to read whole, on the event loop)."""
        previous = self._comm_entries
        if self._warm is not None and self._warm[0] is self.doc:
            previous, self._warm = self._warm[1], None
        entries = {}
        for comm_id, version in self.doc.comm_versions().items():
            kept = _comm_entry(self.doc, previous.get(comm_id), comm_id, version)
            if kept is not None:
                entries[comm_id] = kept
        self._comm_entries = entries
        if not entries:
            return None
        ordered = sorted(entries.values(), key=lambda kept: kept[1])
        return {"metadata": {}, "runtimed": "comms", "comms": [kept[2] for kept in ordered]}

    def warm(self, doc: NotebookDoc) -> Iterator[None]:
        """Read `doc`'s comms for their signature a slice per step: a compaction's fresh
        doc, before it becomes the room's, so the save right after the switch reads
        only the comms that moved meanwhile."""
        if not self.comms_trusted:
            return
        entries: dict[str, _CommEntry] = {}
        self._warm = (doc, entries)
        versions = list(doc.comm_versions().items())
        for start in range(0, len(versions), WARM_SLICE):
            for comm_id, version in versions[start : start + WARM_SLICE]:
                kept = _comm_entry(doc, None, comm_id, version)
                if kept is not None:
                    entries[comm_id] = kept
            yield

    def _cell_outputs(self) -> list[tuple[str, tuple[str, ...]]]:
        return [(cell_id, tuple(self.doc.get_outputs(cell_id))) for cell_id in self.doc.cell_ids()]

    def _all_inert(self, outputs: tuple[str, ...]) -> bool:
        for entry in outputs:
            if entry not in self._inert:
                if len(self._inert) > 4096:
                    self._inert.clear()
                self._inert[entry] = output_is_inert(entry, self.blobs)
            if not self._inert[entry]:
                return False
        return True


def _cell_content(outputs: tuple[str, ...]) -> dict[str, Any]:
    """What a cell's signature covers: its doc output entries (hashes name manifests)."""
    return {"metadata": {}, "runtimed": "cell-outputs", "outputs": list(outputs)}


# A comm as the signature covers it: (its comm_versions() fingerprint, sort key, entry).
_CommEntry: TypeAlias = tuple[Any, tuple[int, str], list[Any]]


def _comm_entry(
    doc: NotebookDoc, kept: _CommEntry | None, comm_id: str, version: Any
) -> _CommEntry | None:
    """`kept` if the comm did not move since, else the comm read again."""
    if kept is not None and kept[0] == version:
        return kept
    c = doc.get_comm(comm_id)
    if c is None:
        return None
    entry = [c.comm_id, c.target_name, c.model_module, c.model_name, _json(c.state), c.outputs]
    return (version, (c.seq, c.comm_id), entry)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _load_or_create_secret(path: Path) -> bytes:
    """The per-user signing key: made once (0600, atomically), then read."""
    with contextlib.suppress(FileNotFoundError):
        return _read_private(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # 0600
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(encodebytes(os.urandom(1024)))
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):  # another process made it first
            os.link(tmp, path)
    finally:
        os.unlink(tmp)
    return _read_private(path)


def _read_private(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        return f.read()
