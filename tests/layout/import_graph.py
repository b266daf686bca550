"""The static import graph of the project's packages, read from the source with `ast`.

Only imports that run when a module is imported count: module level, `try` and `if`
blocks included; imports inside functions and under `if TYPE_CHECKING:` are left out.
Importing `a.b.c` also imports the packages `a` and `a.b`.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("runtimed", "notebook_doc")


def module_files() -> dict[str, Path]:
    """Every module of the project's packages by dotted name."""
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _load_time_imports(body: list[ast.stmt]) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                found += _load_time_imports(node.body)
            found += _load_time_imports(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                found += _load_time_imports(block)
    return found


def _with_parents(name: str) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


@cache
def direct_imports(module: str) -> frozenset[str]:
    """Every module (project or not) that importing `module` imports directly."""
    modules = module_files()
    path = modules[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in _load_time_imports(ast.parse(path.read_text(encoding="utf-8")).body):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names |= _with_parents(alias.name)
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, base] if base else anchor)
        names |= _with_parents(base)
        names |= {f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules}
    names.discard(module)
    return frozenset(names)


def reachable(module: str) -> set[str]:
    """Every module imported, directly or not, when `module` is imported."""
    modules = module_files()
    seen: set[str] = set()
    todo = [module, *(p for p in _with_parents(module) if p != module)]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        if current in modules:
            todo.extend(direct_imports(current))
    seen.discard(module)
    return seen
