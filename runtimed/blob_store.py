"""Content-addressed files for everything too big to live in the Automerge doc.

A blob is named by the SHA-256 of its bytes, so equal content is stored once and a
reference can be checked against what it names. Layout under `root` (created 0700):

    root/ab/cd/<hash>         the bytes
    root/ab/cd/<hash>.meta    {"media_type": "..."}   (first writer's type wins)
    root/ab/cd/<hash>.corrupt a blob whose bytes no longer match its name, set aside
    root/ab/cd/.tmp-*         a write in progress (removed by `gc` after an hour)

Every write goes to a temp file in the target directory, is fsynced and then renamed
over its final name, so a reader sees a whole blob or none, and writers racing on the
same content (threads or processes) all succeed with the same result. A hash string is
validated before any path is built from it: "../x" never reaches the filesystem.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from notebook_doc import atomic_write, is_temp_name

from .errors import RuntimedError

log = structlog.get_logger(__name__)

HASH_RE = re.compile(r"^[0-9a-f]{64}$")
DEFAULT_MEDIA_TYPE = "application/octet-stream"
STALE_TEMP_SECONDS = 3600.0
_FANOUT_RE = re.compile(r"^[0-9a-f]{2}$")


class BlobError(RuntimedError):
    """A blob operation failed; its code reaches the client as it is.

    Codes: bad_hash, bad_value, blob_not_found, blob_too_large, blob_corrupt, not_json.
    """


@dataclass(frozen=True, slots=True)
class BlobInfo:
    hash: str
    size: int
    media_type: str


@dataclass(frozen=True, slots=True)
class GcReport:
    blobs_kept: int
    blobs_deleted: int
    bytes_freed: int
    temp_files_deleted: int


def validate_hash(value: object) -> str:
    """Return `value` if it is a lowercase 64-hex SHA-256, else raise bad_hash."""
    if not isinstance(value, str) or HASH_RE.fullmatch(value) is None:
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        raise BlobError("bad_hash", f"not a lowercase 64-hex sha256: {shown}")
    return value


def canonical_json(value: Any) -> bytes:
    """Compact JSON with sorted keys, UTF-8: equal values give equal bytes (and hashes)."""
    try:
        text = json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise BlobError("not_json", f"value is not JSON-serialisable: {exc}") from exc
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (kernels can send one) has no UTF-8 form: escape everything.
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
        ).encode("ascii")


class BlobStore:
    """Synchronous and fast per call: the room's task calls it between doc writes."""

    def __init__(self, root: Path, *, max_blob_size: int = 256 * 1024 * 1024) -> None:
        self.root = Path(root)
        self.max_blob_size = max_blob_size
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)

    def path_for(self, hash: str) -> Path:
        """Where the blob named `hash` lives (whether or not it exists)."""
        validate_hash(hash)
        return self.root / hash[:2] / hash[2:4] / hash

    def put(self, data: bytes, media_type: str = DEFAULT_MEDIA_TYPE) -> str:
        """Store `data` and return its sha256; storing existing content writes nothing."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise BlobError("bad_value", f"blob data must be bytes, not {type(data).__name__}")
        if not isinstance(media_type, str) or not media_type or len(media_type) > 255:
            raise BlobError("bad_value", f"bad media type: {media_type!r}")
        data = bytes(data)
        if len(data) > self.max_blob_size:
            raise BlobError(
                "blob_too_large",
                f"{len(data)} bytes is above the {self.max_blob_size}-byte blob limit",
            )
        hash = hashlib.sha256(data).hexdigest()
        path = self.path_for(hash)
        if not self._holds(path, len(data)):
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            atomic_write(path, data)
        meta = _meta_path(path)
        if not meta.exists():
            atomic_write(meta, canonical_json({"media_type": media_type}))
        return hash

    def get(self, hash: str, *, verify: bool = True) -> bytes:
        """The bytes named `hash`; with `verify`, bytes that do not match are quarantined."""
        path = self.path_for(hash)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise BlobError("blob_not_found", f"no blob {hash}") from None
        if verify and hashlib.sha256(data).hexdigest() != hash:
            self._quarantine(path)
            raise BlobError("blob_corrupt", f"blob {hash} does not match its hash")
        return data

    def info(self, hash: str) -> BlobInfo:
        path = self.path_for(hash)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise BlobError("blob_not_found", f"no blob {hash}") from None
        return BlobInfo(hash=hash, size=size, media_type=self._media_type(path))

    def has(self, hash: str) -> bool:
        return self.path_for(hash).is_file()

    def put_json(self, value: Any, media_type: str = "application/json") -> str:
        return self.put(canonical_json(value), media_type)

    def get_json(self, hash: str) -> Any:
        data = self.get(hash)
        try:
            return json.loads(data)
        except (UnicodeDecodeError, ValueError) as exc:
            raise BlobError("not_json", f"blob {hash} is not JSON: {exc}") from exc

    def iter_hashes(self) -> Iterator[str]:
        """Every stored blob's hash (temp, meta and quarantined files excluded)."""
        for first in _subdirs(self.root):
            for second in _subdirs(first):
                for entry in second.iterdir():
                    if HASH_RE.fullmatch(entry.name) and entry.is_file():
                        yield entry.name

    def gc(self, keep: set[str], *, min_age: float = 0.0) -> GcReport:
        """Delete every blob not in `keep` and older than `min_age` seconds, and temp files
        left by a crashed writer."""
        kept = deleted = freed = temps = 0
        now = time.time()
        stale_before = now - STALE_TEMP_SECONDS
        young_after = now - min_age
        for first in _subdirs(self.root):
            for second in _subdirs(first):
                for entry in list(second.iterdir()):
                    name = entry.name
                    if is_temp_name(name):
                        stat = _stat(entry)
                        if stat and stat.st_mtime < stale_before and _unlink(entry):
                            temps += 1
                    elif HASH_RE.fullmatch(name):
                        stat = _stat(entry)
                        if name in keep or (stat and stat.st_mtime > young_after):
                            kept += 1
                        elif stat and _unlink(entry):
                            deleted += 1
                            freed += stat.st_size
                    elif name.endswith(".meta") and name.removesuffix(".meta") not in keep:
                        _unlink(entry)
        log.info("blob_gc", kept=kept, deleted=deleted, bytes_freed=freed, temp_files=temps)
        return GcReport(
            blobs_kept=kept, blobs_deleted=deleted, bytes_freed=freed, temp_files_deleted=temps
        )

    def _holds(self, path: Path, size: int) -> bool:
        """True if `path` already holds the blob; a file of the wrong size is set aside."""
        try:
            existing = path.stat().st_size
        except FileNotFoundError:
            return False
        if existing == size:
            return True
        self._quarantine(path)
        return False

    def _quarantine(self, path: Path) -> None:
        corrupt = path.with_name(path.name + ".corrupt")
        with contextlib.suppress(FileNotFoundError):
            os.replace(path, corrupt)
        log.warning("blob_quarantined", hash=path.name, moved_to=str(corrupt))

    def _media_type(self, path: Path) -> str:
        try:
            meta = json.loads(_meta_path(path).read_bytes())
        except FileNotFoundError:
            return DEFAULT_MEDIA_TYPE
        except ValueError:
            log.warning("blob_meta_unreadable", hash=path.name)
            return DEFAULT_MEDIA_TYPE
        media_type = meta.get("media_type") if isinstance(meta, dict) else None
        return media_type if isinstance(media_type, str) and media_type else DEFAULT_MEDIA_TYPE


def _meta_path(blob_path: Path) -> Path:
    return blob_path.with_name(blob_path.name + ".meta")


def _subdirs(directory: Path) -> Iterator[Path]:
    for entry in directory.iterdir():
        if _FANOUT_RE.fullmatch(entry.name) and entry.is_dir():
            yield entry


def _stat(path: Path) -> os.stat_result | None:
    """The file's stat, or None if a concurrent writer or gc already moved it."""
    try:
        return path.stat()
    except FileNotFoundError:
        return None


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
