"""A growing stream output, shown the way a terminal (and JupyterLab) shows it.

Consecutive stream messages of the same name extend one output, `\\b` deletes the
character before it and `\\r` returns to the start of the line, where the following
characters overwrite the old ones (`\\r\\n` is a newline). Text without those two
characters is kept exactly. Settled text is cut into fixed chunks, so a long stream
is stored as chunk blobs that never change plus a small tail (see `manifests`).
"""

from __future__ import annotations

import re
from typing import Any

from ..blob_store import BlobStore, canonical_json
from .manifests import MANIFEST_MEDIA_TYPE, STREAM_CHUNK_CHARS, encode_output, kept_inline

_CR_BEFORE_NEWLINE_RE = re.compile(r"\r+\n")


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


class Stream:
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
            return kept_inline(canonical_json(self.output()), exc)
        rest = "".join([*self._tail, *self._line])
        text: list[Any] = [{"$blob": chunk_hash} for chunk_hash in self._chunk_hashes]
        manifest = {"output_type": "stream", "name": self.name, "text": [*text, rest]}
        return blobs.put_json(manifest, MANIFEST_MEDIA_TYPE)
