"""The web port's plain-HTTP answers: the page and its assets, blobs, the notebook list.

Every answer carries one of each security header (`web_guard`); a blob gets its own
sandboxing policy, so HTML a kernel produced cannot run as the page.
"""

from __future__ import annotations

import asyncio
import http
import json
import mimetypes
import re
from pathlib import Path

from websockets.datastructures import Headers
from websockets.http11 import Response

from ..blob_store import HASH_RE, BlobError, BlobStore
from .file_list import list_notebooks
from .web_guard import BLOB_CSP, COMMON_HEADERS, PAGE_CSP

WEB_ROOT = Path(__file__).parent.parent / "web"
"""The page's sources; the JS build (`make web`) writes its bundle to `WEB_ROOT/dist`."""

_STATIC_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".map": "application/json",
    ".wasm": "application/wasm",  # compiled while it streams in
}


async def static_file(name: str) -> Response:
    """The page (`index.html`) or one of its assets, from the sources or the JS build."""
    if not _STATIC_NAME.fullmatch(name):
        return text(http.HTTPStatus.NOT_FOUND, f"no such file: {name}\n")
    for folder in (WEB_ROOT, WEB_ROOT / "dist"):
        path = folder / name
        if path.is_file():
            body = await asyncio.to_thread(path.read_bytes)
            kind = _STATIC_TYPES.get(path.suffix) or mimetypes.guess_type(name)[0]
            return response(http.HTTPStatus.OK, body, kind or "application/octet-stream")
    if name in ("app.js", "app.css"):
        return text(
            http.HTTPStatus.SERVICE_UNAVAILABLE,
            f"{name} is not built: run `make web` (npm install and build in js/)\n",
        )
    return text(http.HTTPStatus.NOT_FOUND, f"no such file: {name}\n")


async def blob(blobs: BlobStore, blob_hash: str) -> Response:
    """A blob the doc refers to, served sandboxed with its own media type."""
    if not HASH_RE.fullmatch(blob_hash):
        return text(http.HTTPStatus.BAD_REQUEST, "a blob hash is 64 lowercase hex digits\n")
    try:
        info = blobs.info(blob_hash)
        body = await asyncio.to_thread(blobs.get, blob_hash)
    except BlobError as exc:
        status = (
            http.HTTPStatus.NOT_FOUND
            if exc.code == "blob_not_found"
            else http.HTTPStatus.INTERNAL_SERVER_ERROR
        )
        return text(status, f"{exc.message}\n")
    # Content-addressed, so never stale; sandboxed, so kernel HTML cannot run here.
    return response(
        http.HTTPStatus.OK,
        body,
        info.media_type,
        cache="private, max-age=31536000, immutable",
        csp=BLOB_CSP,
    )


def response(
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


def text(status: http.HTTPStatus, message: str) -> Response:
    """A short plain-text answer: errors and refusals, each ending in a newline."""
    return response(status, message.encode(), "text/plain; charset=utf-8")


async def notebook_list() -> Response:
    """`/files`: the notebooks in the daemon's working directory, as JSON."""
    listing = await asyncio.to_thread(list_notebooks, Path.cwd())
    return response(http.HTTPStatus.OK, json.dumps(listing).encode(), "application/json")
