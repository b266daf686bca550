"""The token the web port demands, kept beside the socket, and the page address carrying it.

The token is fresh at each start, written 0600 from its first byte; the CLI reads it
back to print the page's address (`runtimed status`, `runtimed start`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from urllib.parse import quote

from ..private_files import open_private, read_private


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
