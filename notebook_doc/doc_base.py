"""`DocBase`: the document a NotebookDoc wraps, and the argument checks its parts share.

`NotebookDoc` is assembled from parts that each hold one kind of content (`DocCells`,
`DocComms`, and lifecycle, sync and metadata in `doc.py`); they all read the root
containers through the helpers here, so a blank (not yet synced) doc reads as empty
everywhere alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ._automerge import ROOT, Document, ObjId, ObjType, Reader, check_text, get
from .errors import InvalidArgument
from .schema import require_obj

T = TypeVar("T")


class DocBase:
    """The wrapped document and the notebook id it is known by."""

    __slots__ = ("_doc", "_notebook_id")

    def __init__(self, doc: Document, notebook_id: str | None) -> None:
        """Wrap a document (internal: use `new`, `empty`, `load` or `fork`).

        The notebook id is remembered once known: it never changes, so `validate`
        can catch a peer that changes or deletes it, and `repair` can put it back.
        """
        self._doc = doc
        self._notebook_id = notebook_id

    def _is_blank(self) -> bool:
        """Nothing synced in yet (an `empty` doc): readers see an empty notebook."""
        return not self._doc.keys(ROOT)

    def _read_item(
        self, container: str, name: str, key: str, read: Callable[[Reader, ObjId, str], T]
    ) -> T | None:
        """One cell or comm by id, read with `read`; None when there is none."""
        check_id(name, key)
        items = self._container(container)
        if items is None or get(self._doc, items, key) is None:
            return None
        return read(self._doc, items, key)

    def _container(self, key: str) -> ObjId | None:
        """A root map for readers; None on a blank doc, SchemaError when broken."""
        if self._is_blank():
            return None
        return require_obj(self._doc, ROOT, key, ObjType.Map, f"root.{key}")


def check_id(name: str, value: object) -> str:
    if not check_text(value, name):
        raise InvalidArgument(f"{name} must not be empty")
    return str(value)


def check_dict(name: str, value: T) -> T:
    if not isinstance(value, dict):
        raise InvalidArgument(f"{name} must be a dict, not {type(value).__name__}")
    return value


def check_list(name: str, value: T) -> T:
    if not isinstance(value, list):
        raise InvalidArgument(f"{name} must be a list, not {type(value).__name__}")
    return value
