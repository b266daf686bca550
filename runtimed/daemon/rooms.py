"""The daemon's room registry: which notebooks are open, how a room is made, when it closes.

A room comes from its stored copy, else from its .ipynb, else is new; a doc that does
not load is quarantined (the file wins). Each open room runs its own task group
(`NotebookRoom.tasks`) inside the registry's, and an idle room is closed by a task the
registry owns (tasks.py has the whole tree and the shutdown order).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from notebook_doc import IpynbError, NotebookDoc, doc_filename, from_ipynb
from notebook_doc import load_or_create as load_doc_file

from ..blob_store import BlobStore
from ..config import Settings
from ..errors import RequestFailed
from ..trust import Notary, notebook_bytes_signed
from . import notebook_file
from .limits import check_room_limit
from .paths import checked_ipynb_path
from .room import NotebookRoom
from .tasks import TaskOwner


class RoomRegistry:
    """The open rooms by notebook id; every room's group runs in `tasks`."""

    def __init__(self, settings: Settings, blobs: BlobStore, notary: Notary, log_: Any) -> None:
        self.settings = settings
        self.blobs = blobs
        self.notary = notary
        self.log = log_
        self.rooms: dict[str, NotebookRoom] = {}
        self.tasks = TaskOwner("rooms")
        self._locks: dict[str, asyncio.Lock] = {}

    async def open(
        self, notebook_id: str, ipynb_path: str | None, *, create: bool = False
    ) -> NotebookRoom:
        """The open room of `notebook_id`, opened now if need be (one opening at a time)."""
        lock = self._locks.setdefault(notebook_id, asyncio.Lock())
        async with lock:
            room = self.rooms.get(notebook_id)
            if room is not None and not room.closed:
                return room
            check_room_limit(self.rooms.values(), self.settings.max_rooms)
            room = self._load(notebook_id, ipynb_path, create=create)
            await self.tasks.start(room.tasks.run)  # its saves may start from here on
            if room.saver is not None:
                try:
                    await room.saver.opened()  # edits made on disk meanwhile, before anyone joins
                except BaseException:
                    await room.tasks.close()
                    raise
            room.occupancy.on_idle = self._close_idle
            room.kernel_bridged_in = self.kernel_bridged_in
            self.rooms[notebook_id] = room
            return room

    def _load(self, notebook_id: str, ipynb_path: str | None, *, create: bool) -> NotebookRoom:
        """The room from its stored copy, else from its file, else new; a path with no
        file fails unless the client asked to create it (no phantom notebooks)."""
        doc_path = self.settings.docs_dir / doc_filename(notebook_id)
        path = checked_ipynb_path(ipynb_path) if ipynb_path else None
        current = _read_notebook_file(path) if path else None
        if path is not None and current is None and not create:
            raise RequestFailed(
                "no_such_notebook",
                f"{path} does not exist (to create it, say so: `create: true` in the "
                "handshake, `--create` on the command line)",
            )
        if doc_path.exists():
            doc, warning = load_doc_file(doc_path, notebook_id)
            if warning:
                self.log.warning("doc_quarantined", notebook_id=notebook_id, detail=warning)
            else:
                return self._room(notebook_id, doc, doc_path, path)
        if current is not None:
            assert path is not None
            doc, signed = self._doc_from_ipynb(notebook_id, current, path)
            room = self._room(notebook_id, doc, doc_path, path, signed=signed)
            if room.saver is not None:
                room.saver.loaded(current)
        else:
            room = self._room(notebook_id, NotebookDoc.new(notebook_id), doc_path, path)
            if path is None:
                room.fresh_heads = room.doc.get_heads()
                return room
            if room.saver is not None:
                room.saver.changed()  # the file the client asked for
        room.persister.changed()
        return room

    def _doc_from_ipynb(
        self, notebook_id: str, version: notebook_file.FileVersion, path: Path
    ) -> tuple[NotebookDoc, bool]:
        """The file's doc, and whether its signature is in the trust store."""
        data = version.data
        try:
            doc = from_ipynb(data, notebook_id=notebook_id, store_blob=self.blobs.put)
        except (OSError, IpynbError) as exc:
            raise RequestFailed("bad_notebook", f"cannot open {path}: {exc}") from exc
        return doc, notebook_bytes_signed(self.notary, data)

    def _room(
        self,
        notebook_id: str,
        doc: NotebookDoc,
        doc_path: Path,
        path: Path | None,
        *,
        signed: bool = False,
    ) -> NotebookRoom:
        return NotebookRoom(
            notebook_id,
            doc,
            settings=self.settings,
            blobs=self.blobs,
            doc_path=doc_path,
            notary=self.notary,
            ipynb_path=path,
            signed=signed,
        )

    def _close_idle(self, room: NotebookRoom) -> None:
        self.tasks.start_soon(self._close, room)

    async def _close(self, room: NotebookRoom) -> None:
        await room.close()
        if self.rooms.get(room.notebook_id) is room:
            del self.rooms[room.notebook_id]

    async def close_all(self) -> None:
        """Close every room in turn (NotebookRoom.close), then end the registry's group."""
        for room in list(self.rooms.values()):
            await room.close()
        self.rooms.clear()
        await self.tasks.close(grace=None)  # idle closes under way finish

    def kernel_bridged_in(self, connection_file: str) -> str | None:
        """The open room whose kernel uses this connection file, if any."""
        wanted = os.path.realpath(connection_file)
        for room in self.rooms.values():
            kernel = room.kernel
            if kernel is None or kernel.connection_file is None or room.closed:
                continue
            if os.path.realpath(kernel.connection_file) == wanted:
                return room.notebook_id
        return None


def _read_notebook_file(path: Path) -> notebook_file.FileVersion | None:
    try:
        return notebook_file.read(path)
    except OSError as exc:
        raise RequestFailed("bad_notebook", f"cannot read {path}: {exc.strerror or exc}") from exc
