"""An .ipynb changed behind the room's back comes into the doc as an ordinary change.

The room remembers the doc's heads when it last read or wrote the file (the *base*).
The disk version is applied to a fork of the doc at that base as the smallest edit
that turns one into the other (cells added, removed, moved; sources as minimal text
edits; outputs, execution counts and metadata), and the fork is merged back. So edits
made in the room since the base and the edits made on disk merge like any two peers'
changes, and every peer sees the result. Widget state is the kernel's, not the file's:
it is left to the room.

When there is no usable base (a stored copy from before the room recorded one, or
history it no longer holds), the two cannot be told apart safely: the caller keeps
the room's version and puts the disk version beside the file as a copy.
"""

from __future__ import annotations

import dataclasses
import json
from bisect import bisect_left
from dataclasses import dataclass
from pathlib import Path

from notebook_doc import CellSnapshot, InvalidArgument, NewCell, NotebookDoc, from_ipynb
from notebook_doc.ipynb import export_cell_id

from .blob_store import BlobStore
from .outputs import OutputError, decode_output, encode_output


class NoBase(Exception):
    """The room cannot tell what changed on disk from what changed in the room."""


@dataclass(frozen=True, slots=True)
class Merged:
    """What a disk version did to the doc: the doc's heads for the disk version (the
    next base), and whether the live doc changed."""

    disk_heads: list[bytes]
    changed: bool


def fork_at(doc: NotebookDoc, base: list[bytes] | None) -> NotebookDoc:
    """A private copy of `doc` as it was at `base`, to apply the disk version to.

    Raises NoBase when there is no base, or the doc does not know it.
    """
    if base is None:
        raise NoBase("no record of the version last read or written")
    try:
        return doc.fork(heads=base)
    except InvalidArgument as exc:
        raise NoBase(str(exc)) from exc


def apply_disk_version(branch: NotebookDoc, data: bytes, blobs: BlobStore) -> bool:
    """Edit `branch` into the .ipynb `data`; True if that changed it.

    Touches only `branch` and the blob store, so it may run in a worker thread. Raises
    IpynbError (or another NotebookDocError) when `data` is not a notebook it can take.
    """
    disk = from_ipynb(data, notebook_id=branch.notebook_id, store_blob=blobs.put)
    return apply_notebook(branch, disk, blobs, by_position=_has_no_ids(data))


def merge_branch(doc: NotebookDoc, branch: NotebookDoc) -> Merged:
    """Take the edited branch into the live doc, as one more peer's changes."""
    before = doc.get_heads()
    doc.merge(branch)
    return Merged(branch.get_heads(), doc.get_heads() != before)


def apply_notebook(
    doc: NotebookDoc, disk: NotebookDoc, blobs: BlobStore, *, by_position: bool = False
) -> bool:
    """Edit `doc` until its cells and metadata equal `disk`'s; True if anything changed.

    `by_position`: the file has no cell ids (nbformat before 4.5), so its cells are
    matched with the doc's by their place, not by id.
    """
    changed = doc.set_metadata(disk.get_metadata())
    # The file names a cell by its exported id (the doc's id, or a stand-in for an id
    # nbformat would refuse).
    mine = doc.get_cells()
    current = {export_cell_id(cell.id): cell for cell in mine}
    wanted = disk.get_cells()
    if by_position:
        wanted = [
            dataclasses.replace(cell, id=export_cell_id(mine[index].id))
            if index < len(mine)
            else cell
            for index, cell in enumerate(wanted)
        ]
    keep = {cell.id for cell in wanted}
    for exported, cell in current.items():
        if exported not in keep:
            doc.delete_cell(cell.id)
            changed = True
    new: list[NewCell] = []
    for cell in wanted:
        mine = current.get(cell.id)
        if mine is not None and mine.cell_type == cell.cell_type:
            changed = _update_cell(doc, mine, cell, blobs) or changed
            continue
        if mine is not None:  # the type changed: the schema has no write for that
            doc.delete_cell(mine.id)
        new.append(
            NewCell(
                cell.cell_type,
                cell.source,
                mine.id if mine is not None else cell.id,
                cell.metadata,
                cell.execution_count,
                [_encode(output, blobs) for output in cell.outputs],
            )
        )
    if new:
        doc.add_cells(new)
        changed = True
    order = [current[cell.id].id if cell.id in current else cell.id for cell in wanted]
    return _reorder(doc, order) or changed


def _update_cell(
    doc: NotebookDoc, mine: CellSnapshot, disk: CellSnapshot, blobs: BlobStore
) -> bool:
    changed = doc.set_source(mine.id, disk.source)
    changed = doc.set_cell_metadata(mine.id, disk.metadata) or changed
    if mine.execution_count != disk.execution_count:
        changed = doc.set_execution_count(mine.id, disk.execution_count) or changed
    same = _same_outputs(mine.outputs, disk.outputs, blobs)
    outputs = [
        kept if kept is not None else _encode(output, blobs)
        for kept, output in zip(same, disk.outputs, strict=True)
    ]
    return doc.set_outputs(mine.id, outputs) or changed


def _same_outputs(mine: list[str], disk: list[str], blobs: BlobStore) -> list[str | None]:
    """For each disk output, the doc's entry at the same place when it stands for the
    same output (kept as is: a manifest stays a manifest), else None."""
    kept: list[str | None] = []
    for index, output in enumerate(disk):
        entry = mine[index] if index < len(mine) else None
        if entry is not None and (entry == output or _decoded(entry, blobs) == json.loads(output)):
            kept.append(entry)
        else:
            kept.append(None)
    return kept


def _decoded(entry: str, blobs: BlobStore) -> dict | None:
    try:
        return decode_output(entry, blobs)
    except (OutputError, OSError, ValueError):
        return None


def _encode(output: str, blobs: BlobStore) -> str:
    """A disk output as the room stores one: inline when small, else a manifest."""
    return encode_output(json.loads(output), blobs)


def _reorder(doc: NotebookDoc, order: list[str]) -> bool:
    """Move the fewest cells to make the doc's order `order`: the cells on a longest
    run already in order stay, every other one moves after its predecessor."""
    rank = {cell_id: index for index, cell_id in enumerate(order)}
    ranks = [rank[cell_id] for cell_id in doc.cell_ids()]
    staying = _longest_increasing(ranks)
    moved = False
    for index, cell_id in enumerate(order):
        if index in staying:
            continue
        if index == 0:
            doc.move_cell(cell_id, index=0)
        else:
            doc.move_cell(cell_id, after=order[index - 1])
        moved = True
    return moved


def _longest_increasing(values: list[int]) -> set[int]:
    """The values on one longest strictly increasing subsequence (patience sorting)."""
    tails: list[int] = []
    tail_at: list[int] = []
    previous: list[int | None] = []
    for position, value in enumerate(values):
        slot = bisect_left(tails, value)
        previous.append(tail_at[slot - 1] if slot else None)
        if slot == len(tails):
            tails.append(value)
            tail_at.append(position)
        else:
            tails[slot] = value
            tail_at[slot] = position
    result: set[int] = set()
    at: int | None = tail_at[-1] if tail_at else None
    while at is not None:
        result.add(values[at])
        at = previous[at]
    return result


def _has_no_ids(data: bytes) -> bool:
    try:
        cells = json.loads(data).get("cells", [])
    except (ValueError, AttributeError):
        return False
    return any(isinstance(cell, dict) and "id" not in cell for cell in cells)


def conflict_copy_path(path: Path, stamp: str) -> Path:
    """Where the disk version goes when it cannot be merged: beside the file."""
    return path.with_name(f"{path.stem}.disk-{stamp}{path.suffix}")
