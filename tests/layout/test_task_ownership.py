"""Every background task has an owner (runtimed/daemon/tasks.py): no module starts a bare
asyncio task, and no module keeps tasks in a set of its own."""

from __future__ import annotations

import ast

from tests.layout.import_graph import module_files

BARE_STARTS = {"create_task", "ensure_future"}

# The modules still allowed a bare task, each for a reason:
ALLOWED = {
    # The kernel session's one runner, which holds the connection's anyio task group:
    # started by launch/attach and ended by shutdown/aclose, which await it.
    "runtimed.kernel.session",
    # The client library's reader: started by `connect`, cancelled and awaited by
    # `aclose`; its life is the caller's `async with Client(...)`.
    "runtimed.client.core",
}


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
    assert "runtimed.kernel.session" in _scan(_bare_starts)


def test_no_module_starts_a_bare_task_outside_the_allowed_list() -> None:
    found = _scan(_bare_starts)
    assert {name: lines for name, lines in found.items() if name not in ALLOWED} == {}
    assert set(found) == ALLOWED, "an allowed module no longer needs its place: remove it"


def test_no_module_keeps_tasks_by_hand() -> None:
    assert _scan(_hand_kept_task_sets) == {}
