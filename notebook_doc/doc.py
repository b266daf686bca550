"""`NotebookDoc`: the schema v3 notebook document, the one type the project writes it through.

Every public write is one Automerge transaction, and a write that would not change
the stored value adds no change (the heads stay put), so an idle daemon adds no
history. Reads are strict: a field of the wrong type raises SchemaError naming it.
This module holds the lifecycle (new, load, save, fork), sync, raw changes, notebook
metadata and the whole-document checks; cells are in `doc_cells.py`, comms in
`doc_comms.py`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import structlog

from ._automerge import (
    ROOT,
    Document,
    Message,
    ObjType,
    ScalarType,
    get,
    read_json,
    set_json_key,
    transaction,
    update_json_map,
)
from .cells import read_cell
from .comms import read_comm
from .doc_base import check_dict, check_id
from .doc_cells import DocCells
from .doc_comms import DocComms
from .errors import (
    CorruptDocumentError,
    InvalidArgument,
    NotebookDocError,
    SchemaError,
    SyncMessageError,
)
from .migrations import migrate, migrate_v1_to_v2, migrate_v2_to_v3
from .repair import repair
from .schema import (
    CELLS,
    COMMS,
    METADATA,
    NOTEBOOK_ID,
    SCHEMA_VERSION,
    SCHEMA_VERSION_KEY,
    read_schema_version,
    read_str,
    require_obj,
)
from .sync import SyncState, changes_message

__all__ = ["NotebookDoc"]

log = structlog.get_logger(__name__)


class NotebookDoc(DocCells, DocComms):
    """One notebook as an Automerge document (schema v3); build it with `new` or `load`.

    Cell and comm methods come from `DocCells` and `DocComms`; this class holds the
    lifecycle, sync, metadata and whole-document checks.
    """

    __slots__ = ()

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def new(cls, notebook_id: str, *, actor_id: bytes | None = None) -> NotebookDoc:
        """An empty v3 notebook: no cells, no metadata, no comms."""
        check_id("notebook_id", notebook_id)
        doc = Document()
        _set_actor(doc, actor_id)
        with transaction(doc) as tx:
            tx.put(ROOT, SCHEMA_VERSION_KEY, ScalarType.Uint, SCHEMA_VERSION)
            tx.put(ROOT, NOTEBOOK_ID, ScalarType.Str, notebook_id)
            for key in (CELLS, METADATA, COMMS):
                tx.put_object(ROOT, key, ObjType.Map)
        return cls(doc, notebook_id)

    @classmethod
    def empty(cls, *, actor_id: bytes | None = None) -> NotebookDoc:
        """A blank document that a joining peer fills by sync (or replaces by `load`).

        A peer must never build its own skeleton with `new` and then sync: its
        `cells` map would conflict with the room's, and one of them would hide the
        other. Reads fail with SchemaError until the first sync brings the notebook.
        """
        doc = Document()
        _set_actor(doc, actor_id)
        return cls(doc, None)

    @classmethod
    def load(
        cls,
        data: bytes,
        *,
        actor_id: bytes | None = None,
        notebook_id: str | None = None,
        check: bool = True,
    ) -> NotebookDoc:
        """Load saved bytes, migrating v1/v2 documents to v3.

        `notebook_id` is the room's id: a doc that has none (v1 docs could omit it) is
        given it, in one change. Raises CorruptDocumentError (not Automerge),
        UnsupportedSchemaVersion (newer than v3) or SchemaError (a field of the wrong
        type; the message lists them). `check=False` skips that last check, reading
        every field (a third of a 1,000-widget load): for bytes a checking writer made,
        such as the daemon's SNAPSHOT; a broken field still raises when it is read.
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidArgument(f"data must be bytes, not {type(data).__name__}")
        if not data:
            raise CorruptDocumentError("empty data is not an Automerge document")
        try:
            doc = Document.load(bytes(data))
        except Exception as exc:  # the binding raises bare Exception
            raise CorruptDocumentError(f"not an Automerge document: {exc}") from exc
        _set_actor(doc, actor_id)
        migrate(doc)
        if notebook_id is not None and get(doc, ROOT, NOTEBOOK_ID) is None:
            check_id("notebook_id", notebook_id)
            with transaction(doc) as tx:
                tx.put(ROOT, NOTEBOOK_ID, ScalarType.Str, notebook_id)
            log.info("gave the doc its room's notebook_id", notebook_id=notebook_id)
        notebook = cls(doc, read_str(doc, ROOT, NOTEBOOK_ID, "root"))
        problems = notebook.validate() if check else []
        if problems:
            raise SchemaError("document breaks schema v3: " + "; ".join(problems))
        return notebook

    def save(self) -> bytes:
        """The whole document, compacted (what goes on disk and in a SNAPSHOT frame)."""
        return self._doc.save()

    def save_changes(self) -> bytes:
        """The whole history as its changes joined: `load` takes it like `save()`'s
        bytes. Larger, but made in microseconds where `save()` compresses for tens of
        milliseconds with the GIL held: for a fresh doc with a short history."""
        return b"".join(change.bytes for change in self._doc.get_changes([]))

    def fork(
        self, *, actor_id: bytes | None = None, heads: list[bytes] | None = None
    ) -> NotebookDoc:
        """An independent copy with its own actor id; with `heads`, of the doc as it was
        then (InvalidArgument when this doc does not know those changes)."""
        if heads is None:
            doc = self._doc.fork()
        else:
            try:
                doc = self._doc.fork(list(heads))
            except Exception as exc:  # the binding raises bare Exception
                raise InvalidArgument(f"cannot fork at unknown heads: {exc}") from exc
        _set_actor(doc, actor_id)
        return NotebookDoc(doc, self._notebook_id)

    def merge(self, other: NotebookDoc) -> None:
        """Take in every change `other` has that this doc lacks."""
        if not isinstance(other, NotebookDoc):
            raise InvalidArgument(f"can only merge a NotebookDoc, not {type(other).__name__}")
        self._doc.merge(other._doc)

    def get_heads(self) -> list[bytes]:
        """Hashes of the latest changes; equal heads mean identical documents."""
        return self._doc.get_heads()

    @property
    def actor_id(self) -> bytes:
        return self._doc.get_actor()

    @property
    def notebook_id(self) -> str:
        if self._notebook_id is None:  # an `empty` doc learns its id from the first sync
            self._notebook_id = read_str(self._doc, ROOT, NOTEBOOK_ID, "root")
        return self._notebook_id

    @property
    def schema_version(self) -> int:
        return read_schema_version(self._doc)

    def migrate_v1_to_v2(self) -> bool:
        """Idempotent; False (and no change) unless the doc is v1."""
        return migrate_v1_to_v2(self._doc)

    def migrate_v2_to_v3(self) -> bool:
        """Idempotent; False (and no change) unless the doc is v2."""
        return migrate_v2_to_v3(self._doc)

    # ----------------------------------------------------------------------- sync

    def generate_sync_message(self, state: SyncState) -> bytes | None:
        """The next message for the peer `state` tracks; None when it has everything."""
        message = self._doc.generate_sync_message(_core_state(state))
        return None if message is None else message.encode()

    def receive_sync_message(self, state: SyncState, data: bytes) -> bool:
        """Apply a peer's message; True if the doc changed.

        Undecodable bytes raise SyncMessageError and leave the doc untouched. The
        peer may have written anything: call `validate()` after a change.
        """
        core_state = _core_state(state)
        if not isinstance(data, bytes | bytearray | memoryview):
            raise SyncMessageError(f"a sync message is bytes, not {type(data).__name__}")
        try:
            message = Message.decode(bytes(data))
        except Exception as exc:  # the binding raises bare Exception
            raise SyncMessageError(f"undecodable sync message: {exc}") from exc
        before = self._doc.get_heads()
        try:
            self._doc.receive_sync_message(core_state, message)
        except Exception as exc:
            raise SyncMessageError(f"sync message does not apply: {exc}") from exc
        return self._doc.get_heads() != before

    # ------------------------------------------------------------ raw changes

    def get_changes_since(self, heads: list[bytes]) -> list[bytes]:
        """Every change that is not an ancestor of one of `heads` (unknown hashes are
        ignored): what a peer that has `heads` may lack."""
        return [change.bytes for change in self._doc.get_changes(list(heads))]

    def apply_changes(self, changes: list[bytes]) -> bool:
        """Apply raw changes (from `get_changes_since` on a doc sharing this history);
        True if the doc changed. Changes it has already are ignored; bytes that are not
        changes raise SyncMessageError and leave the doc untouched."""
        return self.receive_sync_message(SyncState(), changes_message(changes))

    def has_change(self, change_hash: bytes) -> bool:
        """Whether a change with this hash is in the doc's history."""
        return (
            bool(self._doc.get_heads())
            and len(self._doc.get_changes([change_hash])) < self.change_count()
        )

    def history_size(self, since: list[bytes]) -> int:
        """Uncompressed bytes of the changes that are not ancestors of `since` (all of
        them for []): what that history holds in memory, about 2.4x this in the daemon."""
        return sum(len(change.raw_bytes) for change in self._doc.get_changes(list(since)))

    def change_count(self) -> int:
        """How many changes the history holds (walks the whole history)."""
        return len(self._doc.get_changes([]))

    # ------------------------------------------------------------------- metadata

    def get_metadata(self) -> dict[str, Any]:
        metadata = self._container(METADATA)
        if metadata is None:
            return {}
        return read_json(self._doc, (ObjType.Map, metadata), "root.metadata")

    def set_metadata(self, metadata: dict[str, Any]) -> bool:
        """Replace the notebook metadata, writing only the keys that differ."""
        check_dict("metadata", metadata)
        with transaction(self._doc) as tx:
            target = require_obj(tx, ROOT, METADATA, ObjType.Map, "root.metadata")
            return update_json_map(tx, target, metadata, where="metadata")

    def update_metadata(self, key: str, value: Any) -> bool:
        """Set one top-level metadata key (e.g. "kernelspec")."""
        check_id("metadata key", key)
        with transaction(self._doc) as tx:
            target = require_obj(tx, ROOT, METADATA, ObjType.Map, "root.metadata")
            return set_json_key(tx, target, key, value, where=f"metadata.{key}")

    # ------------------------------------------------------------- whole document

    def validate(self) -> list[str]:
        """Every schema problem, in words; empty when the doc is a sound v3 notebook.

        The daemon runs this after applying a peer's changes, to reject or repair them.
        """
        reader = self._doc
        problems: list[str] = []

        def check(what: Callable[[], object]) -> None:
            try:
                what()
            except NotebookDocError as exc:
                problems.append(str(exc))

        def check_version() -> None:
            version = read_schema_version(reader)
            if version != SCHEMA_VERSION:
                raise SchemaError(f"root.schema_version is {version}, not {SCHEMA_VERSION}")

        def check_notebook_id() -> None:
            notebook_id = read_str(reader, ROOT, NOTEBOOK_ID, "root")
            if self._notebook_id is None:
                self._notebook_id = notebook_id
            elif notebook_id != self._notebook_id:
                raise SchemaError(f"root.notebook_id is {notebook_id!r}, not {self._notebook_id!r}")

        check(check_version)
        check(check_notebook_id)
        check(self.get_metadata)
        for key, read_item in ((CELLS, read_cell), (COMMS, read_comm)):
            try:
                container = require_obj(reader, ROOT, key, ObjType.Map, f"root.{key}")
            except SchemaError as exc:
                problems.append(str(exc))
                continue
            for item_key in reader.keys(container):
                check(lambda c=container, k=item_key, r=read_item: r(reader, c, k))
        return problems

    def repair(self, *, restore_from: list[bytes] | None = None) -> list[str]:
        """Put a doc a peer broke back into v3 shape (one change); returns what was fixed.

        Broken comms are removed (rewrite them from CommState); broken cell fields get
        neutral values; non-JSON metadata values are dropped. `restore_from` are heads
        of a sound earlier state (before the peer's change): a `cells` or `metadata`
        map the peer deleted or replaced is rebuilt from it rather than left empty.
        """
        previous = None if restore_from is None else self._doc.fork(restore_from)
        return repair(self._doc, self._notebook_id, previous)

    def to_json(self) -> dict[str, Any]:
        """A plain JSON view (for `cat --json` and for comparing docs in tests).

        A blank (`empty`, not yet synced) doc has None for its id and version.
        """
        blank = self._is_blank()
        return {
            "notebook_id": None if blank else self.notebook_id,
            "schema_version": None if blank else self.schema_version,
            "metadata": self.get_metadata(),
            "cells": [dataclasses.asdict(cell) for cell in self.get_cells()],
            "comms": [dataclasses.asdict(comm) for comm in self.get_comms()],
        }

    def __repr__(self) -> str:
        return f"<NotebookDoc heads={[head.hex()[:8] for head in self.get_heads()]}>"


# ----------------------------------------------------------------- module helpers


def _set_actor(doc: Document, actor_id: bytes | None) -> None:
    if actor_id is None:
        return
    if not isinstance(actor_id, bytes) or not actor_id:
        raise InvalidArgument(f"actor_id must be non-empty bytes, not {actor_id!r}")
    doc.set_actor(actor_id)


def _core_state(state: SyncState) -> Any:
    if not isinstance(state, SyncState):
        raise InvalidArgument(f"expected a notebook_doc.SyncState, not {type(state).__name__}")
    return state._state
