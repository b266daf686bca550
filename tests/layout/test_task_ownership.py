"""Every background task has an owner (runtimed/daemon/tasks.py): no module starts a bare
asyncio task, and no module keeps tasks in a set of its own."""

from __future__ import annotations

import ast

from tests.layout.import_graph import module_files

BARE_STARTS = {"create_task", "ensure_future"}
# The one task not in a task group: a Client's reader. A library object may be connected
# in one task and closed in another (a fixture's set-up and teardown, wait_for around
# connect), which a task group entered in connect refuses; the Client owns its reader
# and aclose ends it.
OWNED_BY_AN_OBJECT = {"runtimed.client.core": 1}


def _bare_starts(tree: ast.AST) -> list[int]:
    """Lines that call create_task/ensure_future (any receiver) or import them by name."""
    lines = []
    for node in ast.walk(tree):
        called = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        if called and node.func.attr in BARE_STARTS:  # type: ignore[attr-defined]
            lines.append(node.lineno)
        imported = isinstance(node, ast.ImportFrom) and node.module == "asyncio"
        if imported and any(a.name in BARE_STARTS for a in node.names):  # type: ignore[attr-defined]
            lines.append(node.lineno)
    return lines


def _hand_kept_task_sets(tree: ast.AST) -> list[int]:
    """Lines that annotate something as a set/dict/list of asyncio tasks (a dict of
    futures awaiting replies is not one: nothing runs in them)."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign):
            text = ast.unparse(node.annotation)
            if text.startswith(("set[", "dict[", "list[")) and "asyncio.Task" in text:
                lines.append(node.lineno)
    return lines


def _scan(check) -> dict[str, list[int]]:
    found = {}
    for name, path in module_files().items():
        if not name.startswith("runtimed"):
            continue
        lines = check(ast.parse(path.read_text(), str(path)))
        if lines:
            found[name] = lines
    return found


def test_the_scan_sees_a_bare_task() -> None:
    """A guard for the rule below: a scan that finds nothing would make it pass."""
    tree = ast.parse("import asyncio\nasyncio.get_running_loop().create_task(f())\n")
    assert _bare_starts(tree) == [2]
    assert _bare_starts(ast.parse("from asyncio import ensure_future\n")) == [1]
    assert _hand_kept_task_sets(ast.parse("x: set[asyncio.Task[None]] = set()\n")) == [1]
    scanned = _scan(lambda tree: [1])
    assert {"runtimed.kernel.session", "runtimed.client.core"} <= set(scanned)


def test_no_module_starts_a_bare_task() -> None:
    """Not the kernel session's runner (its owner's group: the room's); only the
    client's reader, once."""
    found = {name: len(lines) for name, lines in _scan(_bare_starts).items()}
    assert found == OWNED_BY_AN_OBJECT


def test_no_module_keeps_tasks_by_hand() -> None:
    assert _scan(_hand_kept_task_sets) == {}
