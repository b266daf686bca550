"""docs/protocol.md names every broadcast the daemon sends, and docs/errors.md every
error code a non-fatal `error` broadcast carries (read from the daemon's source)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "runtimed").glob("*.py"))
SENDERS = {"broadcast", "Broadcast"}


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _codes(call: ast.Call) -> set[str]:
    """Literal `code=` keywords, and literal "code" entries of dict arguments."""
    pairs = [(keyword.arg, keyword.value) for keyword in call.keywords]
    for arg in call.args[1:]:
        if isinstance(arg, ast.Dict):
            pairs += [
                (key.value, value)
                for key, value in zip(arg.keys, arg.values, strict=True)
                if isinstance(key, ast.Constant)
            ]
    return {
        value.value
        for key, value in pairs
        if key == "code" and isinstance(value, ast.Constant) and isinstance(value.value, str)
    }


def sent_broadcasts() -> dict[str, set[str]]:
    """Each event name given to broadcast()/Broadcast() as a literal, with the literal
    `code`s it is sent with (keyword or dict key)."""
    events: dict[str, set[str]] = {}
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and _name(node.func) in SENDERS and node.args):
                continue
            first = node.args[0]
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                continue
            events.setdefault(first.value, set()).update(_codes(node))
    return events


def documented_events() -> set[str]:
    text = (ROOT / "docs" / "protocol.md").read_text()
    table = text.split("## Broadcasts", 1)[1].split("\n\n", 2)[1]
    return {
        name
        for line in table.splitlines()
        if line.startswith("| `")
        for name in re.findall(r"`([a-z_]+)`", line.split("|")[1])
    }


def test_the_source_sends_the_broadcasts_we_expect_to_find() -> None:
    """The scan itself works: it finds broadcasts sent in each of the three ways."""
    events = sent_broadcasts()
    assert {"comm", "comm_sync", "update_display", "execution_done", "error"} <= set(events)
    assert {"save_failed", "kernel_died", "schema_violation"} <= events["error"]


def test_every_broadcast_is_in_protocol_md() -> None:
    assert set(sent_broadcasts()) - documented_events() == set()


def test_every_error_broadcast_code_is_in_errors_md() -> None:
    errors = (ROOT / "docs" / "errors.md").read_text()
    missing = {code for code in sent_broadcasts()["error"] if f"`{code}`" not in errors}
    assert missing == set()
