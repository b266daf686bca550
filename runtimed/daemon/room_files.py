"""A room's files, wired to the room: the stored copy, the .ipynb, the blob store's faults.

The stored copy (persistence.py) holds the doc with its history, for the daemon; the
.ipynb (autosave.py) is the notebook people open elsewhere. Both are written in the
room's task group, after a debounce, and last of all when the room closes. Outputs
and widget values that go to the blob store are written by the room's flush; when
that disk fails, `StorageAlarm` says so and asks for another flush later.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from .autosave import NotebookSaver, SaverHooks
from .persistence import DocPersister

if TYPE_CHECKING:
    from .room import NotebookRoom


def stored_copy(room: NotebookRoom, doc_path: Path) -> DocPersister:
    """The doc's own file; the trust signatures of what it holds are stored first."""
    return DocPersister(
        room.doc,
        doc_path,
        debounce=room.settings.save_debounce,
        max_interval=room.settings.save_max_interval,
        on_error=lambda message: room.broadcast("error", code="save_failed", message=message),
        before_save=room.trust.signing,  # a failure is logged; the save goes on
        spawn=room.tasks.start_soon,
    )


def notebook_saver(room: NotebookRoom, path: Path) -> NotebookSaver:
    """The .ipynb at `path`, kept up to date (autosave) and watched for edits on disk."""
    settings = room.settings
    saver = NotebookSaver(
        room.doc,
        path,
        notebook_id=room.notebook_id,
        docs_dir=settings.docs_dir,
        blobs=room.blobs,
        hooks=SaverHooks(
            doc_changed=room.disk_merged,
            flush=room.coalescer.flush_now,
            broadcast=room.broadcast,
            persist=room.persister.save,
            saved=room.trust.sign_saved,
        ),
        autosave=settings.autosave,
        quiet=settings.autosave_quiet,
        max_delay=settings.autosave_max_delay,
        retry=settings.autosave_retry,
        spawn=room.tasks.start_soon,
        log_=room.log,
    )
    if settings.file_watch_interval > 0:
        saver.watch(settings.file_watch_interval)
    return saver


async def save_on_close(room: NotebookRoom) -> None:
    """The last saves: the .ipynb (autosave), then the stored copy, unless the room only
    ever held a doc it made up (nothing is stored for it)."""
    if room.saver is not None:
        await room.saver.close()
    if room.doc.get_heads() == room.fresh_heads:
        room.persister.cancel()
    else:
        await room.persister.close()


class StorageAlarm:
    """The blob store's disk failed mid-flush (full, read-only). What was dirty stays
    dirty, so a later flush writes it; said once per failure, and tried again later."""

    def __init__(self, room: NotebookRoom) -> None:
        self.room = room
        self.error: str | None = None  # the last failure, until a flush works
        self._retry: asyncio.TimerHandle | None = None

    def failed(self, exc: OSError) -> None:
        room = self.room
        message = f"could not store widget data or outputs: {exc.strerror or exc}"
        if message != self.error:
            self.error = message
            room.log.error("storage_failed", error=str(exc))
            room.broadcast("error", code="storage_failed", message=message)
        if self._retry is None and not room.closed:
            loop = asyncio.get_running_loop()
            self._retry = loop.call_later(room.settings.save_max_interval, self._again)

    def _again(self) -> None:
        self._retry = None
        if not self.room.closed:
            self.room.coalescer.poke()

    def close(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
