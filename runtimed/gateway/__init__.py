"""The Kernel Gateway API on the `--ws` listener: stock Jupyter front ends through runtimed.

`jupyter lab --gateway-url=http://127.0.0.1:PORT` (and `jupyter server`, Notebook 7)
hands all kernel management to a gateway through jupyter_server's GatewayClient. With
the daemon as that gateway, each kernel runs in its own room, its widgets are mirrored
like any other, and its messages reach the front end without IOPub rate limits.

Modules: `httpio` (request bodies on websockets' port, jupyter_server's JSON errors),
`rest` (the REST endpoints), `kernels` (a gateway kernel, its room and connections),
`channels` (one front end's WebSocket; its frames in `runtimed.kernel.ws_codec`),
`outbox` (the per-connection queue that merges a lagging front end's widget updates),
`control` (the front end's widget control comm, answered from CommState).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from .channels import KernelChannels
from .httpio import ApiError, BodyConnection
from .kernels import GatewayKernels
from .rest import RestApi, channels_kernel, is_gateway_path

if TYPE_CHECKING:
    from ..daemon.server import Daemon

__all__ = ["BodyConnection", "Gateway", "is_gateway_path"]


class Gateway:
    """The API's entry points for the listener: plain HTTP, and the kernel WebSocket."""

    def __init__(self, daemon: Daemon) -> None:
        self.kernels = GatewayKernels(daemon)
        self.rest = RestApi(self.kernels)

    async def process_request(self, request: Request, authorized: bool) -> Response | None:
        """An answer, or None to let `/api/kernels/{id}/channels` upgrade."""
        if not authorized:
            return ApiError(403).response()
        return await self.rest.handle(request, urlsplit(request.path).path)

    def is_channels(self, request: Request) -> bool:
        return channels_kernel(urlsplit(request.path).path) is not None

    async def run_channels(self, ws: ServerConnection) -> None:
        """Relay one front end's WebSocket until either side ends it."""
        assert ws.request is not None
        url = urlsplit(ws.request.path)
        kernel_id = channels_kernel(url.path)
        kernel = self.kernels.get(kernel_id) if kernel_id else None
        if kernel is None:  # shut down between the handshake and now
            await ws.close(code=1011, reason="kernel does not exist")
            return
        session_id = parse_qs(url.query).get("session_id", [""])[0]
        await KernelChannels(ws, kernel, session_id).run()
