"""Compaction as pure data: a notebook's content, a fresh doc built from it, and the
carrying of a change's effect from one doc to another that shares no history with it.

Automerge cannot drop history. A fresh doc with the same content can, but its history
is unrelated to the old one, so a change made against the old doc cannot be merged into
it: its *effect* (what it changed in the content) is written into the fresh doc instead.
`Content` is that content as plain values; `carry` writes the difference between two
contents into a target doc, placing text splices by their surrounding text when the
target's source moved on meanwhile.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .cells import CellSnapshot
from .comms import PutComm, RawComm, RemoveComm, SetCommOutputs
from .doc import NotebookDoc

__all__ = [
    "Content",
    "build_fresh",
    "carry",
    "fresh_steps",
    "read_content",
    "read_content_since",
    "rebase_text",
]


@dataclass(frozen=True, slots=True)
class Content:
    """Everything schema v3 holds, detached from any history."""

    notebook_id: str
    metadata: dict[str, Any]
    cells: dict[str, CellSnapshot]
    comms: dict[str, RawComm]


def read_content(doc: NotebookDoc, *, comms: bool = True) -> Content:
    """The doc's content now (SchemaError if the doc is broken); without the comms when
    only what a client changes matters (cheaper: comms are most of a widget notebook)."""
    raw_comms = {comm.comm_id: comm for comm in doc.get_raw_comms()} if comms else {}
    return Content(
        notebook_id=doc.notebook_id,
        metadata=doc.get_metadata(),
        cells={cell.id: cell for cell in doc.get_cells()},
        comms=raw_comms,
    )


def read_content_since(
    doc: NotebookDoc, before: Content, versions: dict[str, Any]
) -> tuple[Content, dict[str, Any]]:
    """The doc's content now, reading again only the comms whose `comm_versions()`
    fingerprint differs from `versions` (taken with `before`): cheap after a short
    while. With the fingerprints it read, for a later call against this content."""
    comms = {}
    now = doc.comm_versions()
    for comm_id, version in now.items():
        kept = before.comms.get(comm_id)
        if kept is None or versions.get(comm_id) != version:
            kept = doc.get_raw_comm(comm_id)
        if kept is not None:
            comms[comm_id] = kept
    content = Content(
        notebook_id=doc.notebook_id,
        metadata=doc.get_metadata(),
        cells={cell.id: cell for cell in doc.get_cells()},
        comms=comms,
    )
    return content, now


# One step of `fresh_steps`: this many cells (one op per source character) or comms.
CELLS_PER_STEP = 2
COMMS_PER_STEP = 100


def build_fresh(content: Content, *, actor_id: bytes | None = None) -> NotebookDoc:
    """A new doc holding exactly `content`, with no other history."""
    doc, steps = fresh_steps(content, actor_id=actor_id)
    for _ in steps:
        pass
    return doc


def fresh_steps(
    content: Content, *, actor_id: bytes | None = None
) -> tuple[NotebookDoc, Iterator[None]]:
    """A new doc and the steps that fill it with exactly `content`: a few cells or a
    slice of comms each, so a caller can let others run between steps (each step is
    a few short calls; the whole build is hundreds of milliseconds on a big notebook).
    It touches no doc but the one it creates."""
    doc = NotebookDoc.new(content.notebook_id, actor_id=actor_id)
    doc.set_metadata(content.metadata)
    return doc, _fill(doc, content)


def _fill(doc: NotebookDoc, content: Content) -> Iterator[None]:
    cells = list(content.cells.values())
    for start in range(0, len(cells), CELLS_PER_STEP):
        for cell in cells[start : start + CELLS_PER_STEP]:
            doc.restore_cell(cell)
        yield
    comms = list(content.comms.values())
    for start in range(0, len(comms), COMMS_PER_STEP):
        doc.apply_comm_writes(
            write for comm in comms[start : start + COMMS_PER_STEP] for write in _comm_writes(comm)
        )
        yield


def carry(target: NotebookDoc, before: Content, after: Content, *, comms: bool = False) -> bool:
    """Write into `target` what changed from `before` to `after`; True if it changed.

    Cells added, deleted, moved, retyped; sources by rebased splices; metadata key by
    key (keys nobody changed between before and after keep the target's value);
    outputs and execution counts. Comms only with `comms=True` (the daemon's own
    writes; a client's change to a comm is not carried).
    """
    changed = False
    target_cells = set(target.cell_ids())
    for cell_id, cell in after.cells.items():
        old = before.cells.get(cell_id)
        if old is None:
            if cell_id not in target_cells:
                target.restore_cell(cell)
                changed = True
        elif old != cell and cell_id in target_cells:  # an unchanged cell costs no read
            changed = _carry_cell(target, old, cell) or changed
    for cell_id in before.cells.keys() - after.cells.keys():
        if cell_id in target_cells:
            target.delete_cell(cell_id)
            changed = True
    merged = _carry_keys(target.get_metadata(), before.metadata, after.metadata)
    if merged is not None:
        changed = target.set_metadata(merged) or changed
    if comms:
        changed = _carry_comms(target, before, after) or changed
    return changed


def _carry_cell(target: NotebookDoc, old: CellSnapshot, new: CellSnapshot) -> bool:
    changed = False
    current = target.get_cell(new.id)
    assert current is not None
    if new.position != old.position:
        changed = target.set_position(new.id, new.position) or changed
    if new.cell_type != old.cell_type:
        changed = target.set_cell_type(new.id, new.cell_type) or changed
    if new.source != old.source:
        merged = rebase_text(old.source, new.source, current.source)
        changed = target.set_source(new.id, merged) or changed
    if new.execution_count != old.execution_count:
        changed = target.set_execution_count(new.id, new.execution_count) or changed
    if new.outputs != old.outputs:
        changed = target.set_outputs(new.id, list(new.outputs)) or changed
    metadata = _carry_keys(current.metadata, old.metadata, new.metadata)
    if metadata is not None:
        changed = target.set_cell_metadata(new.id, metadata) or changed
    return changed


def _carry_keys(
    current: dict[str, Any], before: dict[str, Any], after: dict[str, Any]
) -> dict[str, Any] | None:
    """`current` with the top-level keys that changed from `before` to `after`; None if none."""
    if before == after:
        return None
    merged = dict(current)
    for key in before.keys() - after.keys():
        merged.pop(key, None)
    for key, value in after.items():
        if key not in before or before[key] != value:
            merged[key] = value
    return merged


def _carry_comms(target: NotebookDoc, before: Content, after: Content) -> bool:
    writes: list[Any] = []
    for comm_id, comm in after.comms.items():
        if before.comms.get(comm_id) != comm:
            writes.extend(_comm_writes(comm))
    writes.extend(RemoveComm(comm_id) for comm_id in before.comms.keys() - after.comms.keys())
    return bool(writes) and target.apply_comm_writes(writes)


def _comm_writes(comm: RawComm) -> list[Any]:
    put = PutComm(
        comm.comm_id,
        comm.target_name,
        comm.model_module,
        comm.model_name,
        comm.state_json,
        comm.seq,
    )
    return [put, SetCommOutputs(comm.comm_id, comm.outputs)] if comm.outputs else [put]


def rebase_text(base: str, edited: str, target: str) -> str:
    """Apply the edit `base` -> `edited` to `target`, a version of `base` edited elsewhere.

    Each splice is placed by the characters `base` and `target` still share; what the
    other side inserted stays, what it deleted stays deleted. With `target == base` the
    result is `edited`.
    """
    if target == base:
        return edited
    if edited == base:
        return target
    where = _position_map(base, target)  # base index -> target index, or -1 if deleted
    deleted = [False] * len(target)
    inserts: dict[int, list[str]] = {}
    for tag, i1, i2, j1, j2 in _opcodes(base, edited):
        if tag == "equal":
            continue
        for i in range(i1, i2):
            if where[i] >= 0:
                deleted[where[i]] = True
        if j2 > j1:
            inserts.setdefault(_anchor(where, i1), []).append(edited[j1:j2])
    out: list[str] = []
    for index, char in enumerate(target):
        out.extend(inserts.get(index, ()))
        if not deleted[index]:
            out.append(char)
    out.extend(inserts.get(len(target), ()))
    return "".join(out)


def _opcodes(a: str, b: str) -> list[tuple[str, int, int, int, int]]:
    return difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()


def _position_map(base: str, target: str) -> list[int]:
    where = [-1] * len(base)
    for tag, i1, i2, j1, _j2 in _opcodes(base, target):
        if tag == "equal":
            for offset in range(i2 - i1):
                where[i1 + offset] = j1 + offset
    return where


def _anchor(where: list[int], index: int) -> int:
    """Where in the target an insert before base[index] goes: before that character if
    the target still has it, else right after the nearest earlier one it has."""
    if index < len(where) and where[index] >= 0:
        return where[index]
    for earlier in range(min(index, len(where)) - 1, -1, -1):
        if where[earlier] >= 0:
            return where[earlier] + 1
    return 0
