"""What the CLI prints: a notebook as readable text, stored copies as a table, room lines.

Pure functions of the JSON the daemon gives (outputs already resolved from blobs), so
they are tested without a daemon.
"""

from __future__ import annotations

import json
import time
from typing import Any

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# Widget state keys worth a glance; the rest is behind `cat --json`.
WIDGET_FIELDS = ("description", "value", "min", "max", "options", "children")
OUTPUT_LINES = 20


def format_notebook(view: dict[str, Any], outputs: dict[str, dict[str, Any]]) -> str:
    """Cells in order with their outputs as text, then the widgets and their values.

    `outputs` maps each doc output entry (inline JSON or blob hash) to its nbformat dict.
    """
    lines = [f"# {view['notebook_id']}"]
    for cell in view["cells"]:
        lines.append(f"--- {cell['cell_type']} {cell['id']} {_prompt(cell)}".rstrip())
        lines.append(cell["source"])
        for entry in cell.get("outputs", []):
            text = output_text(outputs.get(entry) or {"output_type": "unknown"})
            lines.extend("  " + line for line in _clip(text.rstrip("\n").splitlines() or [""]))
    comms = view.get("comms") or []
    if comms:
        lines.append(f"--- {len(comms)} widget(s)")
        lines.extend("  " + widget_line(comm) for comm in comms)
    return "\n".join(lines)


def _prompt(cell: dict[str, Any]) -> str:
    """`[3]` after a run, `[*]` while queued or running, `[aborted]`/`[error]` as it ended."""
    if cell["cell_type"] != "code":
        return ""
    status = cell.get("execution_status")
    if status in ("queued", "running"):
        return "[*]"
    count = cell.get("execution_count")
    shown = str(count) if count is not None else " "
    if status in ("error", "aborted"):
        return f"[{shown}] {status}"
    return f"[{shown}]"


def output_text(output: dict[str, Any]) -> str:
    """One output as a person reads it: stream text, text/plain, a widget, an error."""
    kind = output.get("output_type")
    if kind == "stream":
        return _joined(output.get("text", ""))
    if kind == "error":
        return f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"
    data = output.get("data") or {}
    if WIDGET_VIEW in data:
        return f"<widget {data[WIDGET_VIEW].get('model_id', '?')}>"
    if "text/plain" in data:
        return _joined(data["text/plain"])
    if data:
        return f"<{', '.join(sorted(data))}>"
    return f"<{kind} output>"


def widget_line(comm: dict[str, Any]) -> str:
    name = comm.get("model_name") or comm.get("target_name") or "comm"
    state = comm.get("state") or {}
    fields = " ".join(
        f"{key}={json.dumps(state[key], ensure_ascii=False)[:60]}"
        for key in WIDGET_FIELDS
        if key in state and state[key] not in ("", [], None)
    )
    return f"{comm['comm_id']} {name} {fields}".rstrip()


def _joined(text: Any) -> str:
    return "".join(text) if isinstance(text, list) else str(text)


def _clip(lines: list[str]) -> list[str]:
    if len(lines) <= OUTPUT_LINES:
        return lines
    return [*lines[:OUTPUT_LINES], f"… {len(lines) - OUTPUT_LINES} more line(s) (--json)"]


def format_stored(copies: list[dict[str, Any]]) -> str:
    """`ls --stored`: one line per stored copy: size, state, notebook, its file."""
    if not copies:
        return "no stored copies"
    lines = []
    for copy in copies:
        if copy["open"]:
            state = "open"
        elif copy["path"] is not None and not copy["file_exists"]:
            state = "file gone"
        else:
            state = "closed"
        name = copy["notebook_id"] or f"(unreadable {copy['stored_file']})"
        lines.append(f"{_size(copy['bytes']):>9}  {state:<9}  {name}")
    return "\n".join(lines)


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def room_line(room: dict[str, Any]) -> str:
    """One open room from `list_rooms` or `status`: peers, kernel, saving, history."""
    kernel = f"{room['kernel_name']} ({room['kernel_status']})" if room["kernel_name"] else "-"
    line = (
        f"{room['notebook_id']}  peers={room['peers']} cells={room['cells']} "
        f"comms={room['comms']} kernel={kernel}"
    )
    save = room.get("save_state")
    if save:
        line += f" {save['state']}" + (f": {save['reason']}" if save.get("reason") else "")
    history = room.get("history")
    if history is not None:
        line += f" epoch={room['epoch']} history={history['changes']} changes"
        if history["bytes"] is not None:
            line += f"/{history['bytes']} B"
    last = room.get("last_compaction")
    if last:
        when = time.strftime("%H:%M:%S", time.localtime(last["at"]))
        line += (
            f" last_compaction={when} ({last['reason']}, {last['bytes_before']} -> "
            f"{last['bytes_after']} B, {last['duration'] * 1000:.0f} ms)"
        )
    return line


def age(seconds: float) -> str:
    """An uptime the way people say it: the two largest units."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"
