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
The token is fresh at each start, written 0600 beside the socket, and compared in
constant time.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import http
import ipaddress
import json
import logging
import mimetypes
import os
import re
import secrets
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, quote, urlsplit

import anyio
import structlog
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ..blob_store import HASH_RE, BlobError
from ..config import token_path
from ..gateway import BodyConnection, Gateway, is_gateway_path
from ..log_safety import Throttle, register_secret
from ..private_files import open_private, read_private
from ..wire import MAX_FRAME_SIZE, Connection, Framing, RemoteProtocolError, Role
from .file_list import list_notebooks
from .web_guard import (
    BLOB_CSP,
    COMMON_HEADERS,
    PAGE_CSP,
    ConnectionGate,
    host_refusal,
    origin_refusal,
)

if TYPE_CHECKING:
    from .server import Daemon

log = structlog.get_logger(__name__)

WEB_ROOT = Path(__file__).parent.parent / "web"
"""The page's sources; the JS build (`make web`) writes its bundle to `WEB_ROOT/dist`."""
WS_PATH = "/ws"

_STATIC_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".map": "application/json",
    ".wasm": "application/wasm",  # compiled while it streams in
}


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


def write_token(path: Path) -> str:
    """A fresh random token, stored 0600 from its first byte (no window for others)."""
    token = secrets.token_urlsafe(32)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = open_private(path, os.O_WRONLY, new=True)
    with os.fdopen(fd, "w") as file:
        file.write(token + "\n")
    return token


def read_token(path: Path) -> str:
    """The token a running daemon wrote beside its socket."""
    return read_private(path).strip()


def page_url(host: str, port: int, token: str, notebook_id: str | None = None) -> str:
    """The address a person opens: the page, with the token (and a notebook) in its query."""
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    query = f"token={quote(token)}"
    if notebook_id:
        query += f"&notebook={quote(notebook_id, safe='')}"
    return f"http://{netloc}/?{query}"


class WebSocketTransport:
    """A peer's frames over a WebSocket: one binary message per frame.

    `send_now` (an error frame right before a close) cannot write synchronously on a
    WebSocket, so the frame waits for `aclose`; `close` only ends the read under way,
    and the handler's `aclose` then sends it and the close frame (no task of its own).
    """

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self._last_frames: list[bytes] = []
        self._closed = False
        self._reading: anyio.CancelScope | None = None

    async def receive(self) -> bytes:
        """The next frame; b"" once the peer is gone or closed. Text or empty messages
        are bad frames."""
        if self._closed:
            return b""
        with anyio.CancelScope() as self._reading:
            try:
                message = await self.ws.recv()
            except ConnectionClosed:
                return b""
            finally:
                self._reading = None
        if self._closed:  # closed while waiting (recv is safe to cancel: nothing is lost)
            return b""
        if isinstance(message, str):
            raise RemoteProtocolError(
                "bad_frame", "text message: runtimed frames travel as binary messages"
            )
        if not message:
            raise RemoteProtocolError("bad_frame", "empty message: a frame needs a type byte")
        return message

    async def send_frames(self, frames: list[bytes]) -> None:
        try:
            for frame in frames:
                await self.ws.send(frame)
        except ConnectionClosed as exc:
            raise ConnectionResetError(f"websocket closed: {exc}") from exc

    def send_now(self, frame: bytes) -> None:
        self._last_frames.append(frame)

    def close(self) -> None:
        self._closed = True
        if self._reading is not None:
            self._reading.cancel()

    async def aclose(self) -> None:
        """The last frames, then the close frame."""
        with contextlib.suppress(ConnectionClosed):
            for frame in self._last_frames:
                await self.ws.send(frame)
        await self.ws.close()


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
            transport.close()
            await transport.aclose()

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
            return _text(http.HTTPStatus.FORBIDDEN, f"forbidden: {refusal}\n")
        if path.startswith("/static/"):
            return await self._static(path.removeprefix("/static/"))
        if is_gateway_path(path):
            authorized = self._authorized(request, url.query)
            return await self.gateway.process_request(request, authorized)
        if path == "/":
            return await self._static("index.html")
        if path not in (WS_PATH, "/files") and not path.startswith("/blob/"):
            return _text(http.HTTPStatus.NOT_FOUND, f"no such page: {path}\n")
        if not self._authorized(request, url.query):
            self.log_refusal("unauthorized", str(ws.remote_address), path, "no or wrong token")
            return _text(
                http.HTTPStatus.UNAUTHORIZED,
                "missing or wrong token: open the URL that `runtimed serve --ws` printed "
                "(the token is also in the file beside the daemon's socket)\n",
            )
        if path == WS_PATH:
            return None
        if path == "/files":
            listing = await asyncio.to_thread(list_notebooks, Path.cwd())
            return _response(http.HTTPStatus.OK, json.dumps(listing).encode(), "application/json")
        return await self._blob(path.removeprefix("/blob/"))

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

    async def _static(self, name: str) -> Response:
        if not _STATIC_NAME.fullmatch(name):
            return _text(http.HTTPStatus.NOT_FOUND, f"no such file: {name}\n")
        for folder in (WEB_ROOT, WEB_ROOT / "dist"):
            path = folder / name
            if path.is_file():
                body = await asyncio.to_thread(path.read_bytes)
                kind = _STATIC_TYPES.get(path.suffix) or mimetypes.guess_type(name)[0]
                return _response(http.HTTPStatus.OK, body, kind or "application/octet-stream")
        if name in ("app.js", "app.css"):
            return _text(
                http.HTTPStatus.SERVICE_UNAVAILABLE,
                f"{name} is not built: run `make web` (npm install and build in js/)\n",
            )
        return _text(http.HTTPStatus.NOT_FOUND, f"no such file: {name}\n")

    async def _blob(self, blob_hash: str) -> Response:
        if not HASH_RE.fullmatch(blob_hash):
            return _text(http.HTTPStatus.BAD_REQUEST, "a blob hash is 64 lowercase hex digits\n")
        blobs = self.daemon.blobs
        try:
            info = blobs.info(blob_hash)
            body = await asyncio.to_thread(blobs.get, blob_hash)
        except BlobError as exc:
            status = (
                http.HTTPStatus.NOT_FOUND
                if exc.code == "blob_not_found"
                else http.HTTPStatus.INTERNAL_SERVER_ERROR
            )
            return _text(status, f"{exc.message}\n")
        # Content-addressed, so never stale; sandboxed, so kernel HTML cannot run here.
        return _response(
            http.HTTPStatus.OK,
            body,
            info.media_type,
            cache="private, max-age=31536000, immutable",
            csp=BLOB_CSP,
        )


def _response(
    status: http.HTTPStatus,
    body: bytes,
    content_type: str,
    *,
    cache: str = "no-cache",
    csp: str = PAGE_CSP,
) -> Response:
    """Every answer of the port, with one of each header (the page's policy unless a
    blob's own)."""
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", cache),
            ("Content-Security-Policy", csp),
            ("X-Frame-Options", "SAMEORIGIN" if csp == BLOB_CSP else "DENY"),
            *COMMON_HEADERS,
            ("Connection", "close"),
        ]
    )
    return Response(status.value, status.phrase, headers, body)


def _text(status: http.HTTPStatus, message: str) -> Response:
    return _response(status, message.encode(), "text/plain; charset=utf-8")
