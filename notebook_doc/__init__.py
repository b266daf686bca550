"""Pure-data notebook model: the Automerge schema, migrations and .ipynb conversion.

The only package in the project that imports `automerge`; everything else reads and
writes notebooks (and syncs them) through `NotebookDoc`.
"""

from .cells import CellSnapshot, NewCell
from .comms import (
    CommSnapshot,
    CommWrite,
    PutComm,
    RemoveComm,
    SetCommOutputs,
    UpdateCommState,
)
from .doc import NotebookDoc
from .errors import (
    CellNotFound,
    CorruptDocumentError,
    InvalidArgument,
    IpynbError,
    NotebookDocError,
    SchemaError,
    SyncMessageError,
    UnsupportedSchemaVersion,
)
from .files import atomic_write, doc_filename, is_temp_name, load_or_create
from .ipynb import from_ipynb, to_ipynb
from .schema import SCHEMA_VERSION
from .sync import SyncMessageSummary, SyncState, summarize_sync_message, sync_message_heads

__all__ = [
    "SCHEMA_VERSION",
    "CellNotFound",
    "CellSnapshot",
    "CommSnapshot",
    "CommWrite",
    "CorruptDocumentError",
    "InvalidArgument",
    "IpynbError",
    "NewCell",
    "NotebookDoc",
    "NotebookDocError",
    "PutComm",
    "RemoveComm",
    "SchemaError",
    "SetCommOutputs",
    "SyncMessageError",
    "SyncMessageSummary",
    "SyncState",
    "UnsupportedSchemaVersion",
    "UpdateCommState",
    "atomic_write",
    "doc_filename",
    "from_ipynb",
    "is_temp_name",
    "load_or_create",
    "summarize_sync_message",
    "sync_message_heads",
    "to_ipynb",
]
