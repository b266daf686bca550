"""The WebSocket listener: the same rooms for browsers, and the page that shows them.

One port answers two kinds of request (websockets' `process_request` sees every HTTP
request before the upgrade):

- `GET /ws` upgrades to a WebSocket that carries the runtimed protocol with MESSAGE
  framing: one typed frame per binary message, no preamble, no length prefix. Each
  connection is driven by `Daemon.run_connection`, exactly like a Unix-socket one.
- Plain HTTP: `/` (the notebook page), `/static/<file>` (its assets),
  `/blob/<hash>` (a blob the doc refers to: output manifests, stream chunks, widget
  values) and `/files` (the notebooks in the daemon's working directory).
- The Kernel Gateway API (`/api…`, `/kernelspecs/…`, and the kernel WebSocket
  `/api/kernels/<id>/channels`), answered by `runtimed.gateway` (docs/gateway.md).

A browser lets any web site open a WebSocket to 127.0.0.1, so every request first
passes `web_guard`'s Host and Origin checks (403 otherwise: DNS rebinding, another
site), and everything that reveals or changes a notebook (`/ws`, `/blob/`, `/files`) demands the
token, given as `?token=` or `Authorization: Bearer`, and refused with 401 before any
upgrade. The page (`/`) and its assets are the same for everyone and need none: the
page takes the token from its address and keeps it in memory (`js/src/page/token.js`).
The token is fresh at each start, written 0600 beside the socket (`web_token`), and
compared in constant time. The HTTP answers are in `web_responses`, a room peer's
transport in `web_transport`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import http
import ipaddress
import logging
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import structlog
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from ..config import token_path
from ..gateway import BodyConnection, Gateway, is_gateway_path
from ..log_safety import Throttle, register_secret
from ..wire import MAX_FRAME_SIZE, Connection, Framing, Role
from .web_guard import ConnectionGate, host_refusal, origin_refusal
from .web_responses import blob, notebook_list, static_file, text
from .web_token import page_url, write_token
from .web_transport import WebSocketTransport

if TYPE_CHECKING:
    from .server import Daemon

log = structlog.get_logger(__name__)

WS_PATH = "/ws"


class WebListenerError(RuntimeError):
    """The WebSocket listener cannot start as configured (a refused bind, say)."""


def check_bind_host(host: str, *, allow_remote: bool) -> None:
    """Refuse a non-loopback bind unless explicitly allowed: the token is then all
    that stands between the network and the user's kernels."""
    if allow_remote or host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        raise WebListenerError(
            f"WebSocket host {host!r} is not an IP address: use 127.0.0.1, ::1 or localhost"
        ) from None
    if not loopback:
        raise WebListenerError(
            f"refusing to listen on {host}: not a loopback address "
            "(pass --ws-allow-remote to expose the daemon beyond this machine)"
        )


class GatedConnection(BodyConnection):
    """A connection that holds a place in the gate until its HTTP request has arrived;
    when the gate is full it is closed at once (idle sockets must not eat every fd).
    Its parser reads request bodies too (the Kernel Gateway API POSTs JSON)."""

    def __init__(
        self,
        *args: object,
        gate: ConnectionGate,
        on_refused: Callable[[str], None],
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.gate = gate
        self.on_refused = on_refused
        self.waiting_peer: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = str((transport.get_extra_info("peername") or ("?",))[0])
        if self.gate.admit(peer):
            self.waiting_peer = peer
            return
        transport.abort()
        self.on_refused(peer)

    def request_arrived(self) -> None:
        if self.waiting_peer is not None:
            self.gate.release(self.waiting_peer)
            self.waiting_peer = None

    def connection_lost(self, exc: Exception | None) -> None:
        self.request_arrived()
        super().connection_lost(exc)


class WebListener:
    """The daemon's WebSocket + HTTP port; `start` binds it, `close` stops accepting."""

    def __init__(self, daemon: Daemon, server: Server, token: str, host: str) -> None:
        self.daemon = daemon
        self.server = server
        self.token = token
        self.host = host
        self.gateway = Gateway(daemon)
        self.log = log.bind(host=host, port=self.port)
        # Refusals are logged once per interval per kind: a flood must not fill the disk.
        self.refusals = Throttle()
        register_secret(token)

    @classmethod
    async def start(cls, daemon: Daemon) -> WebListener:
        """Bind the configured host and port and write a fresh token beside the socket."""
        settings = daemon.settings
        assert settings.ws is not None
        host, port = settings.ws
        check_bind_host(host, allow_remote=settings.ws_allow_remote)
        token = write_token(token_path(settings.socket_path))
        listener: WebListener | None = None

        async def handler(ws: ServerConnection) -> None:
            assert listener is not None
            await listener._run_websocket(ws)

        async def process_request(ws: ServerConnection, request: Request) -> Response | None:
            assert listener is not None
            return await listener._process_request(ws, request)

        def refused(peer: str) -> None:
            if listener is not None:
                reason = "too many connections without a request"
                listener.log_refusal("connection_refused", peer, "", reason)

        gate = ConnectionGate(settings.ws_max_waiting, settings.ws_max_waiting_per_peer)

        try:
            server = await serve(
                handler,
                host,
                port,
                process_request=process_request,
                max_size=MAX_FRAME_SIZE,
                compression=None,  # loopback: deflate would only cost CPU
                logger=logging.getLogger("runtimed.daemon.websocket.wire"),
                open_timeout=settings.handshake_timeout,
                create_connection=partial(  # type: ignore[arg-type]
                    GatedConnection, gate=gate, on_refused=refused
                ),
            )
        except OSError as exc:
            hint = ""
            if exc.errno == errno.EADDRINUSE:
                hint = f" (something else uses port {port}: pick another, --ws {host}:PORT)"
            raise WebListenerError(f"cannot listen on {host}:{port}: {exc.strerror}{hint}") from exc
        listener = cls(daemon, server, token, host)
        return listener

    @property
    def port(self) -> int:
        """The bound port (the real one when the settings asked for port 0)."""
        return next(iter(self.server.sockets)).getsockname()[1]

    def url(self, notebook_id: str | None = None) -> str:
        return page_url(self.host, self.port, self.token, notebook_id)

    def close(self) -> None:
        """Stop accepting; open connections are ended by the daemon's shutdown, in order."""
        self.server.close(close_connections=False)

    async def wait_closed(self) -> None:
        await self.server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            token_path(self.daemon.settings.socket_path).unlink()

    # --- WebSocket ----------------------------------------------------------------------

    async def _run_websocket(self, ws: ServerConnection) -> None:
        if ws.request is not None and self.gateway.is_channels(ws.request):
            await self.gateway.run_channels(ws)
            return
        transport = WebSocketTransport(ws)
        conn = Connection(Role.SERVER, framing=Framing.MESSAGE)
        try:
            await self.daemon.run_connection(conn, transport, transport.receive)
        finally:
            await transport.wait_closed()

    # --- HTTP ---------------------------------------------------------------------------

    async def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        """Answer plain HTTP, or return None to let a WebSocket upgrade go ahead."""
        if isinstance(ws, GatedConnection):
            ws.request_arrived()
        url = urlsplit(request.path)
        path = url.path
        refusal = host_refusal(
            request.headers.get("Host"), allow_remote=self.daemon.settings.ws_allow_remote
        ) or origin_refusal(request.headers.get("Origin"), request.headers.get("Host"))
        if refusal is not None:
            self.log_refusal("forbidden", str(ws.remote_address), path, refusal)
            return text(http.HTTPStatus.FORBIDDEN, f"forbidden: {refusal}\n")
        if path.startswith("/static/"):
            return await static_file(path.removeprefix("/static/"))
        if is_gateway_path(path):
            authorized = self._authorized(request, url.query)
            return await self.gateway.process_request(request, authorized)
        if path == "/":
            return await static_file("index.html")
        if path not in (WS_PATH, "/files") and not path.startswith("/blob/"):
            return text(http.HTTPStatus.NOT_FOUND, f"no such page: {path}\n")
        if not self._authorized(request, url.query):
            self.log_refusal("unauthorized", str(ws.remote_address), path, "no or wrong token")
            return text(
                http.HTTPStatus.UNAUTHORIZED,
                "missing or wrong token: open the URL that `runtimed serve --ws` printed "
                "(the token is also in the file beside the daemon's socket)\n",
            )
        if path == WS_PATH:
            return None
        if path == "/files":
            return await notebook_list()
        return await blob(self.daemon.blobs, path.removeprefix("/blob/"))

    def log_refusal(self, event: str, remote: str, path: str, reason: str) -> None:
        """One warning per kind and interval, with how many were left out before it."""
        dropped = self.refusals.passes(event)
        if dropped is not None:
            self.log.warning(event, path=path, remote=remote, reason=reason, left_out=dropped)

    def _authorized(self, request: Request, query: str) -> bool:
        given = parse_qs(query).get("token", [""])[0]
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme in ("Bearer", "token"):  # `token` is what jupyter_server's GatewayClient sends
            given = value.strip()
        return hmac.compare_digest(given.encode(), self.token.encode())
