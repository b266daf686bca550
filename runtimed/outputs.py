"""nbformat outputs from IOPub messages, and how the doc stores them.

A cell's (or an Output widget's) outputs are a list of strings in the doc. Each entry
is either an nbformat v4 output as compact JSON (sorted keys), when that JSON is at
most `INLINE_LIMIT` UTF-8 bytes, or the 64-hex hash of an *output manifest* in the
blob store. Output widgets store manifests only (`inline_limit=None`).

The manifest format (blob media type `application/x-nbformat-output+json`):

- A manifest is the nbformat output itself, as canonical JSON. A display, a result or
  an error is written once, so one blob per output is all it needs.
- One exception, for streams, because they grow: a stream whose text is longer than
  `STREAM_CHUNK_CHARS` stores `text` as a list whose items are `{"$blob": hash}`
  references (each names a JSON string blob holding one full chunk of the text) and,
  last, the unchunked rest as a plain string. Full chunks never change, so a growing
  stream rewrites only its small manifest and its tail, not megabytes per flush.
  `decode_output` joins the chunks back: readers always get a plain nbformat output.

Streams are shown the way JupyterLab shows them: consecutive stream messages of the
same name extend one output, `\\b` deletes the character before it and `\\r` returns
to the start of the line, where the following characters overwrite the old ones
(`\\r\\n` is a newline). Text without those two characters is kept exactly.

`transient.display_id` is never stored in an output (nbformat has no such field): the
`OutputLog` remembers which of its outputs carry which display id.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import structlog

from .blob_store import HASH_RE, BlobError, BlobStore, canonical_json
from .errors import RuntimedError

log = structlog.get_logger(__name__)

INLINE_LIMIT = 1024
STREAM_CHUNK_CHARS = 64 * 1024
MANIFEST_MEDIA_TYPE = "application/x-nbformat-output+json"
OUTPUT_TYPES = frozenset({"stream", "display_data", "execute_result", "error"})

_JSON_MIME_RE = re.compile(r"application/(.*\+)?json")
_CR_BEFORE_NEWLINE_RE = re.compile(r"\r+\n")


class OutputError(RuntimedError, ValueError):
    """An IOPub message or a stored output that cannot be an nbformat output.

    Codes: bad_message (from the kernel), bad_output (from the doc or a caller),
    bad_argument (a caller's option).
    """


@dataclass(frozen=True, slots=True)
class DisplayUpdate:
    """An `update_display_data`: every output carrying `display_id` takes `output`'s data."""

    display_id: str
    output: dict[str, Any]


# -- IOPub messages to nbformat -------------------------------------------------------


def output_from_iopub(msg: dict[str, Any]) -> dict[str, Any] | None:
    """The nbformat v4 output an IOPub message adds, or None if it adds none.

    `update_display_data` and `clear_output` return None: they change existing outputs
    (see `OutputLog`). Raises OutputError for a malformed output message.
    """
    msg_type = _msg_type(msg)
    if msg_type not in OUTPUT_TYPES:
        return None
    content = _content(msg, msg_type)
    if msg_type == "stream":
        return {
            "output_type": "stream",
            "name": _string(content, "name", msg_type),
            "text": _text(content.get("text"), f"{msg_type}.text"),
        }
    if msg_type == "error":
        traceback = content.get("traceback")
        if not _is_string_list(traceback):
            raise OutputError("bad_message", "error.traceback must be a list of strings")
        return {
            "output_type": "error",
            "ename": _string(content, "ename", msg_type),
            "evalue": _string(content, "evalue", msg_type),
            "traceback": list(traceback),
        }
    output = _display_output(content, msg_type, msg_type)
    if msg_type == "execute_result":
        count = content.get("execution_count")
        if count is not None and (type(count) is not int or count < 0):
            raise OutputError("bad_message", f"bad execute_result.execution_count: {count!r}")
        output["execution_count"] = count
    return output


def display_id_from_iopub(msg: dict[str, Any]) -> str | None:
    """`transient.display_id` of a display_data, execute_result or update_display_data."""
    msg_type = _msg_type(msg)
    if msg_type not in ("display_data", "execute_result", "update_display_data"):
        return None
    transient = _content(msg, msg_type).get("transient")
    if transient is None:
        return None
    if not isinstance(transient, dict):
        raise OutputError("bad_message", f"{msg_type}.transient must be an object")
    display_id = transient.get("display_id")
    if display_id is not None and not isinstance(display_id, str):
        raise OutputError("bad_message", f"bad transient.display_id: {display_id!r}")
    return display_id or None


def display_update_from_iopub(msg: dict[str, Any]) -> DisplayUpdate | None:
    """The update an `update_display_data` asks for; None for any other message.

    The room applies it to every log (a display may be updated from another cell).
    """
    msg_type = _msg_type(msg)
    if msg_type != "update_display_data":
        return None
    display_id = display_id_from_iopub(msg)
    if display_id is None:
        raise OutputError("bad_message", "update_display_data without transient.display_id")
    output = _display_output(_content(msg, msg_type), msg_type, "display_data")
    return DisplayUpdate(display_id, output)


def _msg_type(msg: Any) -> str:
    if not isinstance(msg, dict):
        raise OutputError("bad_message", f"an IOPub message is a dict, not {type(msg).__name__}")
    msg_type = msg.get("msg_type")
    if msg_type is None and isinstance(msg.get("header"), dict):
        msg_type = msg["header"].get("msg_type")
    if not isinstance(msg_type, str):
        raise OutputError("bad_message", "IOPub message without a msg_type")
    return msg_type


def _content(msg: dict[str, Any], msg_type: str) -> dict[str, Any]:
    content = msg.get("content")
    if not isinstance(content, dict):
        raise OutputError("bad_message", f"{msg_type} message without a content object")
    return content


def _string(content: dict[str, Any], key: str, msg_type: str) -> str:
    value = content.get(key)
    if not isinstance(value, str):
        raise OutputError("bad_message", f"{msg_type}.{key} must be a string, not {value!r:.60}")
    return value


def _is_string_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _text(value: Any, where: str) -> str:
    """An nbformat multiline string (a string or a list of strings) as one string."""
    if isinstance(value, str):
        return value
    if _is_string_list(value):
        return "".join(value)
    raise OutputError("bad_message", f"{where} must be a string, not {value!r:.60}")


def _display_output(content: dict[str, Any], msg_type: str, output_type: str) -> dict[str, Any]:
    data = content.get("data")
    if not isinstance(data, dict):
        raise OutputError("bad_message", f"{msg_type}.data must be an object")
    for mime, value in data.items():
        json_mime = isinstance(mime, str) and _JSON_MIME_RE.fullmatch(mime) is not None
        if not json_mime and not (isinstance(value, str) or _is_string_list(value)):
            raise OutputError("bad_message", f"{msg_type}.data[{mime!r}] must be text")
    metadata = content.get("metadata", {})
    if not isinstance(metadata, dict):
        raise OutputError("bad_message", f"{msg_type}.metadata must be an object")
    return {"output_type": output_type, "data": data, "metadata": metadata}


# -- doc entries ----------------------------------------------------------------------


def encode_output(
    output: dict[str, Any], blobs: BlobStore, *, inline_limit: int | None = INLINE_LIMIT
) -> str:
    """The doc entry for `output`: its JSON if small enough, else its manifest's hash.

    `inline_limit=None` always writes a manifest (Output widgets store only hashes).
    """
    _check_output(output)
    encoded = canonical_json(output)
    if inline_limit is not None and len(encoded) <= inline_limit:
        return encoded.decode("utf-8")
    return _put_manifest(encoded, blobs, inline=inline_limit is not None)


def _put_manifest(encoded: bytes, blobs: BlobStore, *, inline: bool) -> str:
    """The manifest's hash, or, when the store's disk fails and the entry may be inline,
    the output's JSON itself."""
    try:
        return blobs.put(encoded, MANIFEST_MEDIA_TYPE)
    except OSError as exc:
        if not inline:
            raise
        return _kept_inline(encoded, exc)


def _kept_inline(encoded: bytes, error: OSError) -> str:
    """A full or read-only disk must not lose an output: it stays in the doc as JSON
    (bigger than the inline limit, still a valid entry) and is saved with the doc."""
    log.warning("output_kept_inline", bytes=len(encoded), error=str(error))
    return encoded.decode("utf-8")


def decode_output(
    entry: str, blobs: BlobStore, *, on_missing: Literal["error", "placeholder"] = "error"
) -> dict[str, Any]:
    """The nbformat output a doc entry stands for, manifests and chunks resolved.

    An entry that cannot be read (missing or corrupt blob, broken JSON) raises BlobError
    or OutputError, or with `on_missing="placeholder"` reads as a display_data saying so,
    so an export or a viewer keeps the rest of the notebook.
    """
    if on_missing not in ("error", "placeholder"):
        raise OutputError(
            "bad_argument", f"on_missing must be 'error' or 'placeholder', not {on_missing!r}"
        )
    try:
        return _decode(entry, blobs)
    except (BlobError, OutputError) as exc:
        if on_missing == "error":
            raise
        log.warning("output_unreadable", code=exc.code, error=exc.message)
        return _placeholder(entry, exc.code)


def _decode(entry: Any, blobs: BlobStore) -> dict[str, Any]:
    if not isinstance(entry, str):
        raise OutputError("bad_output", f"an output entry is a string, not {type(entry).__name__}")
    if HASH_RE.fullmatch(entry):
        output = blobs.get_json(entry)
        _check_output(output)
        if output["output_type"] == "stream" and isinstance(output.get("text"), list):
            output["text"] = _join_chunks(output["text"], blobs)
        return output
    try:
        output = json.loads(entry)
    except ValueError as exc:
        raise OutputError("bad_output", f"output entry is neither JSON nor a hash: {exc}") from None
    _check_output(output)
    return output


def _join_chunks(parts: list[Any], blobs: BlobStore) -> str | list[str]:
    """A manifest's stream text: chunk references resolved; a plain line list kept as is."""
    if _is_string_list(parts):
        return parts
    text = []
    for part in parts:
        if isinstance(part, dict) and set(part) == {"$blob"}:
            part = blobs.get_json(part["$blob"])
        if not isinstance(part, str):
            raise OutputError("bad_output", f"stream manifest text part is not text: {part!r:.60}")
        text.append(part)
    return "".join(text)


def _check_output(output: Any) -> None:
    if not isinstance(output, dict) or output.get("output_type") not in OUTPUT_TYPES:
        raise OutputError("bad_output", f"not an nbformat output: {output!r:.80}")


def _placeholder(entry: Any, code: str) -> dict[str, Any]:
    hash = entry if isinstance(entry, str) and HASH_RE.fullmatch(entry) else None
    what = f"blob {hash}" if hash else "entry"
    return {
        "output_type": "display_data",
        "data": {"text/plain": f"[output unavailable: {what}: {code}]"},
        "metadata": {"runtimed": {"unavailable": {"hash": hash, "error": code}}},
    }


# -- the outputs of one target --------------------------------------------------------


def _settle_line(line: str) -> str:
    """One line (no "\\n") as JupyterLab shows it; a trailing "\\r" stays pending."""
    if "\b" in line:
        kept: list[str] = []
        for char in line:
            if char == "\b" and kept:
                kept.pop()
            else:
                kept.append(char)
        line = "".join(kept)
    if "\r" in line:
        segments = line.rstrip("\r").split("\r")
        shown = segments[0]
        for segment in segments[1:]:
            shown = segment + shown[len(segment) :]
        line = shown + "\r" if line.endswith("\r") else shown
    return line


class _Stream:
    """A growing stream output: settled text cut into fixed chunks, plus the open line.

    Appending is amortised O(len(text)). Only the open line (after the last newline)
    can still change, through "\\r" or "\\b"; a line that reaches STREAM_CHUNK_CHARS
    is settled as it stands, the way a terminal wraps: a later "\\r" returns to the
    start of what follows.
    """

    __slots__ = ("_chunk_hashes", "_chunks", "_line", "_line_len", "_tail", "_tail_len", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._chunks: list[str] = []
        self._chunk_hashes: list[str] = []
        self._tail: list[str] = []
        self._tail_len = 0
        self._line: list[str] = []
        self._line_len = 0

    def append(self, text: str) -> None:
        if "\r" in text or "\b" in text or (self._line and self._line[-1].endswith("\r")):
            joined = "".join(self._line) + text
            self._line, self._line_len = [], 0
            lines = _CR_BEFORE_NEWLINE_RE.sub("\n", joined).split("\n")
            if len(lines) > 1:
                self._settle([_settle_line(line) + "\n" for line in lines[:-1]])
            self._extend_line(_settle_line(lines[-1]))
            return
        newline = text.rfind("\n")
        if newline >= 0:
            self._settle([*self._line, text[: newline + 1]])
            self._line, self._line_len = [], 0
        self._extend_line(text[newline + 1 :])

    def _extend_line(self, text: str) -> None:
        if text:
            self._line.append(text)
            self._line_len += len(text)
        if self._line_len >= STREAM_CHUNK_CHARS:
            line = "".join(self._line)
            pending = "\r" if line.endswith("\r") else ""
            self._settle([line.removesuffix(pending)])
            self._line, self._line_len = ([pending], 1) if pending else ([], 0)

    def _settle(self, parts: list[str]) -> None:
        self._tail.extend(parts)
        self._tail_len += sum(map(len, parts))
        if self._tail_len >= STREAM_CHUNK_CHARS:
            rest = "".join(self._tail)
            full = len(rest) - len(rest) % STREAM_CHUNK_CHARS
            self._chunks.extend(
                rest[start : start + STREAM_CHUNK_CHARS]
                for start in range(0, full, STREAM_CHUNK_CHARS)
            )
            self._tail = [rest[full:]] if full < len(rest) else []
            self._tail_len = len(rest) - full

    def text(self) -> str:
        return "".join([*self._chunks, *self._tail, *self._line])

    def output(self) -> dict[str, Any]:
        return {"output_type": "stream", "name": self.name, "text": self.text()}

    def encode(self, blobs: BlobStore, inline_limit: int | None) -> str:
        if not self._chunks:
            return encode_output(self.output(), blobs, inline_limit=inline_limit)
        try:
            for chunk in self._chunks[len(self._chunk_hashes) :]:
                self._chunk_hashes.append(blobs.put_json(chunk))
        except OSError as exc:
            if inline_limit is None:
                raise
            return _kept_inline(canonical_json(self.output()), exc)
        rest = "".join([*self._tail, *self._line])
        text: list[Any] = [{"$blob": chunk_hash} for chunk_hash in self._chunk_hashes]
        manifest = {"output_type": "stream", "name": self.name, "text": [*text, rest]}
        return blobs.put_json(manifest, MANIFEST_MEDIA_TYPE)


@dataclass(slots=True, eq=False)
class _Entry:
    """One output of a log. Entries read from the doc stay encoded until needed."""

    encoded: str | None = None  # the doc's string; None when changed since last encoded
    output: dict[str, Any] | None = None  # a finished output
    stream: _Stream | None = None  # a stream that may still grow
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
        msg_type = _msg_type(msg)
        if msg_type == "clear_output":
            if _content(msg, msg_type).get("wait"):
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
            stream = _Stream(name)
            last = _Entry(stream=stream)
            self._entries.append(last)
        last.encoded = None
        stream.append(text)

    def _reopen_stream(self, entry: _Entry) -> _Stream | None:
        """A stream read from the doc, so that new text of the same stream extends it."""
        try:
            output = _decode(entry.encoded, self._blobs)
            if output["output_type"] != "stream" or not isinstance(output.get("name"), str):
                return None
            stream = _Stream(output["name"])
            stream.append(_text(output.get("text"), "stream.text"))
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
