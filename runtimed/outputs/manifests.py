"""How the doc stores an output: inline JSON when small, else a manifest in the blob store.

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
"""

from __future__ import annotations

import json
from typing import Any, Literal

import structlog

from ..blob_store import HASH_RE, BlobError, BlobStore, canonical_json
from .nbformat import OutputError, check_output, is_string_list

log = structlog.get_logger(__name__)

INLINE_LIMIT = 1024
STREAM_CHUNK_CHARS = 64 * 1024
MANIFEST_MEDIA_TYPE = "application/x-nbformat-output+json"


def encode_output(
    output: dict[str, Any], blobs: BlobStore, *, inline_limit: int | None = INLINE_LIMIT
) -> str:
    """The doc entry for `output`: its JSON if small enough, else its manifest's hash.

    `inline_limit=None` always writes a manifest (Output widgets store only hashes).
    """
    check_output(output)
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
        return kept_inline(encoded, exc)


def kept_inline(encoded: bytes, error: OSError) -> str:
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
        return decode_entry(entry, blobs)
    except (BlobError, OutputError) as exc:
        if on_missing == "error":
            raise
        log.warning("output_unreadable", code=exc.code, error=exc.message)
        return _placeholder(entry, exc.code)


def decode_entry(entry: Any, blobs: BlobStore) -> dict[str, Any]:
    if not isinstance(entry, str):
        raise OutputError("bad_output", f"an output entry is a string, not {type(entry).__name__}")
    if HASH_RE.fullmatch(entry):
        output = blobs.get_json(entry)
        check_output(output)
        if output["output_type"] == "stream" and isinstance(output.get("text"), list):
            output["text"] = _join_chunks(output["text"], blobs)
        return output
    try:
        output = json.loads(entry)
    except ValueError as exc:
        raise OutputError("bad_output", f"output entry is neither JSON nor a hash: {exc}") from None
    check_output(output)
    return output


def _join_chunks(parts: list[Any], blobs: BlobStore) -> str | list[str]:
    """A manifest's stream text: chunk references resolved; a plain line list kept as is."""
    if is_string_list(parts):
        return parts
    text = []
    for part in parts:
        if isinstance(part, dict) and set(part) == {"$blob"}:
            part = blobs.get_json(part["$blob"])
        if not isinstance(part, str):
            raise OutputError("bad_output", f"stream manifest text part is not text: {part!r:.60}")
        text.append(part)
    return "".join(text)


def _placeholder(entry: Any, code: str) -> dict[str, Any]:
    hash = entry if isinstance(entry, str) and HASH_RE.fullmatch(entry) else None
    what = f"blob {hash}" if hash else "entry"
    return {
        "output_type": "display_data",
        "data": {"text/plain": f"[output unavailable: {what}: {code}]"},
        "metadata": {"runtimed": {"unavailable": {"hash": hash, "error": code}}},
    }
