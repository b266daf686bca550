"""The JavaScript client (js/src/client.js) under node, against a real daemon and kernel."""

from __future__ import annotations

import pytest

from runtimed.client import Client
from tests.bridge.helpers import run_cell, wire_comms
from tests.web.conftest import WebDaemon, run_node

pytestmark = pytest.mark.kernel

NOTEBOOK = "js-client-notebook"


async def js(web: WebDaemon, command: str, *args: str) -> dict:
    return await run_node("js_peer.mjs", command, web.ws_url, web.token, NOTEBOOK, *args)


@pytest.fixture
async def py(web: WebDaemon):
    async with web.client(NOTEBOOK) as client:
        await client.request("launch_kernel")
        yield client
        await client.request("shutdown_kernel")


async def test_js_sees_the_cells_and_comms_python_sees(web: WebDaemon, py: Client) -> None:
    py.doc.add_cell(source="# notes", cell_type="markdown")
    await run_cell(py, "from ipywidgets import IntSlider, HBox\nHBox([IntSlider(value=3)])")
    await run_cell(py, "print('é' * 3)")
    expected = py.doc.to_json()
    assert len(expected["comms"]) >= 4  # HBox, IntSlider and their layouts and styles

    seen = await js(web, "view")

    assert seen["view"]["cells"] == expected["cells"]
    assert seen["view"]["comms"] == expected["comms"]
    assert (seen["view"]["notebook_id"], seen["view"]["schema_version"]) == (NOTEBOOK, 3)
    # The legacy path agrees too: the comm_sync the JS client got on join is CommState.
    legacy = wire_comms((await py.request("get_comms"))["comms"])
    assert wire_comms(seen["comm_sync"]) == legacy
    assert seen["kernel_status"] == "idle"


async def test_js_edits_reach_python(web: WebDaemon, py: Client) -> None:
    cell = py.doc.add_cell(source="x = 1")
    await py.wait_synced()

    result = await js(web, "edit", cell, "x = 2  # from node")

    def arrived(client: Client) -> bool:
        cells = {c.id: c.source for c in client.doc.get_cells()}
        return cells.get(cell) == "x = 2  # from node" and result["added"] in cells

    await py.wait_for(arrived, 15, "the JS edit")
    added = py.doc.get_cell(result["added"])
    assert added is not None
    assert added.source == "# added by js\nx = 2  # from node"
    assert [c.id for c in py.doc.get_cells()] == [cell, result["added"]]


async def test_js_requests_and_broadcasts(web: WebDaemon, py: Client) -> None:
    cell = py.doc.add_cell(source="print(6 * 7)")
    await py.wait_synced()

    result = await js(web, "run", cell)

    assert {"execution_started", "execution_done"} <= set(result["events"])
    assert result["outputs"] == ['{"name":"stdout","output_type":"stream","text":"42\\n"}']
    await py.wait_for(lambda c: c.doc.get_outputs(cell) == result["outputs"], 15, "outputs")
