"""How a command reaches the daemon: the socket, one client per command, notebook names.

Commands talk to the daemon only through the public client API (`runtimed.client`),
as any other client would.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ..client import Client, ClientError
from ..config import default_socket_path


def notebook_ref(raw: str) -> tuple[str, str | None]:
    """A notebook argument: an .ipynb path becomes its absolute path (id and file)."""
    if raw.endswith(".ipynb"):
        path = str(Path(raw).expanduser().resolve())
        return path, path
    return raw, None


def daemon_socket(args: argparse.Namespace) -> Path:
    return args.socket or default_socket_path()


@contextlib.asynccontextmanager
async def connected(
    args: argparse.Namespace,
    notebook_id: str | None = None,
    *,
    path: str | None = None,
    name: str = "runtimed-cli",
) -> AsyncIterator[Client]:
    """A client for one command; when it had to start the daemon, stderr says so."""
    client = Client(
        notebook_id,
        socket_path=daemon_socket(args),
        path=path,
        create=getattr(args, "create", False),
        name=name,
        autostart=getattr(args, "autostart", False),
    )
    async with client:
        if client.autostart_report:
            print(client.autostart_report, file=sys.stderr)
        yield client


def control(args: argparse.Namespace, action: str) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        async with connected(args) as client:
            return await client.request(action)

    return asyncio.run(go())


def require_known(args: argparse.Namespace, notebook_id: str, path: str | None) -> None:
    """A bare name that is neither open nor stored is a typo, unless --create says not.
    (A path is checked by the daemon: it must exist.)"""
    if path is not None or args.create:
        return

    async def go() -> bool:
        async with connected(args) as client:
            rooms = (await client.request("list_rooms"))["rooms"]
            copies = (await client.request("list_stored"))["stored"]
        return any(r["notebook_id"] == notebook_id for r in [*rooms, *copies])

    if not asyncio.run(go()):
        raise ClientError(
            "no_such_notebook",
            f"no notebook {notebook_id!r} is open or stored (a file? give its path, ending "
            "in .ipynb; a new untitled notebook? add --create)",
        )
