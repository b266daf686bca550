"""The outputs of one target (a cell, or an Output widget), as the kernel produces them.

The room feeds an `OutputLog` IOPub messages and writes `entries()` to the doc; only
entries changed since the last call are re-encoded. `clear_output(wait=True)` and
display updates by `transient.display_id` are handled here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import structlog

from ..blob_store import BlobError, BlobStore
from .manifests import INLINE_LIMIT, decode_entry, decode_output, encode_output
from .nbformat import (
    OutputError,
    content_of,
    display_id_from_iopub,
    display_update_from_iopub,
    msg_type_of,
    multiline_text,
    output_from_iopub,
)
from .stream import Stream

log = structlog.get_logger(__name__)


@dataclass(slots=True, eq=False)
class _Entry:
    """One output of a log. Entries read from the doc stay encoded until needed."""

    encoded: str | None = None  # the doc's string; None when changed since last encoded
    output: dict[str, Any] | None = None  # a finished output
    stream: Stream | None = None  # a stream that may still grow
    display_id: str | None = None


class OutputLog:
    """The outputs of one target (a cell, or an Output widget) as the kernel produces them.

    The room feeds it IOPub messages and writes `entries()` to the doc; only entries
    changed since the last call are re-encoded.
    """

    def __init__(
        self,
        blobs: BlobStore,
        entries: Iterable[str] = (),
        *,
        inline_limit: int | None = INLINE_LIMIT,
    ) -> None:
        self._blobs = blobs
        self._inline_limit = inline_limit
        self._entries = [_Entry(encoded=_check_entry(entry)) for entry in entries]
        self._clear_on_next_output = False

    def apply(self, msg: dict[str, Any]) -> bool:
        """Apply one IOPub message; True if `entries()` changed."""
        msg_type = msg_type_of(msg)
        if msg_type == "clear_output":
            if content_of(msg, msg_type).get("wait"):
                self._clear_on_next_output = True
                return False
            return self.clear()
        update = display_update_from_iopub(msg)
        if update is not None:
            return self.update_display(update.display_id, update.output)
        output = output_from_iopub(msg)
        if output is None:
            return False
        if self._clear_on_next_output:
            self.clear()
        if output["output_type"] == "stream":
            self._append_stream(output["name"], output["text"])
        else:
            self._entries.append(_Entry(output=output, display_id=display_id_from_iopub(msg)))
        return True

    def update_display(self, display_id: str, output: dict[str, Any]) -> bool:
        """Give every output of this log that carries `display_id` the data of `output`."""
        if not isinstance(output, dict) or not isinstance(output.get("data"), dict):
            raise OutputError("bad_output", "a display update needs a data object")
        if not isinstance(output.get("metadata", {}), dict):
            raise OutputError("bad_output", "a display update's metadata must be an object")
        changes = {"data": output["data"], "metadata": output.get("metadata", {})}
        changed = False
        for entry in self._entries:
            if entry.display_id == display_id and entry.output is not None:
                updated = {**entry.output, **changes}
                if updated != entry.output:
                    entry.output, entry.encoded, changed = updated, None, True
        return changed

    def display_ids(self) -> set[str]:
        return {entry.display_id for entry in self._entries if entry.display_id}

    def entries(self) -> list[str]:
        """What the doc stores, one string per output (may write blobs)."""
        return [self._encode(entry) for entry in self._entries]

    def outputs(self) -> list[dict[str, Any]]:
        """The plain nbformat outputs, as an Output widget's `outputs` state holds them."""
        return [self._output(entry) for entry in self._entries]

    def _output(self, entry: _Entry) -> dict[str, Any]:
        if entry.stream is not None:
            return entry.stream.output()
        if entry.output is None:
            entry.output = decode_output(self._encode(entry), self._blobs, on_missing="placeholder")
        return entry.output

    def clear(self) -> bool:
        """Remove every output (also cancels a pending `clear_output(wait=True)`)."""
        self._clear_on_next_output = False
        had_entries = bool(self._entries)
        self._entries = []
        return had_entries

    def _append_stream(self, name: str, text: str) -> None:
        """Extend the last output if it is the same stream, else start a new one."""
        last = self._entries[-1] if self._entries else None
        if last is not None and last.stream is None and last.output is None:
            last.stream = self._reopen_stream(last)
        stream = last.stream if last is not None else None
        if last is None or stream is None or stream.name != name:
            stream = Stream(name)
            last = _Entry(stream=stream)
            self._entries.append(last)
        last.encoded = None
        stream.append(text)

    def _reopen_stream(self, entry: _Entry) -> Stream | None:
        """A stream read from the doc, so that new text of the same stream extends it."""
        try:
            output = decode_entry(entry.encoded, self._blobs)
            if output["output_type"] != "stream" or not isinstance(output.get("name"), str):
                return None
            stream = Stream(output["name"])
            stream.append(multiline_text(output.get("text"), "stream.text"))
        except (BlobError, OutputError) as exc:
            log.warning("output_unreadable", code=exc.code, error=exc.message)
            return None
        return stream

    def _encode(self, entry: _Entry) -> str:
        if entry.encoded is None:
            if entry.stream is not None:
                entry.encoded = entry.stream.encode(self._blobs, self._inline_limit)
            else:
                entry.encoded = encode_output(
                    entry.output, self._blobs, inline_limit=self._inline_limit
                )
        return entry.encoded


def _check_entry(entry: Any) -> str:
    if not isinstance(entry, str):
        raise OutputError("bad_output", f"an output entry is a string, not {type(entry).__name__}")
    return entry
