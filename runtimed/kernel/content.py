"""The content of the requests the daemon sends a kernel, checked before it is sent."""

from __future__ import annotations

from typing import Any

from .events import KernelError

COMM_MSG_TYPES = ("comm_open", "comm_msg", "comm_close")


def execute_content(
    code: str, *, silent: bool = False, store_history: bool = True, allow_stdin: bool = False
) -> dict[str, Any]:
    """An execute_request's content (the daemon's own, and its test and bench clients')."""
    if not isinstance(code, str):
        raise KernelError("bad_message", f"code must be a string, got {type(code).__name__}")
    return {
        "code": code,
        "silent": silent,
        "store_history": store_history,
        "user_expressions": {},
        "allow_stdin": allow_stdin,
        "stop_on_error": True,
    }


def comm_content(
    msg_type: str, comm_id: str, data: dict, target_name: str | None = None
) -> dict[str, Any]:
    """A comm_open / comm_msg / comm_close content; KernelError `bad_message` if malformed."""
    if msg_type not in COMM_MSG_TYPES:
        raise KernelError("bad_message", f"{msg_type!r} is not a comm message type")
    if not isinstance(comm_id, str) or not comm_id:
        raise KernelError("bad_message", "comm_id must be a non-empty string")
    if not isinstance(data, dict):
        raise KernelError("bad_message", f"comm data must be a dict, got {type(data).__name__}")
    content: dict[str, Any] = {"comm_id": comm_id, "data": data}
    if msg_type == "comm_open":
        if not target_name:
            raise KernelError("bad_message", "comm_open needs a target_name")
        content["target_name"] = target_name
    return content
