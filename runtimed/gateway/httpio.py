"""HTTP requests with a body, and jupyter_server's JSON responses, on the websockets port.

websockets parses only what a WebSocket handshake needs: a request line and headers,
and it refuses any request that carries a body. The Kernel Gateway API has POSTs with
JSON bodies (`POST /api/kernels {"name": ...}`), so each connection's sans-I/O
protocol gets a parser that also reads a `Content-Length` body (at most
`MAX_BODY`); everything after the request is websockets' own code.
"""

from __future__ import annotations

import dataclasses
import http
import json
from collections.abc import Generator
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import InvalidMessage
from websockets.http11 import Request, Response, parse_headers, parse_line
from websockets.protocol import CONNECTING, Protocol
from websockets.server import ServerProtocol

from ..web_guard import COMMON_HEADERS

MAX_BODY = 1 << 20  # a kernel start request is a few hundred bytes
API_CSP = "default-src 'none'; frame-ancestors 'none'"


@dataclasses.dataclass
class BodyRequest(Request):
    """A request as websockets knows it, plus the body it would have refused."""

    body: bytes = b""


def read_request(protocol: ServerProtocol) -> Generator[None, None, BodyRequest]:
    """Request line, headers, then a `Content-Length` body (no chunked encoding)."""
    read_line = protocol.reader.read_line
    line = yield from parse_line(read_line)
    try:
        method, path, version = bytes(line).decode("ascii").split(" ", 2)
    except (UnicodeDecodeError, ValueError):
        raise ValueError(f"invalid HTTP request line: {bytes(line)[:100]!r}") from None
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise ValueError(f"unsupported protocol {version!r}")
    headers = yield from parse_headers(read_line)
    if "Transfer-Encoding" in headers:
        raise ValueError("transfer codings are not supported: send a Content-Length")
    lengths = set(headers.get_all("Content-Length"))
    if len(lengths) > 1:
        raise ValueError("conflicting Content-Length headers")
    length = int(lengths.pop()) if lengths else 0
    if not 0 <= length <= MAX_BODY:
        raise ValueError(f"a request body is at most {MAX_BODY} bytes")
    body = bytes((yield from protocol.reader.read_exact(length))) if length else b""
    return BodyRequest(path, headers, method, version, body=body)


class BodyServerProtocol(ServerProtocol):
    """websockets' server protocol whose request parser reads bodies too."""

    def parse(self) -> Generator[None]:
        if self.state is CONNECTING:
            try:
                request = yield from read_request(self)
            except Exception as exc:
                # As websockets does for any unparsable request: no answer, just EOF.
                self.handshake_exc = InvalidMessage("did not receive a valid HTTP request")
                self.handshake_exc.__cause__ = exc
                self.send_eof()
                self.parser = self.discard()
                next(self.parser)
                yield
            if self.debug:  # the access lines websockets' own parser writes at debug
                self.logger.debug("< %s %s %s", request.method, request.path, request.protocol)
                for key, value in request.headers.raw_items():
                    self.logger.debug("< %s: %s", key, value)
            self.events.append(request)
        yield from Protocol.parse(self)


class BodyConnection(ServerConnection):
    """`serve(create_connection=BodyConnection)`: swaps in the body-reading parser
    before the first byte arrives (websockets builds the protocol object itself)."""

    def __init__(self, protocol: ServerProtocol, *args: Any, **kwargs: Any) -> None:
        protocol.__class__ = BodyServerProtocol
        protocol.parser = protocol.parse()
        next(protocol.parser)
        super().__init__(protocol, *args, **kwargs)


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer (no body for 204), closed after sending like every answer here."""
    data = b"" if status == http.HTTPStatus.NO_CONTENT else json.dumps(body).encode()
    return raw_response(status, data, "application/json", headers)


def raw_response(
    status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None
) -> Response:
    """An answer with the port's common headers; API data is never a page to run."""
    phrase = http.HTTPStatus(status).phrase
    fields = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(data))),
            ("Cache-Control", "no-store"),
            ("Content-Security-Policy", API_CSP),
            ("X-Frame-Options", "DENY"),
            *COMMON_HEADERS,
            ("Connection", "close"),
        ]
    )
    for name, value in (headers or {}).items():
        fields[name] = value
    return Response(status, phrase, fields, data)


class ApiError(Exception):
    """jupyter_server's `web.HTTPError`: a status and a message, sent as its APIHandler
    sends errors: `{"message": ..., "reason": null}`."""

    def __init__(self, status: int, message: str | None = None) -> None:
        self.status = status
        self.message = message or http.HTTPStatus(status).phrase
        super().__init__(f"{status}: {self.message}")

    def response(self) -> Response:
        return json_response(self.status, {"message": self.message, "reason": None})
