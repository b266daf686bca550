"""Autosave: a room opened from an .ipynb keeps that file up to date, never over an
edit made on disk.

A save waits for `autosave_quiet` seconds without change, but a doc that keeps
changing is written at least every `autosave_max_delay` seconds (as Jupyter's
autosave). Before writing, the file is compared (by content hash) with the version
the room last read or wrote: a file changed behind our back is merged into the doc
first (`disk_sync`), and the write itself refuses to replace a file that changed
again meanwhile. Every state change is told to the room's peers as a `save_state`
broadcast; a failed save is also an `error` broadcast, and is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from notebook_doc import NotebookDoc, NotebookDocError, atomic_write

from ..blob_store import BlobStore
from ..outputs import OutputError
from . import notebook_file
from .debounce import Debouncer
from .disk_sync import (
    Merged,
    NoBase,
    apply_disk_version,
    conflict_copy_path,
    fork_at,
    merge_branch,
)
from .stored import FileRecord, read_record, write_record

log = structlog.get_logger(__name__)

# A save that found the file changed again while writing tries this often, then fails.
WRITE_ATTEMPTS = 3


@dataclass(slots=True)
class SaverHooks:
    """What the saver asks of its room; all cheap, on the event loop."""

    doc_changed: Callable[[], None]  # a disk version was merged: sync peers
    flush: Callable[[], None]  # settle pending kernel writes before rendering
    broadcast: Callable[..., None]
    persist: Callable[[], Awaitable[bool]]  # the stored copy, before the record names it
    saved: Callable[[dict[str, Any]], bool]  # a notebook was written (trust signs it)


class NotebookSaver:
    """Owns one room's .ipynb: when to write it, what is on disk, and the save state."""

    def __init__(
        self,
        doc: NotebookDoc,
        path: Path,
        *,
        notebook_id: str,
        docs_dir: Path,
        blobs: BlobStore,
        hooks: SaverHooks,
        autosave: bool,
        quiet: float,
        max_delay: float,
        retry: float,
        spawn: Callable[..., None],
        log_: Any = None,
    ) -> None:
        self.doc = doc
        self.path = path
        self.notebook_id = notebook_id
        self.docs_dir = docs_dir
        self.blobs = blobs
        self.hooks = hooks
        self.autosave = autosave
        self.retry = retry
        self.log = log_ or log
        record = read_record(docs_dir, notebook_id)
        usable = record is not None and record.path == str(path)
        self.base: list[bytes] | None = record.heads if usable and record else None
        self.file_hash: str | None = record.sha256 if usable and record else None
        self.state = "saved"
        self.reason: str | None = None
        self.kept_copy: Path | None = None  # the last disk version kept beside the file
        self._debounce = Debouncer(self._fire, quiet=quiet, max_delay=max_delay)
        self._spawn = spawn  # the room's task group: saves and merges run there
        self._lock = asyncio.Lock()
        self._unrecorded: tuple[list[bytes], str] | None = None  # loaded, not yet recorded
        self._seen: tuple[int, int, int] | None = None  # the file's stat at our last look
        self._watch: asyncio.TimerHandle | None = None
        self.saves = 0
        self.signed = False  # what `saved` said of the last notebook written

    # --- what the room tells us --------------------------------------------------------

    def loaded(self, version: notebook_file.FileVersion) -> None:
        """The doc was just built from this file version: it is the base (recorded
        when the room opens)."""
        self.base = self.doc.get_heads()
        self.file_hash = version.sha256
        self._unrecorded = (self.base, version.sha256)

    async def _remember(self, heads: list[bytes], sha256: str) -> None:
        """Record the version the room read or wrote, so that after a restart it can still
        tell an edit made on disk from its own. The stored copy holds `heads` first."""
        await self.hooks.persist()
        record = FileRecord(str(self.path), sha256, heads)
        try:
            await asyncio.to_thread(write_record, self.docs_dir, self.notebook_id, record)
        except OSError as exc:  # a restart then keeps both versions rather than guess
            self.log.warning("file_record_failed", path=str(self.path), error=str(exc))

    async def opened(self) -> None:
        """The room just opened: take in what changed on disk since it last looked.

        A stored copy without a record (kept by an older daemon) has no base: the file
        wins outright, as an edit on top of the stored doc.
        """
        if self._unrecorded is not None:
            await self._remember(*self._unrecorded)
            self._unrecorded = None
        if self.file_hash is None and self.base is None:
            self.base = self.doc.get_heads()
        async with self._lock:
            try:
                await self._sync_from_disk(await asyncio.to_thread(notebook_file.read, self.path))
            except OSError as exc:  # the blob store's disk: the next save tries again
                self._failed(f"could not bring in {self.path}: {exc.strerror or exc}")
                return
        if not self._is_saved():
            self.changed()

    def changed(self) -> None:
        """The doc changed: save after a quiet spell, and never later than max_delay."""
        if self._is_saved():
            return
        if self.state == "saved":
            self._set_state("modified")
        if self.autosave:
            self._debounce.poke()

    def info(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "reason": self.reason,
            "autosave": self.autosave,
            "kept_copy": str(self.kept_copy) if self.kept_copy is not None else None,
        }

    def event(self) -> dict[str, Any]:
        """The `save_state` broadcast's fields."""
        return {"path": str(self.path), **self.info()}

    # --- disk -> doc -------------------------------------------------------------------

    def watch(self, interval: float) -> None:
        """Look at the file's stat every `interval` seconds: a file changed on disk comes
        into the doc soon, even while nobody edits in the room (the hash decides)."""
        self._seen = _stat(self.path)
        loop = asyncio.get_running_loop()

        def look() -> None:
            seen = _stat(self.path)
            if seen != self._seen and seen is not None and not self._lock.locked():
                self._seen = seen
                self._spawn(self._refresh)
            self._watch = loop.call_later(interval, look)

        self._watch = loop.call_later(interval, look)

    async def _sync_from_disk(self, current: notebook_file.FileVersion | None) -> None:
        """Bring a file changed behind our back into the doc (the heavy part in a worker
        thread, on a private branch). Unchanged or missing files do nothing."""
        if current is None or current.sha256 == self.file_hash:
            return
        try:
            branch = fork_at(self.doc, self.base)
            changed = await asyncio.to_thread(apply_disk_version, branch, current.data, self.blobs)
        except (NoBase, NotebookDocError, OutputError) as exc:  # IpynbError among them
            self._keep_both(current, str(exc))
            return
        merged = merge_branch(self.doc, branch) if changed else Merged(self.base or [], False)
        self.log.info("disk_version_merged", path=str(self.path), changed=merged.changed)
        self.base, self.file_hash = merged.disk_heads, current.sha256
        if merged.changed:
            self.hooks.doc_changed()

    def _keep_both(self, current: notebook_file.FileVersion, why: str) -> None:
        """The disk version goes beside the file; the room's version stays and will be
        written in its place."""
        copy = conflict_copy_path(self.path, time.strftime("%Y%m%dT%H%M%S"))
        mode = Path(self.path).stat().st_mode & 0o7777 if self.path.exists() else None
        atomic_write(copy, current.data, mode=mode)
        self.file_hash = current.sha256
        self.base = None
        self.kept_copy = copy
        message = (
            f"{self.path} changed on disk and could not be merged with the room ({why}): "
            f"the disk version is kept as {copy}, the room's version will be saved"
        )
        self.log.warning("disk_version_kept_beside", path=str(self.path), copy=str(copy), why=why)
        self.hooks.broadcast("error", code="disk_conflict", message=message)

    # --- doc -> disk -------------------------------------------------------------------

    async def save(self, *, rewrite: bool = False) -> None:
        """Merge any disk edit, then write the doc if the file does not hold it yet
        (with `rewrite`, a `save` request: also when the file holds it in another form,
        an older nbformat say).

        Raises OSError (after saying so to the peers) when the disk refuses; a retry
        is scheduled when autosave is on.
        """
        self._debounce.cancel()
        async with self._lock:
            try:
                await self._save_once(rewrite)
            except OSError as exc:
                self._failed(f"could not save {self.path}: {exc.strerror or exc}")
                raise

    async def _save_once(self, rewrite: bool) -> None:
        for _attempt in range(WRITE_ATTEMPTS):
            current = await asyncio.to_thread(notebook_file.read, self.path)
            await self._sync_from_disk(current)
            if self._is_saved() and current is not None and not rewrite:
                self._set_state("saved")
                self.signed = self.hooks.saved(json.loads(current.data))  # it holds the doc
                return
            self._set_state("saving")
            self.hooks.flush()
            heads = self.doc.get_heads()
            snapshot = self.doc.fork()  # rendered in a worker; the room keeps writing
            previous = current.data if current is not None else None
            nb = await asyncio.to_thread(notebook_file.render, snapshot, self.blobs, previous)
            data = notebook_file.encode(nb)
            if current is not None and data == current.data:  # nothing to rewrite
                self.base, self.file_hash = heads, current.sha256
                self._set_state("saved" if self._is_saved() else "saving")
                self.signed = self.hooks.saved(nb)
                return
            expected = current.sha256 if current is not None else None
            try:
                written = await asyncio.to_thread(
                    notebook_file.write, self.path, data, expected=expected
                )
            except notebook_file.FileChanged:
                self.log.info("file_changed_while_saving", path=str(self.path))
                continue
            self.base, self.file_hash = heads, written
            self._seen = _stat(self.path)
            await self._remember(heads, written)
            self.saves += 1
            self.signed = self.hooks.saved(nb)
            self.log.info("notebook_saved", path=str(self.path), bytes=len(data))
            self._set_state("saved" if self._is_saved() else "saving")
            if not self._is_saved():
                self.changed()
            return
        raise OSError(f"the file kept changing on disk ({WRITE_ATTEMPTS} attempts)")

    def _is_saved(self) -> bool:
        return self.file_hash is not None and self.doc.get_heads() == self.base

    def _failed(self, reason: str) -> None:
        self.log.error("notebook_save_failed", path=str(self.path), reason=reason)
        self.hooks.broadcast("error", code="save_failed", message=reason)
        self._set_state("failed", reason)
        if self.autosave:
            self._debounce.arm(self.retry)

    def _set_state(self, state: str, reason: str | None = None) -> None:
        if (state, reason) == (self.state, self.reason):
            return
        self.state, self.reason = state, reason
        self.hooks.broadcast("save_state", **self.event())

    # --- timing --------------------------------------------------------------------------

    def _fire(self) -> None:
        self._spawn(self._background_save)

    async def _refresh(self) -> None:
        """The file changed on disk: merge it now; with autosave, save the merge too."""
        if self.autosave:
            await self._background_save()
            return
        async with self._lock:
            with contextlib.suppress(OSError):
                await self._sync_from_disk(await asyncio.to_thread(notebook_file.read, self.path))

    async def _background_save(self) -> None:
        with contextlib.suppress(OSError):  # said and retried by save()
            await self.save()

    async def close(self) -> None:
        """The room closes: after the save or merge in flight (one lock), a last save
        (autosave only)."""
        if self._watch is not None:
            self._watch.cancel()
        self._debounce.cancel()
        if self.autosave:
            # On failure the stored copy keeps the change; the error was broadcast and logged.
            with contextlib.suppress(OSError):
                await self.save()
        else:
            async with self._lock:  # a merge from disk under way ends first
                pass
        self._debounce.close()


def _stat(path: Path) -> tuple[int, int, int] | None:
    """What changes when the file is written or replaced (cheap: no read)."""
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)
