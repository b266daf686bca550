"""Typed, validated handshake and request messages (docs/protocol.md).

`protocol.Connection` only checks a frame's shape; this module checks what a hello or a
request means, so a handler receives a typed struct and never a raw dict. Invalid input
raises `RequestError` with a spec code and a message naming the offending field.
Request params reject unknown keys (a typo must not pass silently); the hello ignores
them, so a newer client can still greet an older daemon.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any, Final, Literal

import msgspec

from ..errors import RuntimedError
from .events import PROTOCOL_VERSION, ErrorInfo, Request, Response

Channel = Literal["notebook", "control"]


class RequestError(RuntimedError):
    """A hello or request that fails validation; `code` is a spec error code."""


def _describe(exc: msgspec.ValidationError) -> str:
    """Reword msgspec's "Expected `str`, got `int` - at `$.cell_id`" to name the field
    first: "cell_id: expected str, got int"."""
    text, _, where = str(exc).partition(" - at `$")
    text = text.replace("`", "")
    text = text[:1].lower() + text[1:]
    field = where.removeprefix(".").removesuffix("`")
    return f"{field}: {text}" if field else text


# ------------------------------------------------------------------------- handshake


class ClientInfo(msgspec.Struct, frozen=True):
    name: str
    version: str | None = None


class HandshakeHello(msgspec.Struct, frozen=True, kw_only=True):
    """A client's first frame. The notebook channel names its room in `notebook_id`."""

    channel: Channel
    notebook_id: str | None = None
    path: str | None = None
    snapshot: bool = False
    create: bool = False
    client: ClientInfo | None = None
    protocol: int = PROTOCOL_VERSION


def parse_handshake(payload: dict[str, Any]) -> HandshakeHello:
    """Validate a client's hello; raises `RequestError` ("bad_handshake", ...)."""
    try:
        hello = msgspec.convert(payload, HandshakeHello)
    except msgspec.ValidationError as exc:
        raise RequestError("bad_handshake", _describe(exc)) from None
    if hello.protocol != PROTOCOL_VERSION:
        raise RequestError(
            "unsupported_version",
            f"protocol {hello.protocol} is not supported (this daemon speaks {PROTOCOL_VERSION})",
        )
    if hello.channel == "notebook":
        if not hello.notebook_id:
            raise RequestError("bad_handshake", "notebook_id: the notebook channel needs one")
        if hello.path == "":
            raise RequestError("bad_handshake", "path: must not be empty")
    elif hello.notebook_id is not None or hello.path is not None or hello.snapshot or hello.create:
        raise RequestError(
            "bad_handshake", "the control channel takes no notebook_id, path, snapshot or create"
        )
    return hello


def handshake_ok(
    *, daemon_version: str, notebook_id: str | None, epoch: int | None = None
) -> dict[str, Any]:
    """The daemon's successful handshake reply (`epoch` on the notebook channel)."""
    reply = {
        "ok": True,
        "protocol": PROTOCOL_VERSION,
        "daemon_version": daemon_version,
        "notebook_id": notebook_id,
    }
    if epoch is not None:
        reply["epoch"] = epoch
    return reply


# -------------------------------------------------------------------------- requests


class RequestParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every action's params: unknown keys are an error, not ignored."""


BlobHash = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]


class LaunchKernel(RequestParams):
    kernel_name: str | None = None
    cwd: str | None = None


class AttachKernel(RequestParams):
    connection_file: str
    replace: bool = False  # shut down a kernel this room launched, to attach instead


class ExecuteCell(RequestParams):
    cell_id: str


class Execute(RequestParams):
    code: str
    cell_id: str | None = None


class SendComm(RequestParams):
    """`buffers` arrive base64 on the wire and are decoded to bytes here."""

    comm_id: str
    data: dict[str, Any]
    buffers: list[bytes] = []


class InterruptKernel(RequestParams):
    """Interrupt the running cell; result `{status}`."""


class RestartKernel(RequestParams):
    """Restart the kernel (comm state is cleared); result `{status}`."""


class ShutdownKernel(RequestParams):
    """Shut the kernel down; result `{status}`."""


class GetComms(RequestParams):
    """The legacy CommState view; result `{comms: [CommSnapshot...]}`."""


class Save(RequestParams):
    path: str | None = None


class KernelInfo(RequestParams):
    """The kernel's `kernel_info_reply` content and status."""


class GetBlob(RequestParams):
    hash: BlobHash


class Resync(RequestParams):
    """Reconcile CommState and the doc with the kernel's own widget state (request_states)."""


class Compact(RequestParams):
    """Compact the room's doc now, whatever the budget (docs/compaction.md)."""


class Trust(RequestParams):
    """The user vouches for the notebook as the room holds it; result as TrustInfo."""


class TrustInfo(RequestParams):
    """Whether the room is trusted; result `{trusted, untrusted_cells, comms_trusted}`."""


class Ping(RequestParams):
    """Liveness check of the daemon."""


class DaemonInfo(RequestParams):
    """Version, pid, rooms and kernels of the daemon."""


class ListRooms(RequestParams):
    """The open notebook rooms."""


class ShutdownDaemon(RequestParams):
    """Stop the daemon, in order."""


class Gc(RequestParams):
    """Delete blobs that no notebook refers to (and older than `min_age` seconds)."""

    min_age: Annotated[float, msgspec.Meta(ge=0)] = 3600.0
    drop_missing: bool = False  # also forget stored copies whose .ipynb is gone


class ListStored(RequestParams):
    """The stored copies in the data dir: notebook, .ipynb path, size, open or not."""


class Forget(RequestParams):
    """Delete one notebook's stored copy (refused while its room is open)."""

    notebook_id: str


NOTEBOOK_ACTIONS: Final[Mapping[str, type[RequestParams]]] = MappingProxyType(
    {
        "launch_kernel": LaunchKernel,
        "attach_kernel": AttachKernel,
        "execute_cell": ExecuteCell,
        "execute": Execute,
        "send_comm": SendComm,
        "interrupt_kernel": InterruptKernel,
        "restart_kernel": RestartKernel,
        "shutdown_kernel": ShutdownKernel,
        "get_comms": GetComms,
        "save": Save,
        "kernel_info": KernelInfo,
        "get_blob": GetBlob,
        "resync": Resync,
        "compact": Compact,
        "trust": Trust,
        "trust_info": TrustInfo,
    }
)

CONTROL_ACTIONS: Final[Mapping[str, type[RequestParams]]] = MappingProxyType(
    {
        "ping": Ping,
        "daemon_info": DaemonInfo,
        "list_rooms": ListRooms,
        "shutdown_daemon": ShutdownDaemon,
        "gc": Gc,
        "list_stored": ListStored,
        "forget": Forget,
    }
)

_ACTIONS: Final[Mapping[str, Mapping[str, type[RequestParams]]]] = MappingProxyType(
    {"notebook": NOTEBOOK_ACTIONS, "control": CONTROL_ACTIONS}
)


def parse_request(request: Request, *, channel: Channel) -> RequestParams:
    """The typed params of a request on `channel`; raises `RequestError`.

    Unknown actions get "unknown_action" with the channel's known actions listed; bad
    params get "bad_request" naming the field and what was expected.
    """
    actions = _ACTIONS[channel]
    params_type = actions.get(request.action)
    if params_type is None:
        other = "control" if channel == "notebook" else "notebook"
        hint = (
            f"it is a {other}-channel action"
            if request.action in _ACTIONS[other]
            else f"known actions: {', '.join(actions)}"
        )
        raise RequestError(
            "unknown_action", f"unknown action {request.action!r} on the {channel} channel; {hint}"
        )
    try:
        return msgspec.convert(request.params, params_type)
    except msgspec.ValidationError as exc:
        raise RequestError("bad_request", f"{request.action}: {_describe(exc)}") from None


def ok_response(request_id: int | str | None, result: dict[str, Any]) -> Response:
    """The RESPONSE for a request that succeeded."""
    return Response(request_id, True, result=result)


def error_response(request_id: int | str | None, code: str, message: str) -> Response:
    """The RESPONSE for a request that failed; the connection stays open."""
    return Response(request_id, False, error=ErrorInfo(code, message))
