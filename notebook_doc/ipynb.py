"""nbformat 4 import and export.

Mapping to the schema: each output is stored as its compact JSON string; a markdown or
raw cell's `attachments` live in its metadata under "attachments" (the schema has no
attachments field); the widget state in
`metadata.widgets["application/vnd.jupyter.widget-state+json"]` becomes the `comms`
map (seq in file order) and is not kept twice in the metadata. Export reverses all of
it, resolving blob hashes through callbacks because the blob store is not ours.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable
from typing import Any, Final

import structlog

from .cells import CellSnapshot, NewCell, unique_ids
from .comms import CommSnapshot, PutComm
from .doc import NotebookDoc
from .errors import IpynbError
from .ipynb_fixes import CELL_ID, CURRENT_MINOR, fix_notebook
from .schema import BLOB_HASH

__all__ = ["from_ipynb", "to_ipynb"]

log = structlog.get_logger(__name__)

WIDGET_STATE_MIME: Final = "application/vnd.jupyter.widget-state+json"
WIDGET_TARGET: Final = "jupyter.widget"
ATTACHMENTS: Final = "attachments"
_NBFORMAT_MINOR: Final = CURRENT_MINOR

OutputResolver = Callable[[str], dict[str, Any]]
BlobResolver = Callable[[str], Any]
BlobStore = Callable[[bytes], str]


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# ---------------------------------------------------------------------- import


def from_ipynb(
    nb: dict[str, Any] | str | bytes,
    *,
    notebook_id: str,
    actor_id: bytes | None = None,
    store_blob: BlobStore | None = None,
) -> NotebookDoc:
    """Build a v3 doc from an nbformat 4 notebook (a dict, or its JSON text or bytes).

    Widget binary buffers are put in the blob store through `store_blob` (replaced by
    `{"$blob": hash}` in the state); without it they are dropped, with a warning.
    """
    notebook = _parse(nb)
    metadata = notebook.get("metadata", {})
    comms = _widget_comms(metadata, store_blob)
    doc = NotebookDoc.new(notebook_id, actor_id=actor_id)
    doc.set_metadata(metadata)
    doc.add_cells(_new_cell(cell) for cell in notebook["cells"])
    doc.apply_comm_writes(comms)
    return doc


def _parse(nb: dict[str, Any] | str | bytes) -> dict[str, Any]:
    """A private, validated, JSON-only copy of `nb`."""
    try:
        if isinstance(nb, bytes):
            nb = nb.decode("utf-8")
        notebook = json.loads(nb) if isinstance(nb, str) else json.loads(json.dumps(nb))
    except (UnicodeDecodeError, TypeError, ValueError) as exc:
        raise IpynbError(f"not a JSON notebook: {exc}") from exc
    if not isinstance(notebook, dict):
        raise IpynbError(f"a notebook is a JSON object, not {type(notebook).__name__}")
    major = notebook.get("nbformat")
    if major != 4:
        raise IpynbError(f"nbformat {major!r} is not supported; only nbformat 4 notebooks are")
    cells = notebook.get("cells")
    # nbformat's own validator crashes (KeyError, TypeError) on these shapes.
    if not isinstance(cells, list) or not all(isinstance(cell, dict) for cell in cells):
        raise IpynbError("invalid nbformat 4 notebook: 'cells' must be a list of objects")
    fixes = fix_notebook(notebook)
    if not isinstance(notebook["metadata"], dict):
        raise IpynbError("invalid nbformat 4 notebook: 'metadata' must be an object")
    if fixes:
        log.warning("opened a notebook nbformat would warn about", fixes=fixes)
    if notebook["nbformat_minor"] >= _NBFORMAT_MINOR:
        _repair_ids(cells)
    _validate(notebook, "invalid nbformat 4 notebook")
    return notebook


def _repair_ids(cells: list[dict[str, Any]]) -> None:
    """Fill missing and repeated ids (nbformat would do it, with a warning, in place)."""
    for cell, cell_id in zip(cells, unique_ids([cell.get("id") for cell in cells]), strict=True):
        cell["id"] = cell_id


def _new_cell(cell: dict[str, Any]) -> NewCell:
    metadata = dict(cell.get("metadata", {}))
    if ATTACHMENTS in cell:
        metadata[ATTACHMENTS] = cell[ATTACHMENTS]
    source = cell.get("source", "")
    return NewCell(
        cell_type=cell["cell_type"],
        source="".join(source) if isinstance(source, list) else source,
        cell_id=cell.get("id"),
        metadata=metadata,
        execution_count=cell.get("execution_count"),
        outputs=[_compact(output) for output in cell.get("outputs", [])],
    )


def _widget_comms(metadata: dict[str, Any], store_blob: BlobStore | None) -> list[PutComm]:
    """Take the widget state out of `metadata` (in place) as comm writes, in file order."""
    widgets = metadata.get("widgets")
    if not isinstance(widgets, dict) or WIDGET_STATE_MIME not in widgets:
        return []
    bundle = widgets.pop(WIDGET_STATE_MIME)
    if not widgets:
        del metadata["widgets"]
    models = bundle.get("state") if isinstance(bundle, dict) else None
    if not isinstance(models, dict):
        raise IpynbError(f"metadata.widgets[{WIDGET_STATE_MIME!r}] has no 'state' object")
    return [
        _widget_comm(model_id, model, seq, store_blob)
        for seq, (model_id, model) in enumerate(models.items())
    ]


def _widget_comm(model_id: str, model: object, seq: int, store_blob: BlobStore | None) -> PutComm:
    where = f"widget state model {model_id!r}"
    if not isinstance(model, dict) or not isinstance(model.get("state"), dict):
        raise IpynbError(f"{where} is not an object with a 'state' object")
    names = {key: model.get(key, "") for key in ("model_name", "model_module")}
    version = model.get("model_module_version", "")
    if not all(isinstance(value, str) for value in (*names.values(), version)):
        raise IpynbError(f"{where}: model_name, model_module and version must be strings")
    state = dict(model["state"])
    for key, value in (
        ("_model_name", names["model_name"]),
        ("_model_module", names["model_module"]),
        ("_model_module_version", version),
    ):
        if value:  # the export reads these back from the state
            state.setdefault(key, value)
    for buffer in model.get("buffers", []):
        _import_buffer(state, buffer, where, store_blob)
    return PutComm(
        comm_id=model_id,
        target_name=WIDGET_TARGET,
        model_module=names["model_module"],
        model_name=names["model_name"],
        state_json=_compact(state),
        seq=seq,
    )


def _import_buffer(
    state: dict[str, Any], buffer: object, where: str, store_blob: BlobStore | None
) -> None:
    """Store one binary buffer and leave `{"$blob": hash}` at its path in `state`."""
    if not isinstance(buffer, dict) or not isinstance(buffer.get("path"), list):
        raise IpynbError(f"{where}: a buffer is not an object with a 'path' list")
    path = buffer["path"]
    if store_blob is None:
        log.warning("dropped widget buffer: no blob store", model=where, path=path)
        return
    try:
        if buffer.get("encoding") == "hex":
            data = bytes.fromhex(buffer["data"])
        else:
            data = base64.b64decode(buffer["data"], validate=True)
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise IpynbError(f"{where}: buffer at {path} does not decode: {exc}") from exc
    parent = state
    try:
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = {"$blob": store_blob(data)}
    except (KeyError, IndexError, TypeError) as exc:
        raise IpynbError(f"{where}: buffer path {path} is not in the state") from exc


# ---------------------------------------------------------------------- export


def to_ipynb(
    doc: NotebookDoc,
    *,
    resolve_output: OutputResolver | None = None,
    resolve_blob: BlobResolver | None = None,
) -> dict[str, Any]:
    """A valid nbformat 4.5 notebook of `doc`; IpynbError when it cannot be built.

    Outputs stored as blob hashes are fetched with `resolve_output` (required when
    there are any). `{"$blob": hash}` values in widget state are fetched with
    `resolve_blob` when given; a `bytes` value becomes a base64 widget buffer.
    """
    metadata = doc.get_metadata()
    widgets = [comm for comm in doc.get_comms() if comm.target_name == WIDGET_TARGET]
    if widgets:
        metadata.setdefault("widgets", {})[WIDGET_STATE_MIME] = {
            "version_major": 2,
            "version_minor": 0,
            "state": {comm.comm_id: _widget_model(comm, resolve_blob) for comm in widgets},
        }
    notebook = {
        "nbformat": 4,
        "nbformat_minor": _NBFORMAT_MINOR,
        "metadata": metadata,
        "cells": [_export_cell(cell, resolve_output) for cell in doc.get_cells()],
    }
    _validate(notebook, "the document does not make a valid notebook")
    return notebook


def _validate(notebook: dict[str, Any], what: str) -> None:
    # nbformat (and its jsonschema) takes most of a second to import: only when needed,
    # so the CLI and every client start fast.
    import nbformat

    try:
        nbformat.validate(notebook)
    except nbformat.ValidationError as exc:
        raise IpynbError(f"{what}: {exc.message}") from exc


def export_cell_id(cell_id: str) -> str:
    """The cell id, or a stable stand-in when it breaks nbformat's id pattern."""
    if CELL_ID.fullmatch(cell_id):
        return cell_id
    return hashlib.sha256(cell_id.encode("utf-8")).hexdigest()[:32]


def _export_cell(cell: CellSnapshot, resolve_output: OutputResolver | None) -> dict[str, Any]:
    exported: dict[str, Any] = {
        "id": export_cell_id(cell.id),
        "cell_type": cell.cell_type,
        "metadata": dict(cell.metadata),
        "source": cell.source,
    }
    if cell.cell_type == "code":
        exported["execution_count"] = cell.execution_count
        exported["outputs"] = [_export_output(output, resolve_output) for output in cell.outputs]
    elif ATTACHMENTS in exported["metadata"]:
        exported[ATTACHMENTS] = exported["metadata"].pop(ATTACHMENTS)
    return exported


def _export_output(output: str, resolve_output: OutputResolver | None) -> dict[str, Any]:
    if BLOB_HASH.fullmatch(output):
        if resolve_output is None:
            raise IpynbError(f"output {output} is in the blob store and no resolve_output given")
        return resolve_output(output)
    return json.loads(output)


def _widget_model(comm: CommSnapshot, resolve_blob: BlobResolver | None) -> dict[str, Any]:
    buffers: list[dict[str, Any]] = []
    state = comm.state
    if resolve_blob is not None:
        state = _resolve_blobs(state, [], resolve_blob, buffers)
    model: dict[str, Any] = {
        "model_name": comm.model_name,
        "model_module": comm.model_module,
        "model_module_version": str(comm.state.get("_model_module_version", "")),
        "state": state,
    }
    if buffers:
        model["buffers"] = buffers
    return model


def _resolve_blobs(
    value: Any, path: list[str | int], resolve_blob: BlobResolver, buffers: list[dict[str, Any]]
) -> Any:
    """`value` with each `{"$blob": hash}` resolved; bytes are moved out into `buffers`."""
    if isinstance(value, dict):
        blob = value.get("$blob")
        if len(value) == 1 and isinstance(blob, str):
            resolved = resolve_blob(blob)
            if not isinstance(resolved, bytes | bytearray | memoryview):
                return resolved
            data = base64.b64encode(bytes(resolved)).decode("ascii")
            buffers.append({"path": path, "encoding": "base64", "data": data})
            return None
        return {
            key: _resolve_blobs(item, [*path, key], resolve_blob, buffers)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [
            _resolve_blobs(item, [*path, index], resolve_blob, buffers)
            for index, item in enumerate(value)
        ]
    return value
