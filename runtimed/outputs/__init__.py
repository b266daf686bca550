"""Kernel outputs: IOPub to nbformat, how the doc stores them, and each target's log.

- `nbformat`: an IOPub message to the nbformat output it adds (checked);
- `manifests`: doc entries, inline JSON or manifests and chunks in the blob store;
- `stream`: stream text with terminal `\\r` and `\\b` handling, chunked as it grows;
- `log`: `OutputLog`, the outputs of one cell or Output widget;
- `displays`: finished cells' display ids, for later `update_display_data`.
"""

from .displays import FinishedCellUpdate, FinishedDisplays
from .log import OutputLog
from .manifests import (
    INLINE_LIMIT,
    MANIFEST_MEDIA_TYPE,
    STREAM_CHUNK_CHARS,
    decode_output,
    encode_output,
)
from .nbformat import (
    OUTPUT_TYPES,
    DisplayUpdate,
    OutputError,
    display_id_from_iopub,
    display_update_from_iopub,
    output_from_iopub,
)

__all__ = [
    "INLINE_LIMIT",
    "MANIFEST_MEDIA_TYPE",
    "OUTPUT_TYPES",
    "STREAM_CHUNK_CHARS",
    "DisplayUpdate",
    "FinishedCellUpdate",
    "FinishedDisplays",
    "OutputError",
    "OutputLog",
    "decode_output",
    "display_id_from_iopub",
    "display_update_from_iopub",
    "encode_output",
    "output_from_iopub",
]
