"""update_display_data beyond nbclient: Output widgets' captures, and clients' own edits."""

from __future__ import annotations

import json

from runtimed.client import Client
from tests.bridge.helpers import done, resolve_output, run_cell


async def captured_texts(client: Client) -> list[list[str]]:
    """Each Output widget's captured outputs as their text/plain (or stream text)."""
    texts = []
    for comm in client.doc.get_comms():
        if comm.model_name == "OutputModel":
            outputs = [await resolve_output(client, entry) for entry in comm.outputs]
            texts.append([o.get("data", {}).get("text/plain", o.get("text")) for o in outputs])
    return texts


async def test_update_reaches_output_widget_captures_and_the_kernel(
    pair: tuple[Client, Client],
) -> None:
    actor, observer = pair
    await run_cell(
        actor,
        "import ipywidgets as w\nfrom IPython.display import display\n"
        "out = w.Output()\ndisplay(out)\n"
        "with out:\n    handle = display('inner', display_id=True)\n"
        "shown = display('beside', display_id=handle.display_id)",
    )
    await run_cell(actor, "handle.update('updated later')")
    await observer.wait_synced()
    assert await captured_texts(observer) == [["'updated later'"]]
    # The kernel's own Output widget holds the update too (the daemon published it).
    kernel_view = await run_cell(actor, "print(out.outputs[0]['data']['text/plain'])")
    assert kernel_view[0]["text"] == "'updated later'\n"
    first_cell = observer.doc.get_cells()[0]
    cell_outputs = [await resolve_output(observer, entry) for entry in first_cell.outputs]
    texts = [o["data"]["text/plain"] for o in cell_outputs]
    assert texts == ["Output()", "'updated later'"]


async def test_a_cell_a_client_cleared_is_not_rewritten(pair: tuple[Client, Client]) -> None:
    actor, _ = pair
    await run_cell(actor, "from IPython.display import display\nh = display('x', display_id=True)")
    shown = actor.doc.get_cells()[0].id
    assert json.loads(actor.doc.get_outputs(shown)[0])["data"]["text/plain"] == "'x'"
    actor.doc.clear_outputs(shown)  # the user clears the cell in their client
    await actor.wait_synced()
    updated = actor.doc.add_cell(source="h.update('y')\nprint('done')")
    await actor.wait_synced()
    msg_id = (await actor.request("execute_cell", cell_id=updated))["msg_id"]
    await actor.wait_for(lambda c: done(c, msg_id), 60, "update cell finished")
    await actor.wait_synced()
    assert actor.doc.get_outputs(shown) == []
