"""The client's side of the handshake: the hello it sends, and what the daemon's reply means.

A refusal becomes a ClientError with the daemon's code; a protocol version mismatch
names both versions and the side to replace (docs/protocol.md, Handshake).
"""

from __future__ import annotations

import re
from typing import Any

from .. import __version__
from ..wire import Handshake
from .errors import ClientError


def hello(
    notebook_id: str | None,
    *,
    protocol: int,
    name: str,
    snapshot: bool,
    path: str | None,
    create: bool,
) -> dict[str, Any]:
    """The hello for the control channel (no notebook) or for one notebook's room."""
    payload: dict[str, Any] = {
        "protocol": protocol,
        "client": {"name": name, "version": __version__},
    }
    if notebook_id is None:
        payload["channel"] = "control"
    else:
        payload.update(channel="notebook", notebook_id=notebook_id, snapshot=snapshot)
        if path is not None:
            payload["path"] = path
        if create:
            payload["create"] = True
    return payload


def accepted(reply: object, *, protocol: int, address: str) -> dict[str, Any]:
    """The daemon's handshake reply when it took us in; ClientError when it did not."""
    if not isinstance(reply, Handshake):
        raise ClientError("bad_handshake", f"expected the handshake reply, got {reply!r}")
    if not reply.payload.get("ok"):
        error = reply.payload.get("error") or {}
        code, message = error.get("code", "bad_handshake"), error.get("message", "")
        if code == "unsupported_version":
            raise _version_mismatch(protocol, _spoken_version(message), address)
        raise ClientError(code, message)
    daemon_protocol = reply.payload.get("protocol")
    if daemon_protocol != protocol:
        raise _version_mismatch(protocol, daemon_protocol, address)
    return reply.payload


def _version_mismatch(ours: int, daemon_protocol: object, address: str) -> ClientError:
    """Both versions, and what to run: the older side is the one to replace."""
    theirs = daemon_protocol if isinstance(daemon_protocol, int) else None
    if theirs is not None and theirs > ours:
        advice = (
            "upgrade this client (pip install -U runtimed), or replace the daemon with "
            "this installation's: `runtimed stop && runtimed start`"
        )
    else:
        advice = "restart the daemon from this installation: `runtimed stop && runtimed start`"
    return ClientError(
        "unsupported_version",
        f"client speaks protocol {ours}, the daemon at {address} speaks "
        f"{theirs if theirs is not None else 'another version'}: {advice}",
    )


def _spoken_version(refusal: str) -> int | None:
    """The daemon's version from its refusal ("... (this daemon speaks 1)"), if named."""
    match = re.search(r"speaks (\d+)", refusal)
    return int(match.group(1)) if match else None
