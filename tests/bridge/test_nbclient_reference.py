"""Real notebooks run through the daemon and through nbclient (the reference) agree.

Each notebook runs twice on fresh kernels: cell by cell through the daemon (the doc
is what is compared), and with nbclient. Outputs are normalised the way nbclient's
own tests do (memory addresses, widget model ids, ANSI colours and the kernel's temp
file names in tracebacks, adjacent stream outputs joined).
"""

from __future__ import annotations

import re
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat import v4

from runtimed.client import Client
from tests.bridge.helpers import done, resolve_output
from tests.conftest import RunningDaemon

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
_ADDRESS = re.compile(r"0x[0-9a-f]+")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_KERNEL_FILE = re.compile(r"/tmp/ipykernel_\d+/\d+\.py")

NOTEBOOKS: dict[str, list[str]] = {
    # The first cell of a fresh kernel: the daemon's own traffic must not reorder it.
    "streams of a fresh kernel": [
        "import sys\nprint('out')\nprint('err', file=sys.stderr)\nprint('out again')",
        "print('second', file=sys.stderr)\nprint('cell')",
    ],
    "display updates across cells": [
        "from IPython.display import display, update_display\n"
        "first = display('first', display_id=True)\n"
        "print('printed')",
        "first.update('updated from the next cell')\nprint('second cell')",
        "again = display('shown again', display_id=first.display_id)",
        "for step in range(3):\n    update_display(f'step {step}', display_id=first.display_id)",
        "named = display({'text/html': '<b>a</b>'}, raw=True, display_id='named')",
        "update_display({'text/html': '<b>b</b>'}, raw=True, display_id='named')",
    ],
    "clear_output": [
        "from IPython.display import clear_output, display, update_display\n"
        "for i in range(5):\n    clear_output(wait=True)\n    print(i)",
        "print('gone')\nclear_output()\nprint('kept')",
        "display('cleared away', display_id='cleared')\nclear_output()",
        "update_display('must not come back', display_id='cleared')",
        "print('a')\nclear_output(wait=True)",
    ],
    "errors": [
        "print('before')\n1 / 0",
        "raise ValueError('bad value')",
        "undefined_name",
        "import sys\nprint('out')\nprint('err', file=sys.stderr)\nprint('out again')",
    ],
    "Output widgets": [
        "import ipywidgets as w\nfrom IPython.display import display\n"
        "out = w.Output()\ndisplay(out)\n"
        "with out:\n    print('inside')\n    display('shown inside')",
        "with out:\n    print('second capture')\nprint('beside the widget')",
        "out.clear_output()\nwith out:\n    print('after clear')",
        "other = w.Output()\ndisplay(other)\nother.append_stdout('appended\\n')",
    ],
}


def normalise(output: dict[str, Any]) -> dict[str, Any]:
    """As nbclient's tests normalise outputs before comparing them."""
    output = {key: value for key, value in output.items() if key != "metadata"}
    if "text" in output:
        output["text"] = _ADDRESS.sub("<HEXADDR>", output["text"])
    data = output.get("data")
    if isinstance(data, dict):
        data = dict(data)
        if "text/plain" in data:
            data["text/plain"] = _ADDRESS.sub("<HEXADDR>", data["text/plain"])
        if WIDGET_VIEW in data:
            data[WIDGET_VIEW] = {**data[WIDGET_VIEW], "model_id": "<MODEL_ID>"}
        output["data"] = data
    if "traceback" in output:
        output["traceback"] = [
            _KERNEL_FILE.sub("<IPY-INPUT>", _ANSI.sub("", line)) for line in output["traceback"]
        ]
    return output


def normalise_all(outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Normalised, with adjacent outputs of one stream joined (nbclient keeps each message)."""
    joined: list[dict[str, Any]] = []
    for output in map(normalise, outputs):
        last = joined[-1] if joined else None
        if (
            last is not None
            and output["output_type"] == last["output_type"] == "stream"
            and output["name"] == last["name"]
        ):
            last["text"] += output["text"]
        else:
            joined.append(output)
    return joined


async def with_nbclient(sources: list[str]) -> tuple[list[list[dict]], list[list[dict]]]:
    """Cell outputs and Output widgets' outputs (in creation order) as nbclient has them."""
    nb = v4.new_notebook(cells=[v4.new_code_cell(source) for source in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    # A short per-cell timeout: nbclient can wait out its timeout for a reply it has
    # already received (jupyter/nbclient#312).
    await NotebookClient(nb, timeout=30, kernel_name="python3", allow_errors=True).async_execute()
    models = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    captured = [
        model["state"].get("outputs", [])
        for model in models.values()
        if model["model_name"] == "OutputModel"
    ]
    cells = [nbformat.from_dict(cell).get("outputs", []) for cell in nb.cells]
    return [normalise_all(o) for o in cells], [normalise_all(o) for o in captured]


async def with_daemon(
    client: Client, sources: list[str]
) -> tuple[list[list[dict]], list[list[dict]]]:
    """The same, as the doc holds it after running each cell in turn through the daemon."""
    cell_ids = [client.doc.add_cell(source=source) for source in sources]
    await client.wait_synced()
    # The first cell runs as soon as the kernel answers, as a user's first click would.
    await client.request("launch_kernel")
    for cell_id in cell_ids:
        msg_id = (await client.request("execute_cell", cell_id=cell_id))["msg_id"]
        await client.wait_for(lambda c, m=msg_id: done(c, m), 60, f"cell {cell_id} finished")
    await client.wait_synced()
    cells = [
        [await resolve_output(client, entry) for entry in client.doc.get_outputs(cell_id)]
        for cell_id in cell_ids
    ]
    captured = [
        [await resolve_output(client, entry) for entry in comm.outputs]
        for comm in client.doc.get_comms()
        if comm.model_name == "OutputModel"
    ]
    return [normalise_all(o) for o in cells], [normalise_all(o) for o in captured]


@pytest.mark.parametrize("name", list(NOTEBOOKS))
async def test_daemon_and_nbclient_agree(running: RunningDaemon, name: str) -> None:
    sources = NOTEBOOKS[name]
    expected = await with_nbclient(sources)
    async with running.client(f"nbclient-{name}") as client:
        try:
            seen = await with_daemon(client, sources)
        finally:
            await client.request("shutdown_kernel")
    assert seen[0] == expected[0]
    assert seen[1] == expected[1]
