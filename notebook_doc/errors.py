"""Error types: every bad input to `notebook_doc` ends in one of these, never a crash."""

from __future__ import annotations


class NotebookDocError(Exception):
    """Base class, so callers can catch everything this package raises on bad input."""


class CorruptDocumentError(NotebookDocError):
    """Bytes that do not load as an Automerge document."""


class SyncMessageError(NotebookDocError):
    """A sync message that does not decode or apply; the document is left untouched."""


class SchemaError(NotebookDocError, ValueError):
    """A stored document whose shape breaks schema v3 (wrong-typed or missing field)."""


class UnsupportedSchemaVersion(NotebookDocError):
    """A document written by newer code: refusing beats a silent downgrade."""

    def __init__(self, found: int, supported: int) -> None:
        super().__init__(
            f"document has schema_version {found}, this code supports versions 1 to "
            f"{supported}; upgrade runtimed to open it"
        )
        self.found = found
        self.supported = supported


class InvalidArgument(NotebookDocError, ValueError):
    """A caller passed a value the schema cannot store (bad cell type, non-JSON, ...)."""


class CellNotFound(NotebookDocError, KeyError):
    """No cell with this id."""

    def __init__(self, cell_id: str) -> None:
        super().__init__(cell_id)
        self.cell_id = cell_id

    def __str__(self) -> str:
        return f"no cell with id {self.cell_id!r}"


class IpynbError(NotebookDocError, ValueError):
    """A .ipynb that is not JSON, not nbformat 4, or not valid; or one that cannot be built."""
