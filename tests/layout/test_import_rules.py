"""The import rules of the design, one test per never-rule (README.md, "Shape")."""

from __future__ import annotations

import pytest

from tests.layout.import_graph import direct_imports, module_files, reachable

IO_MODULES = {"asyncio", "socket", "anyio", "selectors", "threading", "time", "trio", "zmq"}
SERVER_PACKAGES = ("runtimed.daemon", "runtimed.comms", "runtimed.gateway", "runtimed.kernel")


def _top(name: str) -> str:
    return name.split(".")[0]


def _modules_under(package: str) -> list[str]:
    return [name for name in module_files() if name == package or name.startswith(package + ".")]


def test_the_graph_sees_imports() -> None:
    """A guard for the tests below: an empty graph would make every rule pass."""
    assert "runtimed.wire.events" in direct_imports("runtimed.wire.protocol")
    assert "runtimed.kernel.session" in reachable("runtimed.daemon.room")


@pytest.mark.parametrize("module", _modules_under("notebook_doc"))
def test_notebook_doc_imports_nothing_of_runtimed(module: str) -> None:
    assert not {name for name in reachable(module) if _top(name) == "runtimed"}


@pytest.mark.parametrize("module", _modules_under("runtimed.wire"))
def test_the_protocol_core_imports_no_io(module: str) -> None:
    assert not {_top(name) for name in reachable(module)} & IO_MODULES


@pytest.mark.parametrize("module", _modules_under("runtimed.client"))
def test_the_client_imports_no_server_module(module: str) -> None:
    server = {name for name in reachable(module) if name.startswith(SERVER_PACKAGES)}
    assert not server


def test_no_import_cycles() -> None:
    """Every cycle among the modules, by depth-first search over load-time imports.

    A module's own parent packages are left out: Python imports them first anyway.
    """
    modules = module_files()
    graph = {
        name: sorted(
            child
            for child in direct_imports(name) & modules.keys()
            if not name.startswith(child + ".")
        )
        for name in modules
    }
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for child in graph[node]:
            if state.get(child) == 1:
                cycles.append([*path[path.index(child) :], child])
            elif child not in state:
                visit(child)
        path.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    assert not cycles, "\n".join(" -> ".join(cycle) for cycle in cycles)
