"""IOPub messages to nbformat v4 outputs, checked at the edge.

A malformed output message raises `OutputError` (`bad_message`), so the room skips it
and stores nothing half-made. `transient.display_id` is read here but never stored in
an output (nbformat has no such field).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import RuntimedError

OUTPUT_TYPES = frozenset({"stream", "display_data", "execute_result", "error"})

_JSON_MIME_RE = re.compile(r"application/(.*\+)?json")


class OutputError(RuntimedError, ValueError):
    """An IOPub message or a stored output that cannot be an nbformat output.

    Codes: bad_message (from the kernel), bad_output (from the doc or a caller),
    bad_argument (a caller's option).
    """


@dataclass(frozen=True, slots=True)
class DisplayUpdate:
    """An `update_display_data`: every output carrying `display_id` takes `output`'s data."""

    display_id: str
    output: dict[str, Any]


def output_from_iopub(msg: dict[str, Any]) -> dict[str, Any] | None:
    """The nbformat v4 output an IOPub message adds, or None if it adds none.

    `update_display_data` and `clear_output` return None: they change existing outputs
    (see `OutputLog`). Raises OutputError for a malformed output message.
    """
    msg_type = msg_type_of(msg)
    if msg_type not in OUTPUT_TYPES:
        return None
    content = content_of(msg, msg_type)
    if msg_type == "stream":
        return {
            "output_type": "stream",
            "name": _string(content, "name", msg_type),
            "text": multiline_text(content.get("text"), f"{msg_type}.text"),
        }
    if msg_type == "error":
        traceback = content.get("traceback")
        if not is_string_list(traceback):
            raise OutputError("bad_message", "error.traceback must be a list of strings")
        return {
            "output_type": "error",
            "ename": _string(content, "ename", msg_type),
            "evalue": _string(content, "evalue", msg_type),
            "traceback": list(traceback),
        }
    output = _display_output(content, msg_type, msg_type)
    if msg_type == "execute_result":
        count = content.get("execution_count")
        if count is not None and (type(count) is not int or count < 0):
            raise OutputError("bad_message", f"bad execute_result.execution_count: {count!r}")
        output["execution_count"] = count
    return output


def display_id_from_iopub(msg: dict[str, Any]) -> str | None:
    """`transient.display_id` of a display_data, execute_result or update_display_data."""
    msg_type = msg_type_of(msg)
    if msg_type not in ("display_data", "execute_result", "update_display_data"):
        return None
    transient = content_of(msg, msg_type).get("transient")
    if transient is None:
        return None
    if not isinstance(transient, dict):
        raise OutputError("bad_message", f"{msg_type}.transient must be an object")
    display_id = transient.get("display_id")
    if display_id is not None and not isinstance(display_id, str):
        raise OutputError("bad_message", f"bad transient.display_id: {display_id!r}")
    return display_id or None


def display_update_from_iopub(msg: dict[str, Any]) -> DisplayUpdate | None:
    """The update an `update_display_data` asks for; None for any other message.

    The room applies it to every log (a display may be updated from another cell).
    """
    msg_type = msg_type_of(msg)
    if msg_type != "update_display_data":
        return None
    display_id = display_id_from_iopub(msg)
    if display_id is None:
        raise OutputError("bad_message", "update_display_data without transient.display_id")
    output = _display_output(content_of(msg, msg_type), msg_type, "display_data")
    return DisplayUpdate(display_id, output)


def msg_type_of(msg: Any) -> str:
    if not isinstance(msg, dict):
        raise OutputError("bad_message", f"an IOPub message is a dict, not {type(msg).__name__}")
    msg_type = msg.get("msg_type")
    if msg_type is None and isinstance(msg.get("header"), dict):
        msg_type = msg["header"].get("msg_type")
    if not isinstance(msg_type, str):
        raise OutputError("bad_message", "IOPub message without a msg_type")
    return msg_type


def content_of(msg: dict[str, Any], msg_type: str) -> dict[str, Any]:
    content = msg.get("content")
    if not isinstance(content, dict):
        raise OutputError("bad_message", f"{msg_type} message without a content object")
    return content


def _string(content: dict[str, Any], key: str, msg_type: str) -> str:
    value = content.get(key)
    if not isinstance(value, str):
        raise OutputError("bad_message", f"{msg_type}.{key} must be a string, not {value!r:.60}")
    return value


def is_string_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def multiline_text(value: Any, where: str) -> str:
    """An nbformat multiline string (a string or a list of strings) as one string."""
    if isinstance(value, str):
        return value
    if is_string_list(value):
        return "".join(value)
    raise OutputError("bad_message", f"{where} must be a string, not {value!r:.60}")


def _display_output(content: dict[str, Any], msg_type: str, output_type: str) -> dict[str, Any]:
    data = content.get("data")
    if not isinstance(data, dict):
        raise OutputError("bad_message", f"{msg_type}.data must be an object")
    for mime, value in data.items():
        json_mime = isinstance(mime, str) and _JSON_MIME_RE.fullmatch(mime) is not None
        if not json_mime and not (isinstance(value, str) or is_string_list(value)):
            raise OutputError("bad_message", f"{msg_type}.data[{mime!r}] must be text")
    metadata = content.get("metadata", {})
    if not isinstance(metadata, dict):
        raise OutputError("bad_message", f"{msg_type}.metadata must be an object")
    return {"output_type": output_type, "data": data, "metadata": metadata}


def check_output(output: Any) -> None:
    """OutputError `bad_output` unless `output` is an nbformat output of a known type."""
    if not isinstance(output, dict) or output.get("output_type") not in OUTPUT_TYPES:
        raise OutputError("bad_output", f"not an nbformat output: {output!r:.80}")
