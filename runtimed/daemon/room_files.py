"""A room's two files, wired to the room: the stored copy and the .ipynb.

The stored copy (persistence.py) holds the doc with its history, for the daemon; the
.ipynb (autosave.py) is the notebook people open elsewhere. Both are written in the
room's task group, after a debounce, and last of all when the room closes.
"""

from __future__ import annotations

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
