"""The room's request handlers: one per protocol action on the notebook channel.

Each handler checks its request against the room and asks the room to act; the room
(room.py) stays the only writer of the doc. A failure is a RuntimedError whose code
the client receives as is (docs/errors.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..comms.comm_state import b64, parse_comm_update
from ..errors import RequestFailed
from ..kernel import KernelSession
from ..kernel.gateway_target import GatewayTarget
from ..wire import messages as m
from . import notebook_file
from .paths import checked_ipynb_path
from .peer import Peer
from .room_files import notebook_saver

if TYPE_CHECKING:
    from ..config import Settings
    from .room import NotebookRoom

DEFAULT_KERNEL = "python3"


class RoomRequests:
    """Dispatches a room's requests to their handlers."""

    def __init__(self, room: NotebookRoom) -> None:
        self.room = room
        self._by_type = self._handlers()

    async def handle(self, peer: Peer | None, request: Any) -> dict:
        handler = self._by_type.get(type(request))
        if handler is None:
            raise RequestFailed("unknown_action", f"{type(request).__name__} is not a room action")
        return await handler(peer, request)

    def _handlers(self) -> dict[type, Callable[..., Awaitable[dict]]]:
        return {
            m.LaunchKernel: self._launch_kernel,
            m.AttachKernel: self._attach_kernel,
            m.ExecuteCell: self._execute_cell,
            m.Execute: self._execute,
            m.SendComm: self._send_comm,
            m.InterruptKernel: self._interrupt_kernel,
            m.RestartKernel: self._restart_kernel,
            m.ShutdownKernel: self._shutdown_kernel,
            m.GetComms: self._get_comms,
            m.Save: self._save,
            m.KernelInfo: self._kernel_info,
            m.GetBlob: self._get_blob,
            m.Resync: self._resync,
            m.Compact: self._compact,
            m.Trust: self._trust,
            m.TrustInfo: self._trust_info,
        }

    async def _launch_kernel(self, peer: Peer | None, req: m.LaunchKernel) -> dict:
        room = self.room
        async with room.kernel_binding.lock:
            if room.kernel is not None and room.kernel_status not in ("dead", "shutdown"):
                return {"kernel_name": room.kernel.kernel_name, "status": room.kernel_status}
            name = req.kernel_name or self._default_kernel_name()
            cwd = req.cwd or (str(room.ipynb_path.parent) if room.ipynb_path else None)
            if cwd is not None and not Path(cwd).is_dir():
                raise RequestFailed("bad_request", f"cwd {cwd!r} is not a directory")
            kernel = await room.start_kernel(
                KernelSession.launch,
                kernel_name=name,
                cwd=cwd,
                startup_timeout=room.settings.kernel_startup_timeout,
                shutdown_timeout=room.settings.kernel_shutdown_timeout,
                gateway=gateway_target(room.settings),
            )
            return {"kernel_name": kernel.kernel_name, "status": room.kernel_status}

    async def _attach_kernel(self, peer: Peer | None, req: m.AttachKernel) -> dict:
        room = self.room
        path = Path(req.connection_file).expanduser()
        if not path.is_file():
            raise RequestFailed("bad_request", f"connection file {str(path)!r} does not exist")
        elsewhere = room.kernel_bridged_in(str(path))
        if elsewhere is not None:
            raise RequestFailed(
                "kernel_in_use",
                f"the kernel of {path.name} is already bridged into {elsewhere}: one room "
                "per kernel (open that notebook instead)",
            )
        kernel = room.kernel
        if kernel is not None and kernel.owned and room.kernel_status not in ("dead", "shutdown"):
            if not req.replace:
                raise RequestFailed(
                    "kernel_running",
                    f"this notebook runs a kernel it launched ({kernel.kernel_name}, "
                    f"{room.kernel_status}); attaching shuts it down and its state is lost: "
                    "ask again with replace (runtimed attach --replace)",
                )
            room.log.warning("launched_kernel_replaced", kernel=kernel.kernel_name)
        async with room.kernel_binding.lock:
            kernel = await room.start_kernel(KernelSession.attach, connection_file=str(path))
        # Widgets made before we arrived: show them now, from the kernel's own state.
        widgets = await room.kernel_binding.reconcile_now()
        return {"kernel_name": kernel.kernel_name, "status": room.kernel_status, **widgets}

    def _default_kernel_name(self) -> str:
        room = self.room
        spec = room.doc.get_metadata().get("kernelspec")
        name = spec.get("name") if isinstance(spec, dict) else None
        return name if isinstance(name, str) and name else DEFAULT_KERNEL

    async def _execute_cell(self, peer: Peer | None, req: m.ExecuteCell) -> dict:
        room = self.room
        cell = room.doc.get_cell(req.cell_id)
        if cell is None:
            raise RequestFailed("no_such_cell", f"no cell with id {req.cell_id!r}")
        if cell.cell_type != "code":
            raise RequestFailed("bad_request", f"cell {req.cell_id!r} is {cell.cell_type}")
        return room.kernel_binding.start_execution(cell.source, req.cell_id)

    async def _execute(self, peer: Peer | None, req: m.Execute) -> dict:
        room = self.room
        if req.cell_id is not None and room.doc.get_cell(req.cell_id) is None:
            raise RequestFailed("no_such_cell", f"no cell with id {req.cell_id!r}")
        return room.kernel_binding.start_execution(req.code, req.cell_id)

    async def _send_comm(self, peer: Peer | None, req: m.SendComm) -> dict:
        room = self.room
        kernel = room.require_kernel()
        if req.comm_id not in room.comms:
            raise RequestFailed("no_such_comm", f"no live comm with id {req.comm_id!r}")
        buffers = list(req.buffers or [])
        # Validated first (bad_comm_message), applied only once the kernel took it, so
        # the stores never hold a change the kernel did not get. ipywidgets echoes it
        # back (echo_update), broadcast in kernel order, merging to the same state.
        update = parse_comm_update({"comm_id": req.comm_id, "data": req.data}, buffers)
        msg_id = kernel.send_comm(req.comm_id, req.data, buffers=buffers)
        if update is not None:
            room.comms.client_update(update)
        return {"msg_id": msg_id}

    async def _interrupt_kernel(self, peer: Peer | None, req: m.InterruptKernel) -> dict:
        room = self.room
        await room.require_kernel().interrupt()
        return {"status": room.kernel_status}

    async def _restart_kernel(self, peer: Peer | None, req: m.RestartKernel) -> dict:
        room = self.room
        async with room.kernel_binding.lock:
            kernel = room.require_kernel()
            await kernel.restart()  # a KernelError answers with its own code
            return {"status": room.kernel_status}

    async def _shutdown_kernel(self, peer: Peer | None, req: m.ShutdownKernel) -> dict:
        room = self.room
        async with room.kernel_binding.lock:
            if room.kernel is None:
                raise RequestFailed("no_kernel", "no kernel to shut down")
            await room.kernel_binding.shutdown()
            return {"status": room.kernel_status}

    async def _resync(self, peer: Peer | None, req: m.Resync) -> dict:
        room = self.room
        room.require_kernel()
        return await room.kernel_binding.reconcile_now()

    async def _get_comms(self, peer: Peer | None, req: m.GetComms) -> dict:
        room = self.room
        return {"comms": room.comms.snapshot()}

    async def _kernel_info(self, peer: Peer | None, req: m.KernelInfo) -> dict:
        room = self.room
        kernel = room.require_kernel()
        return {
            "status": room.kernel_status,
            "kernel_info": kernel.kernel_info,
            "connection_file": kernel.connection_file,
        }

    async def _get_blob(self, peer: Peer | None, req: m.GetBlob) -> dict:
        room = self.room
        info = room.blobs.info(req.hash)  # a BlobError answers with its own code
        data = room.blobs.get(req.hash)
        return {"hash": req.hash, "media_type": info.media_type, "data": b64([data])[0]}

    async def _save(self, peer: Peer | None, req: m.Save) -> dict:
        room = self.room
        target = req.path or room.ipynb_path
        if target is None:
            raise RequestFailed("bad_request", "this notebook has no file: give save a path")
        target = checked_ipynb_path(target)
        if room.saver is None:
            room.ipynb_path = target
            room.saver = notebook_saver(room, target)
        try:
            if target == room.saver.path:
                await room.saver.save(rewrite=True)
                signed = room.saver.signed
            else:  # "save as": the caller asked for that file to be replaced
                room.coalescer.flush_now()
                nb = notebook_file.render(room.doc, room.blobs)
                current = notebook_file.read(target)
                expected = current.sha256 if current is not None else None
                data = notebook_file.encode(nb)
                await asyncio.to_thread(notebook_file.write, target, data, expected=expected)
                signed = room.trust.sign_saved(nb)
        except (OSError, notebook_file.FileChanged) as exc:
            raise RequestFailed("save_failed", f"could not save {target}: {exc}") from exc
        return {"path": str(target), "signed": signed}

    async def _compact(self, peer: Peer | None, req: m.Compact) -> dict:
        result = await self.room.compactor.compact_now()
        if result is None:
            raise RequestFailed("room_closed", "the room closed before it was compacted")
        return result

    async def _trust(self, peer: Peer | None, req: m.Trust) -> dict:
        room = self.room
        room.coalescer.flush_now()
        stored = room.trust.trust_all()
        room.log.info("trusted", peer_id=peer.id if peer else None, stored=stored)
        room.refresh_trust()
        if not stored:
            raise RequestFailed(
                "trust_store_failed",
                "the notebook is trusted until the daemon stops: its signatures could not "
                "be stored (see the daemon's log)",
            )
        return room.trust.state

    async def _trust_info(self, peer: Peer | None, req: m.TrustInfo) -> dict:
        room = self.room
        room.coalescer.flush_now()
        room.refresh_trust()
        return room.trust.state


def gateway_target(settings: Settings) -> GatewayTarget | None:
    """Where launched kernels run: the configured Kernel Gateway, or None (locally)."""
    if settings.gateway_url is None:
        return None
    return GatewayTarget(
        settings.gateway_url,
        settings.gateway_token,
        timeout=settings.gateway_timeout,
        reconnect_timeout=settings.gateway_reconnect_timeout,
        poll_interval=settings.gateway_poll_interval,
    )
